"""The window's weights slots against hostile files and targets: one message, and the model in use stays."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QUrl

from core.models import build_model
from core.weights import load_weights, save_weights
from tests.gui_support import open_window, private_qsettings, settings, tutorial_weights, window  # noqa: F401 (fixtures by name)
from tests.test_weights_hostile import rewrite


def crafted(tmp_path: Path, name: str, **changes) -> Path:
    path = save_weights(tmp_path / name, build_model("tutorial"), "tutorial", {}, (0.0, 1.0))
    rewrite(path, **changes)
    return path


@pytest.mark.parametrize("changes", [{"normalization": "abc"}, {"metrics": {"test_accuracy": "high"}},
                                     {"settings": 7}, {"arch": "digitnet", "arch_args": {"width": 10**6}}])
def test_malformed_file_by_menu_or_drop_changes_nothing(window, tmp_path, changes):
    before, label = window.current_weights(), window.weights_label.text()
    bad = crafted(tmp_path, "crafted.pt", **changes)
    assert not window.load_weights_file(bad)
    assert "crafted.pt" in window.last_message() and "stays in use" in window.last_message()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bad))])
    assert not window._open_mime(mime, "dropped image")  # the drop handler's path for .pt files
    assert window.current_weights() is before and window.weights_label.text() == label


def test_any_loader_failure_is_one_message(window, tmp_path, monkeypatch):
    import core.weights

    def loader_bug(path, map_location="cpu"):
        raise KeyError("something the checks did not foresee")

    monkeypatch.setattr(core.weights, "load_weights", loader_bug)
    before = window.current_weights()
    assert not window.load_weights_file(crafted(tmp_path, "any.pt"))
    assert "unexpected KeyError" in window.last_message() and window.current_weights() is before


def test_non_finite_weights_never_reach_the_bars(window, tmp_path):
    state = build_model("tutorial").state_dict()
    state["7.bias"][:] = float("nan")
    before = window.current_weights()
    assert not window.load_weights_file(crafted(tmp_path, "nan.pt", state_dict=state))
    assert "NaN or infinite" in window.last_message() and window.current_weights() is before


def test_save_as_onto_a_fifo_is_refused_and_the_name_stays(window, tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    label = window.weights_label.text()
    assert not window.save_weights_file(fifo)
    assert "not a regular file" in window.last_message() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert window.weights_label.text() == label


def test_save_as_through_a_symlink_writes_the_target(window, tmp_path):
    target = tmp_path / "real.pt"
    target.write_bytes(b"old")
    (tmp_path / "link.pt").symlink_to(target)
    assert window.save_weights_file(tmp_path / "link.pt")
    assert (tmp_path / "link.pt").is_symlink() and load_weights(target).metrics == {"test_accuracy": 0.5}


def test_export_onto_the_file_in_use_is_refused(window, tmp_path):
    bare = tmp_path / "cnn.pth"
    torch.save(build_model("tutorial").state_dict(), bare)
    assert window.load_weights_file(bare)
    before = bare.read_bytes()
    assert not window.export_tutorial_file(bare)
    assert "being exported" in window.last_message() and "preset" not in window.last_message()
    assert bare.read_bytes() == before
