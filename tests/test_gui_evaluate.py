"""The Evaluate tab, offscreen: the core's numbers, confusion cells to galleries, images to the pad, cache, errors."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from tests.gui_support import TIMEOUT, draw, open_window, private_qsettings, settings  # noqa: E402,F401


@pytest.fixture
def tiny_weights(tiny_settings, tmp_path):
    """The tutorial's network trained for a moment on the synthetic digits: right on most, wrong on some."""
    from core.training import train
    from core.weights import save_weights

    result = train(replace(tiny_settings, epochs=1))
    return save_weights(tmp_path / "tiny.pt", result.model, "tutorial", result.arch_args, result.normalization,
                        tiny_settings.to_dict(), result.metrics)


@pytest.fixture
def window(qtbot, settings, tiny_weights, synthetic_mnist):
    window = open_window(qtbot, settings, tiny_weights)
    window.train_tab.form.set_data_folder(str(synthetic_mnist))
    window.tabs.setCurrentWidget(window.evaluate_tab)
    return window


def evaluate(qtbot, tab):
    with qtbot.waitSignal(tab.report_shown, timeout=TIMEOUT):
        assert tab.start_evaluation()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=TIMEOUT)
    return tab.report()


def click_cell(matrix, true, predicted):
    centre = matrix.cell_rect(true, predicted).center()
    QTest.mouseClick(matrix, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(round(centre.x()), round(centre.y())))


def test_numbers_are_the_command_lines(qtbot, window, tiny_weights, synthetic_mnist, capsys):
    from core.cli import main

    report = evaluate(qtbot, window.evaluate_tab)
    assert main(["evaluate", "--weights", str(tiny_weights), "--data", str(synthetic_mnist), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert report.evaluation.confusion == cli["confusion"]
    assert report.evaluation.accuracy == pytest.approx(cli["test_accuracy"], abs=1e-4)
    assert report.evaluation.n == cli["n"] == 200
    assert f"{100 * cli['test_accuracy']:.2f}%" in window.evaluate_tab.status.text()


def test_clicking_a_cell_shows_exactly_its_images_and_an_image_goes_to_the_pad(qtbot, window):
    tab = window.evaluate_tab
    report = evaluate(qtbot, tab)
    confusion = np.array(report.evaluation.confusion)
    off = confusion - np.diag(np.diag(confusion))
    true, predicted = np.unravel_index(np.argmax(off), off.shape) if off.any() else (0, 0)
    click_cell(tab.matrix, int(true), int(predicted))
    gallery = tab.cell_gallery
    assert gallery.count() == confusion[true, predicted] > 0
    shown = [gallery.index_of(row) for row in range(gallery.count())]
    assert all(report.labels[i] == true and report.predictions[i] == predicted for i in shown)
    click_cell(tab.matrix, 3, 3)
    assert gallery.count() == confusion[3, 3]

    item = gallery.item(0)
    index = gallery.index_of(0)
    with qtbot.waitSignal(tab.image_chosen, timeout=TIMEOUT):
        gallery.itemClicked.emit(item)
    pad = window.draw_tab.pad
    assert pad.has_image() and np.array_equal(pad.model_input(), report.images[index])
    assert window.tabs.currentWidget() is window.insight_tab
    assert f"#{index}" in window.statusBar().currentMessage()


def test_most_confident_mistakes_are_wrong_and_sorted(qtbot, window):
    tab = window.evaluate_tab
    report = evaluate(qtbot, tab)
    gallery = tab.mistakes_gallery
    shown = [gallery.index_of(row) for row in range(gallery.count())]
    assert len(shown) == min(len(report.evaluation.misclassified), 60)
    assert all(report.labels[i] != report.predictions[i] for i in shown)
    confidences = [report.confidences[i] for i in shown]
    assert confidences == sorted(confidences, reverse=True)


def test_results_are_cached_per_weights(qtbot, window, tiny_weights):
    tab = window.evaluate_tab
    report = evaluate(qtbot, tab)
    window.use_default_weights()
    assert tab.report() is None and "Press Evaluate" in tab.status.text()
    assert window.load_weights_file(tiny_weights)
    assert tab.report() is not None and not tab.is_busy()  # shown at once, from the cache
    assert tab.report().evaluation.confusion == report.evaluation.confusion


def test_the_drawing_is_placed_on_the_map_and_moves(qtbot, window):
    tab = window.evaluate_tab
    report = evaluate(qtbot, tab)
    assert tab.map.point_count() == len(report.labels)
    tab.pages.setCurrentIndex(2)
    pad = window.draw_tab.pad
    assert tab.isAncestorOf(pad)  # the pad is on the map page
    draw(pad, [[(0.5, 0.15), (0.5, 0.85)]])
    first = tab.map.marker_position()
    assert first is not None
    pad.clear()
    assert tab.map.marker_position() is None
    draw(pad, [[(0.2, 0.2), (0.8, 0.8)], [(0.8, 0.2), (0.2, 0.8)]])
    second = tab.map.marker_position()
    assert second is not None and second != first


def test_tsne_map_arrives_in_the_background(qtbot, window):
    tab = window.evaluate_tab
    evaluate(qtbot, tab)
    qtbot.waitUntil(lambda: tab.map_choice.count() == 2, timeout=TIMEOUT)
    with qtbot.waitSignal(tab.map_changed, timeout=TIMEOUT, check_params_cb=lambda m: m == "tsne"):
        tab.map_choice.setCurrentIndex(1)
    assert tab.map.point_count() == 200


def test_missing_mnist_says_so_once_and_nothing_else_breaks(qtbot, window, tmp_path, monkeypatch):
    import core.data
    from gui.mnist_download import MnistDownloadDialog

    monkeypatch.setattr(core.data, "_download", lambda root, **_: (_ for _ in ()).throw(OSError("offline")))
    window.train_tab.form.set_data_folder(str(tmp_path / "nowhere"))
    tab = window.evaluate_tab
    status = tab.status.text()
    assert not tab.start_evaluation()  # the download dialog comes first (tests/test_gui_download.py)
    (dialog,) = tab.findChildren(MnistDownloadDialog)
    qtbot.waitUntil(lambda: not dialog.is_downloading(), timeout=TIMEOUT)
    assert "MNIST not found" in dialog.message.text() and "offline" in dialog.message.text()
    assert tab.status.text() == status and window.last_message() is None  # said once, in the dialog
    assert tab.report() is None and tab.evaluate_button.isEnabled()
    window.tabs.setCurrentWidget(window.draw_tab)
    draw(window.draw_tab.pad, [[(0.5, 0.15), (0.5, 0.85)]])
    assert window.draw_tab.bars.probabilities() is not None  # drawing still works


def test_cancel_on_the_real_test_set_stops_and_keeps_nothing(qtbot, settings, real_mnist_dir):
    window = open_window(qtbot, settings, None)  # the shipped weights: a full pass takes seconds, so Cancel lands
    window.train_tab.form.set_data_folder(str(real_mnist_dir))
    window.tabs.setCurrentWidget(window.evaluate_tab)
    tab = window.evaluate_tab
    assert tab.start_evaluation()
    qtbot.waitUntil(lambda: tab.progress.maximum() == 10_000, timeout=TIMEOUT)  # MNIST loaded, images going through
    qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=TIMEOUT)
    assert tab.report() is None and "Cancelled" in tab.status.text()
    assert tab.evaluate_button.isEnabled() and not tab.cancel_button.isEnabled()
