"""The desktop app, offscreen: drawing, opening images, weights files, training in a thread, closing."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core import paths  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from tests.gui_support import (  # noqa: E402,F401 (fixtures are found by name in this module)
    TIMEOUT, densify, draw, open_window, press_and_move, private_qsettings, release, settings, to_widget, trained_window, tutorial_weights, window)

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- fixtures
# ---------------------------------------------------------------- drawing with the mouse
def ellipse(cx, cy, rx, ry, n=48):
    return [(cx + rx * math.sin(2 * math.pi * t / n), cy - ry * math.cos(2 * math.pi * t / n)) for t in range(n + 1)]


DIGITS = {  # strokes in paper coordinates (0..1), drawn as people do: large, black on white
    1: [[(0.52, 0.18), (0.47, 0.82)]],
    7: [[(0.28, 0.2), (0.72, 0.2), (0.45, 0.82)]],
    0: [ellipse(0.5, 0.5, 0.2, 0.32)],
}


# ---------------------------------------------------------------- Draw tab
def test_window_shows_loading_first_and_the_pad_is_usable_at_once(qtbot, settings, tutorial_weights):
    settings.setValue("weights/last", str(tutorial_weights))
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    assert not window.is_model_ready()
    assert window.weights_label.text() == "Loading model…"
    draw(window.draw_tab.pad, DIGITS[1])  # drawing before the model is ready works...
    assert window.draw_tab.bars.probabilities() is None  # ...but shows no guess yet
    assert window.draw_tab.bars.message() == "Loading model…"
    qtbot.waitUntil(window.is_model_ready, timeout=TIMEOUT)
    assert window.draw_tab.bars.probabilities() is not None  # the waiting drawing is predicted when ready
    assert "tutorial-test.pt" in window.weights_label.text() and "50.00%" in window.weights_label.text()


def test_importing_the_window_does_not_import_torch():
    code = "import sys, gui.main_window, gui.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_started_app_predicts_on_one_torch_thread_and_trains_on_all(tmp_path):
    """`gui.app.run`, as `python main.py` starts it: once the model has loaded, the GUI thread runs torch on one
    thread (its own OpenMP pool made a worker's training 2.3x slower) and the Train tab asks for the machine's
    count; after the window closes, torch's default is back."""
    code = """if True:
        import os
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from gui import app, background
        qapp = QApplication([])
        def check():
            windows = [w for w in qapp.topLevelWidgets() if hasattr(w, 'is_model_ready')]
            if windows and windows[0].is_model_ready():
                import torch
                timer.stop()
                print(torch.get_num_threads(), background.machine_threads(), flush=True)
                qapp.closeAllWindows()
        timer = QTimer()
        timer.timeout.connect(check)
        timer.start(50)
        status = app.run()
        import torch
        print(status, torch.get_num_threads(), os.cpu_count(), flush=True)
    """
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DIGIT_RECOGNIZER_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    (gui_thread, machine), (status, after, cores) = [list(map(int, line.split())) for line in out.stdout.splitlines()]
    assert status == 0 and gui_thread == 1
    assert machine == after and machine >= min(2, cores)  # torch's default: the physical cores, 2 on a laptop


def test_blank_pad_shows_empty_bars_and_no_guess(window):
    bars = window.draw_tab.bars
    assert bars.probabilities() is None
    assert bars.message() == "Draw a digit"


@pytest.mark.parametrize("digit", [1, 7, 0])
def test_drawn_digit_is_recognized(trained_window, digit):
    draw(trained_window.draw_tab.pad, DIGITS[digit])
    bars = trained_window.draw_tab.bars
    probabilities = bars.probabilities()
    assert probabilities is not None and len(probabilities) == 10
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    assert int(np.argmax(probabilities)) == digit == bars.top_digit()


def test_prediction_updates_live_during_a_stroke(qtbot, window):
    pad, bars = window.draw_tab.pad, window.draw_tab.bars
    last = press_and_move(pad, DIGITS[7][0][:2])  # the 7's top bar, button still down
    qtbot.waitUntil(lambda: bars.probabilities() is not None, timeout=5000)
    first = bars.probabilities()
    QTest.mouseMove(pad, to_widget(pad, (0.6, 0.45)))
    QTest.mouseMove(pad, to_widget(pad, (0.45, 0.82)))
    qtbot.waitUntil(lambda: bars.probabilities() != first, timeout=5000)  # the diagonal changed the prediction
    assert pad.stroke_count() == 0  # all of this happened during one unfinished stroke
    release(pad, last)
    assert pad.stroke_count() == 1


def test_undo_and_clear_with_buttons_and_shortcuts(qtbot, window):
    pad, bars = window.draw_tab.pad, window.draw_tab.bars
    draw(pad, DIGITS[7] + DIGITS[1])
    assert pad.stroke_count() == 2
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    pad.setFocus()
    QTest.keyClick(pad, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Z: undo the last stroke
    assert pad.stroke_count() == 1 and bars.probabilities() is not None
    QTest.keyClick(pad, Qt.Key.Key_Escape)  # Esc clears
    assert pad.is_blank() and bars.probabilities() is None
    draw(pad, DIGITS[0])
    window.draw_tab.undo_button.click()
    assert pad.is_blank()
    draw(pad, DIGITS[0])
    qtbot.mouseClick(window.findChild(type(window.draw_tab.clear_button), "clearButton"), Qt.MouseButton.LeftButton)
    assert pad.is_blank() and bars.probabilities() is None and bars.message() == "Draw a digit"


def test_default_brush_gives_mnist_like_strokes_in_the_preview(window):
    """MNIST's zeros average ~0.16 ink per pixel at 28x28; a hairline or a blob would be far off."""
    pad = window.draw_tab.pad
    draw(pad, DIGITS[0])
    image28 = window.draw_tab.bars.preview()  # the 28x28 "what the network sees" preview
    assert 0.09 < image28.mean() / 255 < 0.25
    pad.clear()
    window.draw_tab.brush_slider.setValue(window.draw_tab.brush_slider.minimum())
    draw(pad, DIGITS[0])
    thin = window.draw_tab.bars.preview()
    assert thin.mean() < image28.mean() * 0.6  # the brush setting visibly changes the strokes


def test_resizing_the_window_keeps_the_drawing(qtbot, window):
    pad, bars = window.draw_tab.pad, window.draw_tab.bars
    draw(pad, DIGITS[7])
    before = bars.probabilities()
    window.resize(700, 500)
    qtbot.waitUntil(lambda: pad.width() < 500, timeout=5000)
    picture = pad.grab().toImage()
    rect = pad.canvas_rect()
    # the 7's top bar is still on screen, scaled to the smaller paper
    ink = picture.pixelColor(round(rect.x() + 0.5 * rect.width()), round(rect.y() + 0.2 * rect.height()))
    assert ink.lightness() < 60
    assert pad.stroke_count() == 1
    pad.drawing_changed.emit()
    assert bars.probabilities() == pytest.approx(before)  # the model sees the same drawing at any size


# ---------------------------------------------------------------- images: open, drop, paste
def write_digit_png(path: Path, digit_strokes, size=(240, 320)) -> Path:
    """A photo-like image: dark ink on light paper, not square, not centred."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (235, 232, 225))
    pen = ImageDraw.Draw(image)
    w, h = size
    for stroke in digit_strokes:
        pen.line([(x * w * 0.8, y * h * 0.9) for x, y in densify(stroke)], fill=(30, 30, 40), width=14, joint="curve")
    image.save(path)
    return path


def test_open_image_shows_it_on_the_pad_and_predicts_it(window, tmp_path):
    path = write_digit_png(tmp_path / "seven.png", DIGITS[7])
    assert window.open_image_file(path)
    pad, bars = window.draw_tab.pad, window.draw_tab.bars
    assert pad.has_image() and not pad.is_blank()
    assert bars.probabilities() is not None
    assert "seven.png" in window.statusBar().currentMessage()


def test_opened_image_is_recognized(trained_window, tmp_path):
    path = write_digit_png(tmp_path / "seven.png", DIGITS[7])
    assert trained_window.open_image_file(path)
    assert trained_window.draw_tab.bars.top_digit() == 7


def test_unreadable_image_explains_and_leaves_the_pad_unchanged(window, tmp_path):
    pad, bars = window.draw_tab.pad, window.draw_tab.bars
    draw(pad, DIGITS[1])
    shown = bars.probabilities()
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    assert not window.open_image_file(bad)
    assert "holiday.png" in window.last_message()
    assert pad.stroke_count() == 1 and not pad.has_image()
    assert bars.probabilities() == shown


def test_dropping_an_image_file_opens_it(window, tmp_path):
    path = write_digit_png(tmp_path / "dropped.png", DIGITS[0])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    where = QPointF(window.width() / 3, window.height() / 2)
    enter = QDragEnterEvent(where.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert window.draw_tab.pad.has_image()
    assert window.draw_tab.bars.probabilities() is not None


def test_pasting_an_image_opens_it(window):
    image = QImage(120, 160, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.white)
    for y in range(30, 130):  # a thick black vertical bar: a 1
        for x in range(55, 68):
            image.setPixelColor(x, y, Qt.GlobalColor.black)
    QGuiApplication.clipboard().setImage(image)
    assert window.paste_image()
    assert window.draw_tab.pad.has_image()
    assert window.draw_tab.bars.probabilities() is not None


# ---------------------------------------------------------------- weights files
def test_loading_a_bad_weights_file_explains_and_keeps_the_model(window, tmp_path):
    before, label = window.current_weights(), window.weights_label.text()
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a zip, not a pickle")
    assert not window.load_weights_file(bad)
    assert "broken.pt" in window.last_message()
    assert window.current_weights() is before and window.weights_label.text() == label


def test_save_as_export_and_load_weights(window, tmp_path):
    import torch

    copy = tmp_path / "my-weights.pt"
    assert window.save_weights_file(copy)
    assert copy.is_file() and "my-weights.pt" in window.weights_label.text()
    exported = tmp_path / "cnn_mnist.pth"
    assert window.export_tutorial_file(exported)
    assert set(torch.load(exported, weights_only=True)) == {"0.weight", "0.bias", "3.weight", "3.bias",
                                                            "7.weight", "7.bias"}
    assert window.load_weights_file(exported)  # the tutorial's bare state_dict loads back
    assert window.current_weights().arch == "tutorial"


def test_last_weights_and_brush_are_remembered(qtbot, window, settings, tmp_path):
    copy = tmp_path / "remember-me.pt"
    window.save_weights_file(copy)
    window.draw_tab.brush_slider.setValue(30)
    window.close()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    qtbot.waitUntil(again.is_model_ready, timeout=TIMEOUT)
    assert again.current_weights().path == copy
    assert again.draw_tab.pad.brush_width() == 30


def test_missing_remembered_weights_fall_back_with_a_notice(qtbot, settings, tmp_path):
    if not paths.DEFAULT_WEIGHTS.is_file():
        pytest.skip("needs the shipped default weights to fall back to")
    window = open_window(qtbot, settings, tmp_path / "deleted.pt")
    assert window.current_weights().path.resolve() == paths.DEFAULT_WEIGHTS.resolve()
    assert "deleted.pt" in window.last_message()


def test_closing_before_the_model_has_loaded_is_clean(qtbot, settings, tutorial_weights):
    settings.setValue("weights/last", str(tutorial_weights))
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    assert window.close()
    qtbot.wait(100)  # the queued start of loading runs now and must start nothing
    assert not window.is_model_ready()


# ---------------------------------------------------------------- Train tab
def test_choosing_a_preset_fills_the_form_and_an_edit_makes_it_custom(window):
    form = window.train_tab.form
    form.preset.setCurrentText("tutorial")
    assert form.arch.currentText() == "tutorial" and not form.width_spin.isEnabled()
    assert (form.epochs.value(), form.batch_size.value(), form.lr.value()) == (1, 32, 0.001)
    assert form.optimizer.currentText() == "adam" and not form.augment.isChecked() and form.val_share.value() == 0
    assert form.settings().preset == "tutorial"
    form.epochs.setValue(3)
    assert form.preset.currentText() == "custom (from tutorial)" and form.settings().preset == "custom"
    form.epochs.setValue(1)
    assert form.preset.currentText() == "tutorial"  # back to the preset's values: its name again


def start_training(window: MainWindow, settings) -> None:
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    tab.form.set_settings(settings)
    window.findChild(type(tab.train_button), "trainButton").click()
    assert tab.is_training()


def test_training_through_the_train_button(qtbot, window, tiny_settings):
    tab, before = window.train_tab, window.current_weights()
    stats: list[str] = []
    tab._task.progress_changed.connect(lambda _: stats.append(tab.stats.text()))  # after the tab's own slot
    with qtbot.waitSignal(tab.weights_trained, timeout=TIMEOUT):
        start_training(window, tiny_settings)
        assert not tab.train_button.isEnabled() and tab.stop_button.isEnabled()
    total = tab.progress.maximum()
    assert total > 2 and tab.progress.value() == total  # the bar spans all batches of both epochs
    assert tab.chart.point_count() == total  # every batch loss reached the chart
    assert [e[0] for e in tab.chart.epoch_points()] == [total // 2, total]  # validation points at epoch ends
    assert "validation accuracy" in tab.chart.legend_names() and tab.chart.right_axis_shown()
    assert "Test accuracy" in tab.result.text()
    assert any("training accuracy" in line and "samples/s" in line for line in stats)  # beside the loss
    assert "train accuracy" in tab.epochs_label.text()
    # quick's label smoothing 0.1: why its loss stays near 0.5 while the accuracy is high
    assert "Label smoothing 0.1" in tab.result.text() and "0.50" in tab.result.text()
    new = window.current_weights()  # the Draw tab switched to the file just saved
    assert new is not before and new.path.parent == paths.user_weights_dir() and new.path.is_file()
    assert new.name in window.weights_label.text()
    assert new.name in window.draw_tab.notice_text()
    assert window.statusBar().currentMessage() == f"Training done: now using {new.name}"
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=TIMEOUT)
    assert tab.train_button.isEnabled() and not tab.stop_button.isEnabled()
    window.draw_tab.previous_button.click()  # "Use previous weights"
    assert window.current_weights().path == before.path
    assert window.draw_tab.notice_text() is None


def test_the_first_report_has_no_made_up_eta_and_later_ones_read_the_core_clock(window):
    from gui.train_worker import TrainProgress

    tab = window.train_tab
    tab.on_task_progress_changed(TrainProgress(0, 2, 1, 100, 2.3, 0.1, 0.0, None, [2.3], [0.1]))
    assert "ETA …" in tab.stats.text() and "0:00" not in tab.stats.text()
    tab.on_task_progress_changed(TrainProgress(0, 2, 40, 100, 0.4, 0.42, 435.0, 75.0, [0.5, 0.4], [0.3, 0.5]))
    assert "435 samples/s" in tab.stats.text() and "ETA 1:15" in tab.stats.text()
    assert "training accuracy 42.0%" in tab.stats.text()


def test_the_chart_legend_and_right_axis_show_only_series_with_data(qtbot):
    from gui.loss_chart import LossChart

    chart = LossChart()
    qtbot.addWidget(chart)
    assert chart.legend_names() == [] and not chart.right_axis_shown()  # a fresh chart: nothing to explain yet
    chart.add_losses([2.3, 1.0])
    chart.add_epoch(2, None, None)  # quick: no validation share
    assert chart.legend_names() == ["batch loss", "smoothed loss"] and not chart.right_axis_shown()
    chart.add_losses([0.9], [0.8])
    chart.on_redraw_timer_timeout()
    assert "training accuracy (smoothed)" in chart.legend_names() and chart.right_axis_shown()
    assert not any("validation" in name for name in chart.legend_names())
    chart.add_epoch(3, 0.7, 0.75)  # a preset with a validation share
    assert chart.legend_names()[-2:] == ["validation loss", "validation accuracy"]
    chart.reset()
    assert chart.legend_names() == [] and not chart.right_axis_shown()


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_the_label_smoothing_floor_is_what_pytorch_computes_for_a_perfect_model(smoothing):
    import torch
    import torch.nn.functional as F

    from core.settings import smoothed_loss_floor

    target = torch.full((1, 10), smoothing / 10)
    target[0, 3] += 1 - smoothing
    perfect = target.clamp(min=1e-12).log()  # logits whose softmax is the smoothed target itself
    loss = F.cross_entropy(perfect, torch.tensor([3]), label_smoothing=smoothing)
    assert smoothed_loss_floor(smoothing) == pytest.approx(float(loss), abs=1e-5)


def test_stop_cancels_mid_training_and_keeps_the_model(qtbot, window, tiny_settings):
    from dataclasses import replace

    tab, before = window.train_tab, window.current_weights()
    start_training(window, replace(tiny_settings, epochs=300))
    qtbot.waitUntil(lambda: tab.progress.value() >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(tab.training_stopped, timeout=TIMEOUT) as stopped:
        window.findChild(type(tab.stop_button), "stopButton").click()
        tab.stop_box().findChild(type(tab.stop_button), "stopDiscard").click()  # Stop asks: keep or discard
    assert stopped.args[0] < tab.progress.maximum()
    assert "Stopped" in tab.result.text()
    assert window.current_weights() is before
    assert not list(paths.user_weights_dir().glob("*.pt"))  # nothing saved


def test_closing_the_window_mid_training_stops_and_joins_the_thread(qtbot, settings, tutorial_weights, tiny_settings):
    from dataclasses import replace

    window = open_window(qtbot, settings, tutorial_weights)
    tab = window.train_tab
    start_training(window, replace(tiny_settings, epochs=300))
    qtbot.waitUntil(lambda: tab.progress.value() >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(tab.training_ended, timeout=TIMEOUT):
        assert window.close()  # returns once the worker has stopped and its thread has been joined
    assert not tab.is_training()
    assert not list(paths.user_weights_dir().glob("*.pt"))


@pytest.mark.parametrize("problem", ["missing", "truncated"])
def test_failed_training_shows_one_message_and_keeps_the_model(qtbot, window, tiny_settings, tmp_path, problem):
    from dataclasses import replace

    if problem == "missing":
        folder = tmp_path / "not-a-folder.txt"  # a file where the MNIST folder should be: nothing to download into
        folder.write_text("oops")
    else:
        folder = Path(tiny_settings.data_dir)
        images = folder / "MNIST" / "raw" / "train-images-idx3-ubyte"
        images.write_bytes(images.read_bytes()[:5000])
    before = window.current_weights()
    with qtbot.waitSignal(window.message_shown, timeout=TIMEOUT) as shown:
        start_training(window, replace(tiny_settings, data_dir=str(folder)))
    assert ("MNIST not found" if problem == "missing" else "truncated") in shown.args[0]
    assert window.current_weights() is before
    qtbot.waitUntil(lambda: not window.train_tab.is_training(), timeout=TIMEOUT)


def test_failed_save_after_training_shows_why_and_keeps_the_model(qtbot, window, tiny_settings):
    paths.user_weights_dir().parent.mkdir(parents=True, exist_ok=True)
    paths.user_weights_dir().write_text("a file where the weights folder should be")  # like a full or broken disk
    before = window.current_weights()
    with qtbot.waitSignal(window.message_shown, timeout=TIMEOUT) as shown:
        start_training(window, tiny_settings)
    assert "could not be saved" in shown.args[0]
    assert window.current_weights() is before


def test_worker_signals_are_throttled_and_the_final_values_arrive(qtbot, tiny_settings):
    """Run the worker on its own: hundreds of one-image batches must not become as many queued signals."""
    import threading
    from dataclasses import replace

    from gui.background import BackgroundTask
    from gui.train_worker import TrainProgress, TrainWorker

    worker = TrainWorker(replace(tiny_settings, batch_size=1, epochs=1), paths.user_weights_dir(), threading.Event(),
                         min_interval=0.05)
    task = BackgroundTask("training")
    reports = []
    task.progress_changed.connect(reports.append)
    with qtbot.waitSignal(task.succeeded, timeout=TIMEOUT) as outcome:
        task.start(worker.run)
    assert outcome.args[0].weights is not None
    progress = [r for r in reports if isinstance(r, TrainProgress)]
    assert len(progress) < len(reports)  # the epoch's result came through the same stream
    total = progress[-1].total_batches
    assert progress[-1].batches_done == total
    assert total >= 500 and sum(len(r.losses) for r in progress) == total  # every loss delivered, in order
    reports = progress
    assert len(reports) < total / 4
