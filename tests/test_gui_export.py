"""File > Export in the window: which formats apply, the files they write, and .safetensors by dialog and drop."""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import torch

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QTimer, QUrl  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QProgressBar  # noqa: E402

from core.models import build_model  # noqa: E402
from core.weights import load_weights, save_weights  # noqa: E402
from tests.gui_support import TIMEOUT, open_window, private_qsettings, settings, tutorial_weights, window  # noqa: E402, F401 (fixtures)
from tests.test_gui_inputs_hostile import drop  # noqa: E402


def export_menu(window):
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    return next(a.menu() for a in file_menu.actions() if a.menu() is not None and a.text() == "&Export")


def enabled_exports(window) -> dict[str, bool]:
    return {a.text().replace("&", ""): a.isEnabled() for a in export_menu(window).actions()}


def test_export_submenu_offers_each_format_where_it_applies(window, tmp_path):
    from core.export import missing_onnx_packages

    onnx = not missing_onnx_packages()  # ONNX needs optional packages
    assert enabled_exports(window) == {"For the tutorial script…": True, "ONNX…": onnx, "safetensors…": True}
    fastnet = save_weights(tmp_path / "fast.pt", build_model("fastnet", width=4), "fastnet", {"width": 4},
                           (0.1307, 0.3081))
    assert window.load_weights_file(fastnet)
    assert enabled_exports(window) == {"For the tutorial script…": False, "ONNX…": onnx, "safetensors…": True}


@pytest.mark.parametrize("missing", [[], ["onnxscript"], ["onnx", "onnxscript"]])
def test_the_onnx_entry_is_greyed_out_and_says_what_to_install_when_its_packages_are_missing(window, tutorial_weights,
                                                                                           monkeypatch, missing):
    import core.export

    monkeypatch.setattr(core.export, "missing_onnx_packages", lambda: list(missing))
    assert window.load_weights_file(tutorial_weights)  # a model comes into use: the menu is checked again
    assert enabled_exports(window) == {"For the tutorial script…": True, "ONNX…": not missing, "safetensors…": True}
    action, menu = window.export_onnx_action, export_menu(window)
    if missing:
        install = "pip install " + " ".join(missing)
        assert install in action.toolTip() and install in action.statusTip() and menu.toolTipsVisible()
    else:
        assert "pip install" not in action.statusTip() and "onnxruntime" in action.statusTip()


def test_safetensors_export_loads_back_by_dialog_and_by_drop(window, tutorial_weights, tmp_path, monkeypatch):
    out = tmp_path / "shared.safetensors"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(out), ""))
    window.export_safetensors_action.trigger()
    assert load_weights(out).metrics == {"test_accuracy": 0.5}
    assert "Exported shared.safetensors" in window.statusBar().currentMessage()

    filters = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a: (filters.append(a[3]) or str(out), ""))
    assert window.load_weights_file(tutorial_weights)
    window.load_action.trigger()
    assert "*.safetensors" in filters[0] and window.current_weights().name == "shared.safetensors"

    assert window.load_weights_file(tutorial_weights)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(out))])
    drop(window, mime)  # a dropped .safetensors is weights, not an image
    assert window.current_weights().name == "shared.safetensors" and window.current_weights().arch == "tutorial"


def test_onnx_export_runs_in_the_background_and_the_file_runs_in_onnxruntime(qtbot, window, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    with qtbot.waitSignal(window.export_task.finished, timeout=TIMEOUT):
        assert window.export_file(tmp_path / "model.onnx", "onnx")  # returns at once: the export has started
        busy = window.findChild(QProgressBar, "exportBusy")
        assert window.export_task.is_running() and busy.isVisible()
        assert "Exporting model.onnx" in window.statusBar().currentMessage()
    timer.stop()
    assert len(ticks) >= 3  # the GUI thread kept handling events while the exporter traced the model
    assert "Exported model.onnx as onnx" in window.statusBar().currentMessage()
    assert not busy.isVisible() and window.last_message() is None
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    (logits,) = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"image": x})
    model = window.current_weights().model
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_onnx_without_its_packages_says_what_to_install(qtbot, window, tutorial_weights, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with qtbot.waitSignal(window.message_shown, timeout=TIMEOUT) as shown:
        window.export_file(tmp_path / "model.onnx", "onnx")
    assert "pip install" in shown.args[0] and "onnxscript" in shown.args[0]
    qtbot.waitUntil(lambda: not window.export_task.is_running(), timeout=TIMEOUT)
    assert not (tmp_path / "model.onnx").exists() and window.statusBar().currentMessage() == ""
    assert window.current_weights().name == tutorial_weights.name  # the model in use stays


def test_a_second_onnx_export_while_one_runs_is_refused_with_a_message(qtbot, window, tmp_path):
    pytest.importorskip("onnxscript")
    with qtbot.waitSignal(window.export_task.finished, timeout=TIMEOUT):
        assert window.export_file(tmp_path / "first.onnx", "onnx")
        assert not window.export_file(tmp_path / "second.onnx", "onnx")
        assert "still running" in window.last_message()
    assert (tmp_path / "first.onnx").is_file() and not (tmp_path / "second.onnx").exists()


def test_closing_the_window_during_an_onnx_export_waits_for_it(qtbot, window, tmp_path):
    pytest.importorskip("onnxscript")
    assert window.export_file(tmp_path / "model.onnx", "onnx")
    assert window.close()  # joins the export's thread: no QThread outlives the window
    assert (tmp_path / "model.onnx").is_file()  # so the exporter had finished when close() returned
    qtbot.waitUntil(lambda: not window.export_task.is_running(), timeout=TIMEOUT)
