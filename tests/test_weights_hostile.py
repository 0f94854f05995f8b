"""Weights files as a hostile user makes them: odd save targets, a full disk, crafted and damaged files."""
from __future__ import annotations

import os
import pickle
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import torch

import core.atomic_files
import core.weights
import core.weights_checks
from core import paths
from core.models import build_model
from core.weights import (
    SavedWeights,
    WeightsError,
    check_save_target,
    export_tutorial,
    load_weights,
    new_weights_path,
    save_training_result,
    save_weights,
)

NOBODY = 65534
T = TypeVar("T")


def save_tutorial(path: Path, **metrics) -> Path:
    model = build_model("tutorial")
    return save_weights(path, model, "tutorial", {}, (0.0, 1.0), {"preset": "test"}, {"test_accuracy": 0.9, **metrics})


def rewrite(path: Path, **changes) -> None:
    """Edit a saved file's fields as a hostile user would (None deletes the field)."""
    obj = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    torch.save(obj, path)


def as_ordinary_user(tmp_path: Path, work: Callable[[], T]) -> T:
    """work() without root's powers (root reads and writes anything): as root, in a forked child that gives them up
    (a user id is process-wide, so this process's other threads never feel it), with tmp_path reachable; its result
    or exception comes back through a pipe."""
    if os.geteuid() != 0:
        return work()
    chain = [p for p in [tmp_path, *tmp_path.parents] if p != Path("/") and not p.stat().st_mode & 0o001]
    modes = {p: p.stat().st_mode & 0o7777 for p in chain}
    for p in chain:
        p.chmod(modes[p] | 0o111)  # traverse only, not list
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one thread, never returns into pytest
        try:
            os.close(read_end)
            os.setuid(NOBODY)
            try:
                outcome = ("returned", work())
            except BaseException as exc:  # noqa: BLE001 - handed to the parent to re-raise
                outcome = ("raised", exc)
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(outcome, pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    kind, value = pickle.loads(data)
    if kind == "raised":
        raise value
    return value


# ---------------------------------------------------------------- saving: only a regular file or a new name
def test_saving_onto_a_fifo_is_refused_and_the_fifo_stays(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with pytest.raises(WeightsError, match="not a regular file"):
        save_tutorial(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe.pt"]


def test_saving_through_a_symlink_to_a_device_is_refused(tmp_path):
    link = tmp_path / "full.pt"
    link.symlink_to("/dev/full")  # as root, saving onto /dev/full itself used to replace the device node
    with pytest.raises(WeightsError, match="not a regular file"):
        save_tutorial(link)
    assert os.readlink(link) == "/dev/full" and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "w.pt"
    target.write_bytes(b"old")
    link = tmp_path / "link.pt"
    link.symlink_to(target)
    save_tutorial(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load_weights(target).arch == "tutorial"
    assert sorted(os.listdir(tmp_path / "real")) == ["w.pt"]  # the temp file was beside the target, and is gone


def test_write_protected_file_is_refused_and_kept(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"precious")
    path.chmod(0o444)
    with pytest.raises(WeightsError, match="write-protected"):
        save_tutorial(path)
    assert path.read_bytes() == b"precious"


def test_folder_as_target_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="is a folder"):
        save_tutorial(tmp_path)


def test_read_only_folder_is_refused_before_writing(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    with pytest.raises(WeightsError, match="read-only"):
        as_ordinary_user(tmp_path, lambda: check_save_target(folder / "w.pt"))
    assert os.listdir(folder) == []


def test_shipped_default_weights_are_never_overwritten(tmp_path, monkeypatch):
    shipped = tmp_path / "default_weights.pt"
    shipped.write_bytes(b"shipped")
    monkeypatch.setattr(paths, "DEFAULT_WEIGHTS", shipped)
    (tmp_path / "alias.pt").symlink_to(shipped)
    for target in (shipped, tmp_path / "alias.pt", tmp_path / "." / "default_weights.pt"):
        with pytest.raises(WeightsError, match="shipped default weights"):
            save_tutorial(target)
    assert shipped.read_bytes() == b"shipped"


def test_full_disk_reports_the_os_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    save_tutorial(path)
    before = path.read_bytes()
    real_mkstemp = core.atomic_files.tempfile.mkstemp

    def temp_file_on_a_full_disk(**kwargs):
        fd, name = real_mkstemp(**kwargs)  # the name is real (and must vanish); its writes go to /dev/full
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(core.atomic_files.tempfile, "mkstemp", temp_file_on_a_full_disk)
    with pytest.raises(OSError) as raised:
        save_tutorial(path)
    assert raised.value.strerror == "No space left on device"
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["w.pt"]


def test_export_onto_its_own_source_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "cnn.pth"
    torch.save(build_model("tutorial").state_dict(), source)
    before = source.read_bytes()
    weights = load_weights(source)
    (tmp_path / "alias.pth").symlink_to(source)
    monkeypatch.chdir(tmp_path)
    for out in (source, tmp_path / "alias.pth", Path("cnn.pth"), tmp_path / "sub" / ".." / "cnn.pth"):
        with pytest.raises(WeightsError, match="being exported"):
            export_tutorial(weights, out)
    assert source.read_bytes() == before


# ---------------------------------------------------------------- one function for a training result
def test_new_weights_paths_never_collide_within_a_second(tmp_path):
    taken = []
    for _ in range(3):
        path = new_weights_path("quick-fastnet", tmp_path)
        path.write_bytes(b"x")
        taken.append(path)
    assert len(set(taken)) == 3 and all(p.name.startswith("quick-fastnet-") for p in taken)


def test_training_result_saved_to_its_out_file(tmp_path):
    model = build_model("tutorial")
    saved = save_training_result(model, "tutorial", {}, (0.0, 1.0), {"preset": "t"}, {}, out=tmp_path / "w.pt")
    assert saved == SavedWeights(tmp_path / "w.pt") and not saved.fell_back
    assert load_weights(saved.path).settings == {"preset": "t"}


def test_training_result_falls_back_to_the_weights_folder_and_says_why(tmp_path):
    (tmp_path / "not-a-folder").write_text("a file")
    saved = save_training_result(build_model("tutorial"), "tutorial", {}, (0.0, 1.0), {}, {},
                                 out=tmp_path / "not-a-folder" / "w.pt", stem="quick-tutorial")
    assert saved.fell_back and saved.requested == tmp_path / "not-a-folder" / "w.pt" and "not a folder" in saved.reason
    assert saved.path.parent == paths.user_weights_dir() and saved.path.name.startswith("quick-tutorial-")
    assert load_weights(saved.path).arch == "tutorial"


def test_training_result_never_replaces_a_file_in_the_weights_folder(tmp_path):
    first = save_training_result(build_model("tutorial"), "tutorial", {}, (0.0, 1.0), {}, {}, stem="x")
    second = save_training_result(build_model("tutorial"), "tutorial", {}, (0.0, 1.0), {}, {}, stem="x")
    assert first.path != second.path and first.path.is_file() and second.path.is_file()


def test_training_result_with_nowhere_to_go_is_one_sentence(tmp_path):
    paths.user_weights_dir().parent.mkdir(parents=True, exist_ok=True)
    paths.user_weights_dir().write_text("a file where the weights folder should be")
    with pytest.raises(WeightsError, match=r"could not be saved to .*fifo.* nor in .*weights"):
        os.mkfifo(tmp_path / "fifo")
        save_training_result(build_model("tutorial"), "tutorial", {}, (0.0, 1.0), {}, {}, out=tmp_path / "fifo")


# ---------------------------------------------------------------- loading crafted files
def test_huge_width_is_refused_before_any_model_is_built(tmp_path, monkeypatch):
    path = save_tutorial(tmp_path / "w.pt")
    rewrite(path, arch="digitnet", arch_args={"width": 3000, "dropout": 0.1},
            state_dict=build_model("digitnet", width=2).state_dict())
    with pytest.raises(WeightsError, match="width must be a whole number from 1 to 512"):
        load_weights(path)
    rewrite(path, arch_args={"width": 512, "dropout": 0.1})  # allowed, but the file's tensors are width 2
    built = []
    real_build = core.weights.build_model

    def recording_build(arch, **args):
        built.append(torch.get_default_device().type)
        return real_build(arch, **args)

    for module in (core.weights, core.weights_checks):  # the loader builds the model; the checks build its meta twin
        monkeypatch.setattr(module, "build_model", recording_build)
    with pytest.raises(WeightsError, match=r"shapes don't match for 0\.weight"):
        load_weights(path)
    assert built == ["meta"]  # shapes compared on the meta device; nothing of width 512 was allocated


@pytest.mark.parametrize("changes,message", [
    ({"arch": "digitnet", "arch_args": {"width": "wide"}}, "width must be a whole number"),
    ({"arch": "fastnet", "arch_args": {"width": True}}, "width must be a whole number"),
    ({"arch": "digitnet", "arch_args": {"dropout": float("nan")}}, "dropout must be a number"),
    ({"arch_args": {"depth": 3}}, "takes no argument 'depth'"),
    ({"arch_args": [16]}, "not a dict"),
    ({"normalization": "abc"}, "invalid normalization"),
    ({"normalization": [0.1, 0.0]}, "invalid normalization"),
    ({"normalization": [0.1, float("inf")]}, "not a finite number"),
    ({"normalization": [0.1, "x"]}, "invalid normalization"),
    ({"settings": "fast"}, "settings are a str, not a dict"),
    ({"settings": {"preset": torch.zeros(3)}}, r"settings\.preset is a tensor"),
    ({"metrics": [0.9]}, "metrics are a list, not a dict"),
    ({"metrics": {"test_accuracy": "great"}}, "test accuracy must be a number from 0 to 1"),
    ({"metrics": {"test_accuracy": float("nan")}}, "not a finite number"),
    ({"metrics": {"junk": torch.zeros(1).expand(2**28)}}, r"metrics\.junk is a tensor"),  # "1 GB" in a small file
    ({"metrics": {"deep": [[[[[[[[[[1]]]]]]]]]]}}, "nested too deeply"),
    ({"metrics": {str(i): i for i in range(20_000)}}, "more than 10,000 values"),
    ({"settings": {"note": "x" * 20_000}}, "a text of 20,000 characters"),
    ({"created": 12}, "creation time is a int"),
    ({"version": None}, "has no format version"),
    ({"version": "1"}, "an invalid format version"),
    ({"arch": ["tutorial"]}, "unknown architecture"),
    ({"state_dict": [1, 2]}, "has no state_dict"),
])
def test_malformed_fields_are_one_plain_sentence(tmp_path, changes, message):
    path = save_tutorial(tmp_path / "w.pt")
    rewrite(path, **changes)
    with pytest.raises(WeightsError, match=message):
        load_weights(path)


@pytest.mark.parametrize("value,message", [(float("nan"), "NaN or infinite"), (float("inf"), "NaN or infinite")])
def test_non_finite_weights_are_refused(tmp_path, value, message):
    state = build_model("tutorial").state_dict()
    state["7.bias"][3] = value
    path = save_tutorial(tmp_path / "w.pt")
    rewrite(path, state_dict=state)
    with pytest.raises(WeightsError, match=message):
        load_weights(path)
    torch.save(state, tmp_path / "bare.pth")  # the tutorial's bare format too
    with pytest.raises(WeightsError, match=message):
        load_weights(tmp_path / "bare.pth")


def test_wrong_kind_of_tensor_is_refused(tmp_path):
    state = build_model("tutorial").state_dict()
    state["0.weight"] = state["0.weight"].to(torch.int64)
    path = save_tutorial(tmp_path / "w.pt")
    rewrite(path, state_dict=state)
    with pytest.raises(WeightsError, match="not floating point"):
        load_weights(path)


def test_archive_that_unpacks_to_too_much_is_refused_from_its_directory(tmp_path, monkeypatch):
    path = save_tutorial(tmp_path / "w.pt")
    rewrite(path, metrics={"test_accuracy": 0.9}, padding=[0.0] * 300_000)  # ~2.4 MB of pickle, deflated to KBs
    with zipfile.ZipFile(path) as plain, zipfile.ZipFile(tmp_path / "bomb.pt", "w", zipfile.ZIP_DEFLATED) as bomb:
        for member in plain.infolist():
            bomb.writestr(member.filename, plain.read(member.filename))
    monkeypatch.setattr(core.weights, "MAX_FILE_BYTES", 1 * 2**20)
    assert (tmp_path / "bomb.pt").stat().st_size < 2**20
    with pytest.raises(WeightsError, match=r"would unpack to \d MB"):
        load_weights(tmp_path / "bomb.pt")


def test_unreadable_file_is_one_sentence(tmp_path):
    path = save_tutorial(tmp_path / "w.pt")
    path.chmod(0o000)
    with pytest.raises(WeightsError, match="cannot be read .Permission denied"):
        as_ordinary_user(tmp_path, lambda: load_weights(path))


def test_torchscript_file_is_named_as_such(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, and still what people have
        torch.jit.save(torch.jit.script(build_model("tutorial")), tmp_path / "scripted.pt")
    with pytest.raises(WeightsError, match="is a TorchScript model"):
        load_weights(tmp_path / "scripted.pt")


@pytest.mark.parametrize("old,new", [(b"_rebuild_tensor_v2", b"_rebuild_tensor\x1a\x1a\x1a"),  # a garbled name
                                     (b"\x80\x02", b"\x80\x02\x06")])  # a garbled opcode after the protocol mark
def test_damaged_pickle_is_called_damaged_not_dangerous(tmp_path, old, new):
    path = save_tutorial(tmp_path / "w.pt")
    with zipfile.ZipFile(path) as good, zipfile.ZipFile(tmp_path / "bad.pt", "w") as bad:
        for member in good.infolist():
            data = good.read(member.filename)
            bad.writestr(member.filename, data.replace(old, new, 1) if member.filename.endswith("data.pkl") else data)
    with pytest.raises(WeightsError, match="is damaged") as raised:
        load_weights(tmp_path / "bad.pt")
    assert "more than weights" not in str(raised.value)


def test_missing_version_is_not_called_newer(tmp_path):
    path = save_tutorial(tmp_path / "w.pt")
    rewrite(path, version=None)
    with pytest.raises(WeightsError) as raised:
        load_weights(path)
    assert "newer" not in str(raised.value) and "None" not in str(raised.value)
