"""The Runs tab and Stop's question, offscreen: runs appear, overlay, load, delete; Stop keeps or discards the model."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from core import paths  # noqa: E402
from core.run_recorder import RunRecorder  # noqa: E402
from core.runs import RunStore  # noqa: E402
from tests.gui_support import TIMEOUT, open_window, private_qsettings, settings, tutorial_weights, window  # noqa: E402,F401


def weights_in_our_folder(name: str, seed: int) -> Path:
    import torch

    from core.models import build_model
    from core.weights import save_weights

    torch.manual_seed(seed)
    return save_weights(paths.user_weights_dir() / name, build_model("tutorial"), "tutorial", {}, (0.0, 1.0),
                        {"preset": "tutorial"}, {"test_accuracy": 0.9 + seed / 100})


def cli_style_run(name: str, batches: int, batch_size: int, weights: Path | None, accuracy: float | None,
                  status: str = "completed", label_smoothing: float = 0.0) -> str:
    """A run's record as `python main.py train` writes it (the curve made up, the files real); 0 batches: a run
    stopped by Ctrl+C before its first batch."""
    recorder = RunRecorder("train", "cli", name, {"preset": "tutorial", "arch": "tutorial", "epochs": 1,
                                                  "batch_size": batch_size, "label_smoothing": label_smoothing},
                           "cpu", "fp32", 2)
    for b in range(batches):
        recorder.add_batch(batch_size * (b + 1), 2.3 / (1 + b / 10), min(1.0, b / batches + 0.1))
    recorder.finish(status, {"test_accuracy": accuracy}, weights)
    return recorder.id


def start_training(window, settings) -> None:
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    tab.form.set_settings(settings)
    tab.train_button.click()
    assert tab.is_training()


def test_a_run_from_the_train_tab_appears_in_the_runs_table(qtbot, window, tiny_settings):
    tab = window.train_tab
    with qtbot.waitSignal(tab.run_recorded, timeout=TIMEOUT) as recorded:
        start_training(window, tiny_settings)
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=TIMEOUT)
    window.tabs.setCurrentWidget(window.runs_view)
    view = window.runs_view
    assert [run.id for run in view.runs()] == [recorded.args[0]]
    model, trained = view.model, window.current_weights()
    row = {column: model.index(0, c).data() for c, column in enumerate(("When", "Kind", "Name", "Epochs", "Test",
                                                                        "Time", "Device", "Status", "Weights"))}
    assert row["Kind"] == "train" and row["Status"] == "completed" and row["Epochs"] == "2/2"
    assert row["Test"] == f"{100 * trained.test_accuracy:.2f}%" and row["Weights"] == trained.path.name
    assert row["Device"].startswith("cpu · ")
    record = RunStore().load(recorded.args[0])
    assert record.source == "gui" and len(record.curve["loss"]) == tab.chart.point_count()


def test_a_command_line_run_shows_when_the_tab_is_shown_and_two_selected_runs_overlay(qtbot, window):
    view = window.runs_view
    window.tabs.setCurrentWidget(view)
    assert view.runs() == [] and "No runs yet" in view.hint.text()
    window.tabs.setCurrentWidget(window.draw_tab)
    small = cli_style_run("tutorial-tutorial", 40, 32, weights_in_our_folder("a.pt", 1), 0.97)
    large = cli_style_run("quick-fastnet", 10, 256, weights_in_our_folder("b.pt", 2), 0.99)
    window.tabs.setCurrentWidget(view)  # shown again: the command line's runs are read
    assert [run.id for run in view.runs()] == [large, small]  # newest first
    view.select_ids([small, large])
    names = view.chart.legend_names()
    assert len(names) == 2 and any("tutorial-tutorial" in n and "97.00%" in n for n in names)
    series = view.chart.loss_series()
    assert [x[-1] for x, _ in series] == [2560, 1280]  # x is samples seen, so batch sizes compare
    assert view.chart.accuracy_series_count() == 2 and view.chart.right_axis_shown()
    assert not view.use_button.isEnabled()  # which of two?
    view.select_ids([small])
    assert len(view.chart.legend_names()) == 1 and view.use_button.isEnabled()
    view.use_button.click()  # through File > Load weights' path
    assert window.current_weights().path == paths.user_weights_dir() / "a.pt"
    assert "a.pt" in window.weights_label.text()


def test_a_run_stopped_before_its_first_batch_gets_no_legend_entry_and_the_hint_says_why(qtbot, window):
    drawn = cli_style_run("tutorial-tutorial", 20, 32, None, 0.97)
    empty = cli_style_run("quick-fastnet", 0, 64, None, None, status="stopped")
    view = window.runs_view
    window.tabs.setCurrentWidget(view)
    view.select_ids([empty])
    chart = view.chart
    assert chart.legend_names() == [] and chart.loss_series() == [] and not chart.right_axis_shown()
    assert "quick-fastnet" in view.hint.text() and "no curve to draw" in view.hint.text()
    view.select_ids([empty, drawn])  # beside a run with a curve: only that one is named and drawn
    assert len(chart.legend_names()) == 1 and "tutorial-tutorial" in chart.legend_names()[0]
    assert len(chart.loss_series()) == 1 and chart.right_axis_shown()
    view.select_ids([drawn])
    assert "no curve" not in view.hint.text()


def test_a_note_explains_label_smoothing_only_while_a_run_with_it_is_selected(qtbot, window):
    from PySide6.QtWidgets import QLabel

    plain = cli_style_run("tutorial-tutorial", 20, 32, None, 0.97)
    smoothed = cli_style_run("quick-fastnet", 20, 64, None, 0.99, label_smoothing=0.1)
    view = window.runs_view
    window.tabs.setCurrentWidget(view)
    note = view.findChild(QLabel, "runsSmoothingNote")
    assert note is not None and not note.isVisible()
    view.select_ids([plain])
    assert not note.isVisible()
    view.select_ids([plain, smoothed])  # one loss axis, one run trained towards softer targets
    assert note.isVisible() and "label smoothing (quick-fastnet: 0.1)" in note.text()
    assert "0.50" in note.text() and "accuracy" in note.text() and "tutorial-tutorial" not in note.text()
    view.select_ids([plain])
    assert not note.isVisible()


def test_a_missing_weights_file_is_shown_as_such_and_cannot_be_used(qtbot, window):
    gone = weights_in_our_folder("gone.pt", 3)
    run_id = cli_style_run("tutorial-tutorial", 5, 32, gone, 0.9)
    gone.unlink()
    view = window.runs_view
    window.tabs.setCurrentWidget(view)
    view.select_ids([run_id])
    cell = view.model.index(0, 8)
    assert cell.data() == "gone.pt (missing)" and cell.data(Qt.ItemDataRole.FontRole).italic()
    assert not view.use_button.isEnabled()


def test_delete_asks_and_removes_our_weights_only_when_ticked(qtbot, window, tmp_path):
    ours = weights_in_our_folder("ours.pt", 4)
    outside = tmp_path / "outside.pt"
    outside.write_bytes(ours.read_bytes())
    keep_file, drop_file, elsewhere = (cli_style_run("r", 5, 32, path, 0.9) for path in (ours, ours, outside))
    view = window.runs_view
    window.tabs.setCurrentWidget(view)
    view.select_ids([keep_file])
    view.delete_button.click()
    box = view.delete_box()
    assert box is not None and box.checkBox() is not None and "ours.pt" in box.checkBox().text()
    box.findChild(type(view.delete_button), "runsDeleteConfirm").click()  # not ticked: the file stays
    assert keep_file not in [r.id for r in view.runs()] and ours.exists()
    view.select_ids([drop_file])
    view.delete_button.click()
    view.delete_box().checkBox().setChecked(True)
    view.delete_box().findChild(type(view.delete_button), "runsDeleteConfirm").click()
    assert not ours.exists() and [r.id for r in view.runs()] == [elsewhere]
    view.select_ids([elsewhere])
    view.delete_button.click()
    assert view.delete_box().checkBox() is None  # a file outside our folder is never offered
    view.delete_box().button(view.delete_box().StandardButton.Cancel).click()
    assert [r.id for r in view.runs()] == [elsewhere] and outside.exists()


def test_the_runs_tab_fits_an_800x600_window(qtbot, window):
    cli_style_run("quick-fastnet-with-a-long-name", 10, 64, None, 0.99)
    window.tabs.setCurrentWidget(window.runs_view)
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: window.height() == 640, timeout=5000)
    chrome = window.size() - window.runs_view.size()
    needed = window.runs_view.minimumSizeHint() + chrome
    assert needed.width() <= 800 and needed.height() <= 600, needed


# ---------------------------------------------------------------- Stop asks
def stop_and_answer(qtbot, window, answer: str):
    tab = window.train_tab
    qtbot.waitUntil(lambda: tab.progress.value() >= 3, timeout=TIMEOUT)
    tab.stop_button.click()
    box = tab.stop_box()
    assert box is not None and box.isVisible()
    box.findChild(type(tab.stop_button), answer).click()
    return box


def test_stop_then_keep_tests_and_saves_the_model_as_a_stopped_run(qtbot, window, tiny_settings):
    tab, before = window.train_tab, window.current_weights()
    start_training(window, replace(tiny_settings, epochs=300))
    with qtbot.waitSignal(tab.weights_trained, timeout=TIMEOUT) as trained:
        stop_and_answer(qtbot, window, "stopKeep")
    kept = trained.args[0]
    assert kept.path.parent == paths.user_weights_dir() and "-stopped" in kept.name
    assert 0 <= kept.test_accuracy <= 1 and kept.metrics["stopped"] is True
    assert window.current_weights() is not before and window.current_weights().path == kept.path
    assert "Test accuracy" in tab.result.text() and "Stopped after" in tab.result.text()
    assert window.statusBar().currentMessage() == \
        f"Training stopped; the partly trained model is kept and in use: {kept.name}"
    assert "partly trained" in window.draw_tab.notice_text()
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=TIMEOUT)
    run = RunStore().list().runs[0]
    assert run.status == "stopped" and run.weights == str(kept.path.resolve())
    assert run.test_accuracy == round(kept.test_accuracy, 4) and run.epochs_done < 300


def test_stop_then_keep_training_goes_on_and_discard_saves_nothing(qtbot, window, tiny_settings):
    tab, before = window.train_tab, window.current_weights()
    start_training(window, replace(tiny_settings, epochs=300))
    stop_and_answer(qtbot, window, "stopCancel")
    done = tab.progress.value()
    qtbot.waitUntil(lambda: tab.progress.value() > done + 2, timeout=TIMEOUT)  # it kept training
    assert tab.is_training() and tab.stop_box() is None
    with qtbot.waitSignal(tab.training_stopped, timeout=TIMEOUT):
        stop_and_answer(qtbot, window, "stopDiscard")
    assert "Nothing was saved" in tab.result.text() and window.current_weights() is before
    assert not list(paths.user_weights_dir().glob("*.pt"))
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=TIMEOUT)
    run = RunStore().list().runs[0]
    assert run.status == "stopped" and run.weights is None and run.test_accuracy is None


def test_closing_the_window_while_stop_asks_discards_without_waiting_for_an_answer(qtbot, settings, tutorial_weights,  # noqa: F811
                                                                                   tiny_settings):
    window = open_window(qtbot, settings, tutorial_weights)
    tab = window.train_tab
    start_training(window, replace(tiny_settings, epochs=300))
    qtbot.waitUntil(lambda: tab.progress.value() >= 3, timeout=TIMEOUT)
    tab.stop_button.click()
    assert tab.stop_box() is not None
    with qtbot.waitSignal(tab.training_ended, timeout=TIMEOUT):
        assert window.close()  # the open question does not block quitting
    assert not tab.is_training() and tab.stop_box() is None
    assert not list(paths.user_weights_dir().glob("*.pt"))


# ---------------------------------------------------------------- fine-tuning in the window
@pytest.mark.parametrize("stop_after", [None, 3])
def test_fine_tuning_in_the_window_records_its_run(monkeypatch, synthetic_mnist, tmp_path, tutorial_weights,
                                                   stop_after):
    import threading

    import core.finetune
    from core.weights import load_weights
    from gui.background import TaskControl
    from gui.finetune_panel import run_finetune
    from tests.test_samples import write_image_folder

    monkeypatch.setitem(core.finetune.ARCH_RECIPES, "tutorial", {"steps": 8, "lr": 3e-3})  # the recipe, shortened
    stop = threading.Event()

    def report(progress) -> None:
        if stop_after is not None and progress.step >= stop_after:
            stop.set()  # what the panel's Stop does (the task's cancel)

    outcome = run_finetune(load_weights(tutorial_weights), write_image_folder(tmp_path / "mine", per_digit=3),
                           str(synthetic_mnist), TaskControl(stop, report, 0.0))
    run = RunStore().list().runs[0]
    assert (run.kind, run.source) == ("finetune", "gui")
    record = RunStore().load(run.id)
    if stop_after is None:
        assert run.status == "completed" and run.weights == str(outcome.weights.path.resolve())
        assert len(record.curve["loss"]) == 8 and run.test_accuracy == round(outcome.result.mnist_test["after"], 4)
    else:
        assert outcome is None and run.status == "stopped" and run.weights is None
        assert len(record.curve["loss"]) == stop_after
