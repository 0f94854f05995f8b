"""The command line against hostile weights files, save targets and numbers: one `error:` line, the right exit."""
from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import core.training
from core import paths
from core.cli import main
from core.models import build_model
from core.weights import load_weights, save_weights
from tests.test_weights_hostile import as_ordinary_user, rewrite

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--arch", "tutorial", "--epochs", "1", "--batch-size", "20", "--quiet"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_cli_as_ordinary_user(tmp_path, *argv):
    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
        return code, out.getvalue(), err.getvalue()
    return as_ordinary_user(tmp_path, run)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def saved_weights() -> list[Path]:
    return sorted(paths.user_weights_dir().glob("*.pt")) if paths.user_weights_dir().is_dir() else []


@pytest.fixture
def tutorial_file(tmp_path) -> Path:
    return save_weights(tmp_path / "tutorial.pt", build_model("tutorial"), "tutorial", {}, (0.0, 1.0))


# ---------------------------------------------------------------- train --out checked before training
@pytest.mark.parametrize("kind", ["folder", "fifo", "device link", "write-protected", "read-only folder"])
def test_bad_train_out_is_refused_before_training(synthetic_mnist, tmp_path, capsys, kind):
    target = tmp_path / "target.pt"
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "device link":
        target.symlink_to("/dev/null")
    elif kind == "write-protected":
        target.write_bytes(b"keep me")
        target.chmod(0o444)
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        target = tmp_path / "ro" / "w.pt"
    argv = ["train", *TINY, "--data", synthetic_mnist, "--out", target]
    code, out, err = run_cli_as_ordinary_user(tmp_path, *argv) if kind == "read-only folder" else run_cli(capsys, *argv)
    assert code == 2 and out == "" and one_error_line(err).startswith("error: --out: ")
    assert not saved_weights()  # nothing trained, nothing saved elsewhere
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(target).st_mode)
    if kind == "write-protected":
        assert target.read_bytes() == b"keep me"


def test_train_out_that_fails_at_the_end_is_saved_in_the_weights_folder(synthetic_mnist, tmp_path, capsys,
                                                                       monkeypatch):
    out = tmp_path / "later" / "w.pt"  # a new folder: fine when checked
    real_train = core.training.train

    def train_then_the_folder_becomes_a_file(*args, **kwargs):
        result = real_train(*args, **kwargs)
        (tmp_path / "later").write_text("someone put a file here meanwhile")
        return result

    monkeypatch.setattr(core.training, "train", train_then_the_folder_becomes_a_file)
    code, stdout, err = run_cli(capsys, "train", *TINY, "--data", synthetic_mnist, "--out", out, "--json")
    line = one_error_line(err)
    [kept] = saved_weights()
    assert code == 1 and f"could not save to {out}" in line and f"saved to {kept} instead" in line
    assert json.loads(stdout)["weights"] == str(kept) and load_weights(kept).arch == "tutorial"


def test_train_with_nowhere_to_save_says_so_in_one_line(synthetic_mnist, capsys):
    paths.user_weights_dir().parent.mkdir(parents=True, exist_ok=True)
    paths.user_weights_dir().write_text("a file where the weights folder should be")
    code, out, err = run_cli(capsys, "train", *TINY, "--data", synthetic_mnist)
    assert code == 1 and out == "" and "trained, but the weights could not be saved in" in one_error_line(err)


def test_train_names_never_collide_within_a_second(synthetic_mnist, capsys):
    for _ in range(2):
        assert run_cli(capsys, "train", *TINY, "--data", synthetic_mnist)[0] == 0
    assert len(saved_weights()) == 2


# ---------------------------------------------------------------- export onto its own input
def test_export_out_equal_to_weights_is_refused(tutorial_file, tmp_path, capsys, monkeypatch):
    torch.save(build_model("tutorial").state_dict(), tmp_path / "cnn.pth")
    (tmp_path / "alias.pth").symlink_to(tmp_path / "cnn.pth")
    monkeypatch.chdir(tmp_path)
    for source in (tutorial_file, tmp_path / "cnn.pth"):
        before = source.read_bytes()
        for out in (source, tmp_path / "alias.pth" if source.suffix == ".pth" else source.name,
                    f"./{source.name}"):
            code, _, err = run_cli(capsys, "export", "--weights", source, "--format", "tutorial", "--out", out)
            assert code == 2 and "being exported" in one_error_line(err)
        assert source.read_bytes() == before


# ---------------------------------------------------------------- numbers out of range
@pytest.mark.parametrize("argv", [["train", "--threads", "-1"], ["train", "--threads", "0"],
                                  ["train", "--seed", str(2**70)], ["train", "--seed", "-1"],
                                  ["finetune", "--seed", str(2**70)]])
def test_out_of_range_numbers_are_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "out of range" in err and "Traceback" not in err


# ---------------------------------------------------------------- crafted weights in every command
@pytest.mark.parametrize("changes", [{"normalization": "abc"}, {"settings": [1]}, {"metrics": {"test_accuracy": "x"}},
                                     {"arch": "digitnet", "arch_args": {"width": 10**6}}, {"version": None}])
@pytest.mark.parametrize("command", ["summary", "export", "evaluate", "predict"])
def test_malformed_weights_give_one_line_in_every_command(tutorial_file, tmp_path, capsys, command, changes):
    rewrite(tutorial_file, **changes)
    argv = {"summary": ["summary", "--weights", tutorial_file],
            "export": ["export", "--weights", tutorial_file, "--format", "tutorial", "--out", tmp_path / "x.pth"],
            "evaluate": ["evaluate", "--weights", tutorial_file, "--data", tmp_path],
            "predict": ["predict", "--weights", tutorial_file, tmp_path / "any.png"]}[command]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and one_error_line(err).startswith(f"error: {tutorial_file.name}")


def test_non_finite_weights_are_refused_and_no_nan_is_printed(tutorial_file, tmp_path, capsys):
    state = build_model("tutorial").state_dict()
    state["0.weight"][0, 0, 0, 0] = float("nan")
    rewrite(tutorial_file, state_dict=state)
    code, out, err = run_cli(capsys, "predict", "--json", "--weights", tutorial_file, tmp_path / "any.png")
    assert code == 2 and out == "" and "NaN or infinite" in one_error_line(err)


def test_unreadable_weights_file_is_one_line(tutorial_file, tmp_path, capsys):
    tutorial_file.chmod(0o000)
    code, _, err = run_cli_as_ordinary_user(tmp_path, "summary", "--weights", tutorial_file)
    assert code == 2 and "cannot be read (Permission denied)" in one_error_line(err)


@pytest.mark.parametrize("argv", [["predict", "--weights", "{fifo}", "{png}"],
                                  ["train", "--quiet", "--out", "{fifo}"]])
def test_fifo_as_weights_or_out_never_hangs(tmp_path, argv):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    argv = [a.format(fifo=fifo, png=tmp_path / "x.png") for a in argv]
    env = {**os.environ, "DIGIT_RECOGNIZER_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), *argv], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 2 and "not a" in one_error_line(done.stderr)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
