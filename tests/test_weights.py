"""Weights files: round trip, atomic saves, safe loading, plain-word errors, tutorial interop."""
import os

import pytest
import torch
from torch import nn

import core.weights
from core.models import build_model
from core.weights import (FORMAT_VERSION, WeightsError, export_tutorial, load_weights, save_weights)


def tutorial_sequential():
    # written out as in the tutorial's inference script
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(8, 16, 3), nn.ReLU(),
                         nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))


def save_digitnet(path, **metrics):
    torch.manual_seed(0)
    model = build_model("digitnet", width=8).eval()
    save_weights(path, model, "digitnet", {"width": 8, "dropout": 0.1}, (0.1307, 0.3081),
                 {"preset": "quick"}, {"test_accuracy": 0.99, **metrics})
    return model


def test_round_trip_rebuilds_the_model_from_the_file(tmp_path):
    path = tmp_path / "w.pt"
    model = save_digitnet(path)
    loaded = load_weights(path)
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(loaded.model(x), model(x))
    assert (loaded.arch, loaded.arch_args["width"], loaded.normalization) == ("digitnet", 8, (0.1307, 0.3081))
    assert loaded.test_accuracy == 0.99 and loaded.settings["preset"] == "quick" and loaded.created
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "digit-recognizer-weights" and raw["version"] == FORMAT_VERSION and raw["torch_version"]


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    save_digitnet(path, test_accuracy=0.5)
    before = path.read_bytes()

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.weights.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_digitnet(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.pt"]


def test_bare_tutorial_state_dict_loads_and_exports_back(tmp_path):
    model = tutorial_sequential()
    torch.save(model.state_dict(), tmp_path / "cnn_mnist.pth")  # exactly how the tutorial saves
    loaded = load_weights(tmp_path / "cnn_mnist.pth")
    x = torch.rand(2, 1, 28, 28)
    assert loaded.arch == "tutorial" and torch.allclose(loaded.model(x), model(x))
    export_tutorial(loaded, tmp_path / "exported.pth")
    fresh = tutorial_sequential()
    fresh.load_state_dict(torch.load(tmp_path / "exported.pth", weights_only=True))  # the tutorial script's load
    assert torch.allclose(fresh(x), model(x))


def test_export_of_other_architectures_is_refused(tmp_path):
    save_digitnet(tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="only the tutorial architecture"):
        export_tutorial(load_weights(tmp_path / "w.pt"), tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": Exploit(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="more than weights"):
        load_weights(tmp_path / "evil.pt")
    assert not marker.exists()


def test_whole_pickled_model_is_explained(tmp_path):
    torch.save(tutorial_sequential(), tmp_path / "model.pt")
    with pytest.raises(WeightsError, match="whole pickled model"):
        load_weights(tmp_path / "model.pt")


@pytest.mark.parametrize("content,message", [(b"hello, not torch", "not a PyTorch weights file"),
                                             (b"", "is empty")])
def test_non_weights_files(tmp_path, content, message):
    (tmp_path / "x.pt").write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_weights(tmp_path / "x.pt")


def test_truncated_file(tmp_path):
    save_digitnet(tmp_path / "w.pt")
    data = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "w.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or damaged"):
        load_weights(tmp_path / "w.pt")


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "nope.pt")


def edit_saved(path, **changes):
    obj = torch.load(path, weights_only=True)
    obj.update(changes)
    torch.save(obj, path)


def test_unknown_architecture_newer_version_and_shape_mismatch(tmp_path):
    path = tmp_path / "w.pt"
    save_digitnet(path)
    edit_saved(path, arch="transformer")
    with pytest.raises(WeightsError, match="unknown architecture 'transformer'"):
        load_weights(path)
    save_digitnet(path)
    edit_saved(path, version=FORMAT_VERSION + 1)
    with pytest.raises(WeightsError, match="newer version"):
        load_weights(path)
    save_digitnet(path)
    edit_saved(path, arch_args={"width": 16, "dropout": 0.1})
    with pytest.raises(WeightsError, match=r"shapes don't match for 0\.weight.*\(8, 1, 3, 3\).*\(16, 1, 3, 3\)"):
        load_weights(path)


def test_state_dict_of_another_model(tmp_path):
    torch.save(nn.Linear(784, 10).state_dict(), tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="matches no known architecture"):
        load_weights(tmp_path / "other.pth")


def test_saved_files_get_normal_permissions(tmp_path):
    save_digitnet(tmp_path / "w.pt")
    assert (tmp_path / "w.pt").stat().st_mode & 0o044 == 0o044  # readable by others, like any new file
