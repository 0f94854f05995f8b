"""Teaching the app your handwriting, in the window: correct a prediction, "Teach me", My digits, fine-tune."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QPushButton  # noqa: E402

from core import paths  # noqa: E402
from core.runs import RunStore  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from tests.gui_support import (  # noqa: E402,F401 (fixtures are found by name in this module)
    TIMEOUT, draw, open_window, private_qsettings, settings, trained_window, tutorial_weights, window)


def ellipse(cx, cy, rx, ry, n=40):
    return [(cx + rx * math.sin(2 * math.pi * t / n), cy - ry * math.cos(2 * math.pi * t / n)) for t in range(n + 1)]


STROKES = {  # paper coordinates (0..1), drawn as people do: large, black on white
    0: [ellipse(0.5, 0.5, 0.2, 0.32)],
    1: [[(0.52, 0.18), (0.47, 0.82)]],
    7: [[(0.28, 0.2), (0.72, 0.2), (0.45, 0.82)]],
}


def saved(digit: int) -> list[Path]:
    return sorted((paths.user_data_dir() / "samples" / str(digit)).glob("*.png"))


def all_saved() -> list[Path]:
    return sorted((paths.user_data_dir() / "samples").glob("*/*.png"))


def button(window: MainWindow, name: str) -> QPushButton:
    found = window.findChild(QPushButton, name)
    assert found is not None, name
    return found


# ---------------------------------------------------------------- Draw tab: correct and collect
def test_correction_buttons_and_keys_save_the_drawing_under_that_digit(qtbot, window):
    tab, pad = window.draw_tab, window.draw_tab.pad
    draw(pad, STROKES[7])
    button(window, "correct_7").click()
    assert len(saved(7)) == 1 and pad.is_blank()
    assert tab.corrections.status_text() == "Saved as a 7 \u2014 1 seven so far"
    assert tab.corrections.count_text(7) == "1"
    from PIL import Image

    with Image.open(saved(7)[0]) as png:  # the original as drawn: the whole paper, dark ink on white
        original = np.asarray(png.convert("L"))
    assert original.shape == (280, 280) and np.median(original) > 200 and original.min() < 60

    for expected in (1, 2):
        draw(pad, STROKES[1])
        QTest.keyClick(pad, Qt.Key.Key_3)  # key 3 on the pad: "it was a 3"
        assert len(saved(3)) == expected and pad.is_blank()
    assert tab.corrections.status_text().endswith("2 threes so far")
    assert len(all_saved()) == 3


def test_right_and_enter_save_with_the_predicted_digit(trained_window):
    tab, pad = trained_window.draw_tab, trained_window.draw_tab.pad
    draw(pad, STROKES[7])
    assert tab.corrections.right_button.text() == "Right: 7"
    QTest.keyClick(pad, Qt.Key.Key_Return)
    assert len(saved(7)) == 1 and pad.is_blank()
    draw(pad, STROKES[0])
    button(trained_window, "correct_right").click()
    assert len(saved(0)) == 1 and len(all_saved()) == 2


def test_a_blank_pad_saves_nothing_and_says_so(window):
    tab, pad = window.draw_tab, window.draw_tab.pad
    assert not button(window, "correct_4").isEnabled() and not tab.corrections.right_button.isEnabled()
    QTest.keyClick(pad, Qt.Key.Key_4)
    QTest.keyClick(pad, Qt.Key.Key_Enter)
    assert "blank" in tab.corrections.status_text()
    assert not all_saved()


def test_a_failed_save_says_why_and_keeps_the_drawing(window):
    folder = paths.user_data_dir() / "samples"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("a file where the samples folder should be")
    pad = window.draw_tab.pad
    draw(pad, STROKES[1])
    QTest.keyClick(pad, Qt.Key.Key_1)
    status = window.draw_tab.corrections.status_text()
    assert status.startswith("Could not save the sample") and "stays on the pad" in status
    assert pad.stroke_count() == 1  # nothing lost
    assert "\n" not in status and "Traceback" not in status


def test_teach_me_asks_for_digits_and_enter_saves_the_one_asked(window):
    tab, pad = window.draw_tab, window.draw_tab.pad
    button(window, "teachButton").click()
    assert tab.teach.is_active()
    for _ in range(3):
        asked = tab.teach.asked_digit()
        assert tab.teach.prompt.text() == f"Draw a {asked}"
        assert tab.corrections.right_button.text() == f"Save as {asked}"
        before = len(saved(asked))
        draw(pad, STROKES[1])  # whatever is drawn, Enter saves it as the digit asked for
        QTest.keyClick(pad, Qt.Key.Key_Return)
        assert len(saved(asked)) == before + 1
        assert tab.teach.progress_bars[asked].value() == before + 1
        assert tab.teach.asked_digit() != asked  # never the same digit twice in a row
    asked = tab.teach.asked_digit()
    button(window, "teachSkip").click()  # "Another digit"
    assert tab.teach.asked_digit() != asked
    assert tab.corrections.right_button.text() == f"Save as {tab.teach.asked_digit()}"
    button(window, "teachButton").click()
    assert tab.teach.asked_digit() is None and tab.corrections.right_button.text() == "Right"


# ---------------------------------------------------------------- My digits tab
def save_drawn(window: MainWindow, strokes, digit: int) -> None:
    draw(window.draw_tab.pad, strokes)
    button(window, f"correct_{digit}").click()


def show_my_digits(qtbot, window: MainWindow):
    tab = window.my_digits_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: not tab.library.is_busy(), timeout=TIMEOUT)
    return tab


def captions(tab) -> list[str]:
    return [tab.grid.item(i).text() for i in range(tab.grid.count())]


def test_my_digits_shows_each_sample_with_what_the_model_reads(qtbot, trained_window):
    save_drawn(trained_window, STROKES[7], 7)
    save_drawn(trained_window, STROKES[0], 0)
    save_drawn(trained_window, STROKES[1], 4)  # a 1 saved as a 4: the model reads it as a 1, a mistake
    tab = show_my_digits(qtbot, trained_window)
    assert captions(tab) == ["0 \u2713", "4 \u2192 1", "7 \u2713"]
    assert tab.table.item(4, 2).text() == "0/1 (0%)" and tab.table.item(7, 2).text() == "1/1 (100%)"
    assert tab.table.item(10, 1).text() == "3" and "reads 2 of 3 right" in tab.summary.text()
    # another model: every sample is read again off the GUI thread, with the same outcome for the same weights
    assert trained_window.load_weights_file(paths.DEFAULT_WEIGHTS)
    qtbot.waitUntil(lambda: not tab.library.is_busy(), timeout=TIMEOUT)
    assert captions(tab) == ["0 \u2713", "4 \u2192 1", "7 \u2713"]
    tab.select_digit(4)
    assert captions(tab) == ["4 \u2192 1"] and tab.delete_digit_button.text() == "Delete all 4s"


def test_delete_one_a_digit_and_all_then_undo(qtbot, window):
    for strokes, digit in ((STROKES[1], 1), (STROKES[1], 1), (STROKES[7], 7)):
        save_drawn(window, strokes, digit)
    tab = show_my_digits(qtbot, window)
    tab.grid.item(0).setSelected(True)
    button(window, "deleteSelected").click()
    assert len(all_saved()) == 2 and tab.grid.count() == 2 and tab.table.item(1, 1).text() == "1"
    button(window, "undoDelete").click()
    assert len(all_saved()) == 3 and tab.grid.count() == 3 and "Restored 1 sample" in tab.message.text()
    tab.select_digit(1)
    button(window, "deleteDigit").click()
    assert not saved(1) and len(saved(7)) == 1
    button(window, "deleteAll").click()
    assert not all_saved() and window.draw_tab.corrections.count_text(7) == "0"
    button(window, "undoDelete").click()  # undoes the last deletion: the 7
    assert len(saved(7)) == 1 and not saved(1)


def write_png(path: Path, digit_strokes) -> Path:
    from PIL import Image, ImageDraw

    from tests.gui_support import densify

    image = Image.new("L", (120, 160), 240)
    pen = ImageDraw.Draw(image)
    for stroke in digit_strokes:
        pen.line([(x * 120, y * 160) for x, y in densify(stroke)], fill=20, width=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def test_import_names_unreadable_files_and_export_writes_the_same_layout(qtbot, window, tmp_path):
    source = tmp_path / "from-a-friend"
    write_png(source / "7" / "seven.png", STROKES[7])
    write_png(source / "0" / "zero.png", STROKES[0])
    (source / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    tab = show_my_digits(qtbot, window)
    with qtbot.waitSignal(tab.files_done, timeout=TIMEOUT) as done:
        assert tab.import_folder(source)
    assert done.args[0].startswith("Imported 2 samples") and "broken.png" in done.args[0]
    assert len(saved(7)) == 1 and len(saved(0)) == 1
    qtbot.waitUntil(lambda: tab.grid.count() == 2 and not tab.library.is_busy(), timeout=TIMEOUT)
    with qtbot.waitSignal(tab.files_done, timeout=TIMEOUT) as done:
        tab.import_folder(tmp_path / "no-such-folder")
    assert "does not exist" in done.args[0] and len(all_saved()) == 2
    out = tmp_path / "export"
    with qtbot.waitSignal(tab.files_done, timeout=TIMEOUT) as done:
        assert tab.export_folder(out)
    assert done.args[0].startswith("Exported 2 samples")
    assert len(list((out / "7").glob("*.png"))) == 1 and len(list((out / "0").glob("*.png"))) == 1


# ---------------------------------------------------------------- fine-tuning from My digits
def add_synthetic_writer(per_digit: int) -> None:
    """Samples of a made-up writer: the synthetic MNIST patterns, saved through the store as the app saves them."""
    from core.samples import SampleStore
    from tests.conftest import square_pattern_digits

    images, labels = square_pattern_digits(per_digit * 10, seed=5)
    store = SampleStore()
    for image, label in zip(images, labels):
        store.add(np.kron(image, np.ones((4, 4), np.uint8)), int(label))  # (112, 112): drawn bigger than 28x28


@pytest.fixture
def one_torch_thread():
    """Fine-tunes in these tests take the GUI thread's torch thread count (as training does): one keeps them quick
    while other programs load the cores (two threads wait on each other at every op)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_finetune_switches_to_new_weights_shows_before_after_and_goes_back(qtbot, window, synthetic_mnist,
                                                                          one_torch_thread):
    shipped = sha256(paths.DEFAULT_WEIGHTS) if paths.DEFAULT_WEIGHTS.is_file() else None
    add_synthetic_writer(per_digit=3)
    window.train_tab.form.set_data_folder(str(synthetic_mnist))  # the MNIST folder is the Train tab's
    tab, before = show_my_digits(qtbot, window), window.current_weights()
    tab.library.reload()
    with qtbot.waitSignal(tab.weights_finetuned, timeout=TIMEOUT):
        button(window, "finetuneButton").click()
        assert not button(window, "finetuneButton").isEnabled() and button(window, "finetuneStop").isEnabled()
    new = window.current_weights()
    assert new is not before and new.path.parent == paths.user_weights_dir() and new.path.is_file()
    assert new.settings["finetuned_from"] == before.name and new.name in window.weights_label.text()
    result = tab.finetune.result.text()
    assert "held-out samples (10)" in result and "MNIST test images: 50.0% \u2192" in result
    assert new.name in window.draw_tab.notice_text()
    qtbot.waitUntil(lambda: button(window, "finetuneButton").isEnabled(), timeout=TIMEOUT)
    back = button(window, "finetuneBack")
    assert back.isVisible()
    back.click()
    assert window.current_weights().path == before.path and not back.isVisible()
    assert shipped is None or sha256(paths.DEFAULT_WEIGHTS) == shipped


def test_finetune_without_mnist_says_it_could_not_guard_against_forgetting(qtbot, window, tmp_path, one_torch_thread):
    add_synthetic_writer(per_digit=1)
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    window.train_tab.form.set_data_folder(str(empty))
    tab = show_my_digits(qtbot, window)
    with qtbot.waitSignal(tab.weights_finetuned, timeout=TIMEOUT):
        assert tab.finetune.start()
    result = tab.finetune.result.text()
    assert "MNIST test images: unknown" in result and "forgetting" in result and "held-out" not in result


def stop_box_button(qtbot, panel, name: str):
    """Stop's question, once it is shown: its button `name` (stopKeep, stopDiscard, stopCancel)."""
    qtbot.waitUntil(lambda: panel.stop_box() is not None and panel.stop_box().isVisible(), timeout=TIMEOUT)
    return panel.stop_box().findChild(QPushButton, name)


def test_stop_then_discard_saves_nothing_and_keeps_the_model(qtbot, window, synthetic_mnist, one_torch_thread):
    add_synthetic_writer(per_digit=2)
    window.train_tab.form.set_data_folder(str(synthetic_mnist))
    tab, before = show_my_digits(qtbot, window), window.current_weights()
    with qtbot.waitSignal(tab.finetune.finetune_ended, timeout=TIMEOUT):
        assert tab.finetune.start()
        button(window, "finetuneStop").click()
        qtbot.mouseClick(stop_box_button(qtbot, tab.finetune, "stopDiscard"), Qt.MouseButton.LeftButton)
    assert "Nothing was saved" in tab.finetune.result.text() and tab.finetune.stop_box() is None
    assert window.current_weights() is before and not list(paths.user_weights_dir().glob("*.pt"))
    run = RunStore().list().runs[0]
    assert run.status == "stopped" and run.weights is None


def test_stop_then_keep_measures_saves_and_uses_what_was_learned(qtbot, window, synthetic_mnist, one_torch_thread):
    add_synthetic_writer(per_digit=2)
    window.train_tab.form.set_data_folder(str(synthetic_mnist))
    tab, before = show_my_digits(qtbot, window), window.current_weights()
    panel = tab.finetune
    with qtbot.waitSignal(panel.weights_finetuned, timeout=TIMEOUT):
        assert panel.start()
        qtbot.waitUntil(lambda: panel.progress.value() >= 2, timeout=TIMEOUT)  # some steps done
        button(window, "finetuneStop").click()
        qtbot.mouseClick(stop_box_button(qtbot, panel, "stopKeep"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=TIMEOUT)
    text = panel.result.text()
    assert panel.status.text().startswith("Stopped; what it learned is kept") and "Stopped after" in text
    assert "accuracy after was not measured" not in text and "MNIST test images: " in text and "unknown" not in text
    kept = window.current_weights()
    assert window.statusBar().currentMessage().startswith("Fine-tuning stopped; what it learned is kept")
    assert kept is not before and kept.path.parent == paths.user_weights_dir() and kept.path.is_file()
    run = RunStore().list().runs[0]
    assert (run.kind, run.status, run.weights) == ("finetune", "stopped", str(kept.path.resolve()))
    assert 0 < RunStore().load(run.id).metrics["steps_done"] < RunStore().load(run.id).settings["steps"]


def test_a_stop_after_the_worker_decided_to_save_is_refused_and_said():
    from gui.finetune_panel import UserStop

    early, late = UserStop(), UserStop()
    assert early.request(keep=False) and early.decide() == (True, False)  # honoured: nothing will be saved
    assert late.decide() == (False, False) and not late.request(keep=False)  # too late: it is being saved
    assert not late.event.is_set()


def test_a_discard_too_late_to_honour_tells_the_user_and_the_model_is_in_use(qtbot, window, synthetic_mnist,
                                                                            one_torch_thread):
    add_synthetic_writer(per_digit=2)
    window.train_tab.form.set_data_folder(str(synthetic_mnist))
    tab = show_my_digits(qtbot, window)
    panel = tab.finetune
    with qtbot.waitSignal(panel.weights_finetuned, timeout=TIMEOUT):
        assert panel.start()
        panel._user_stop.decide()  # as if the worker had just finished and begun saving
        button(window, "finetuneStop").click()
        qtbot.mouseClick(stop_box_button(qtbot, panel, "stopDiscard"), Qt.MouseButton.LeftButton)
        assert panel.status.text().startswith("Too late to stop")
    assert panel.status.text() == "Done: it had finished before the Stop." and panel.back_button.isVisible()
    assert window.current_weights().path.parent == paths.user_weights_dir()


def test_keep_fine_tuning_closes_the_question_and_the_run_completes(qtbot, window, synthetic_mnist, one_torch_thread):
    add_synthetic_writer(per_digit=2)
    window.train_tab.form.set_data_folder(str(synthetic_mnist))
    tab = show_my_digits(qtbot, window)
    with qtbot.waitSignal(tab.finetune.weights_finetuned, timeout=TIMEOUT):
        assert tab.finetune.start()
        button(window, "finetuneStop").click()
        qtbot.mouseClick(stop_box_button(qtbot, tab.finetune, "stopCancel"), Qt.MouseButton.LeftButton)
    assert tab.finetune.status.text() == "Done." and RunStore().list().runs[0].status == "completed"


def test_finetune_without_samples_or_with_only_unreadable_ones_explains(qtbot, window):
    tab = show_my_digits(qtbot, window)
    assert not tab.finetune.start()
    assert tab.finetune.result.text().startswith("No samples yet")
    broken = paths.user_data_dir() / "samples" / "3" / "broken.png"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    tab.library.reload()
    qtbot.waitUntil(lambda: not tab.library.is_busy(), timeout=TIMEOUT)
    assert captions(tab) == ["3 \u26a0"]  # an unreadable sample is marked, not hidden
    with qtbot.waitSignal(tab.finetune.finetune_ended, timeout=TIMEOUT):
        assert tab.finetune.start()
    text = tab.finetune.result.text()
    assert "failed" in text and "broken.png" in text and window.current_weights().path.name == "tutorial-test.pt"


# ---------------------------------------------------------------- Train tab: "MNIST + my samples"
def test_train_tab_data_option_mixes_in_my_samples(qtbot, window, tiny_settings, one_torch_thread):
    from dataclasses import replace

    from gui.train_form import MY_SAMPLES_SHARE, WITH_MY_SAMPLES

    tab, form = window.train_tab, window.train_tab.form
    window.tabs.setCurrentWidget(tab)
    form.preset.setCurrentText("quick")
    form.training_data.setCurrentText(WITH_MY_SAMPLES)
    assert form.settings().my_samples_share == MY_SAMPLES_SHARE
    assert form.settings().preset == "quick"  # where the data comes from is not a change of recipe
    form.set_settings(replace(tiny_settings, my_samples_share=MY_SAMPLES_SHARE))
    assert form.training_data.currentText() == WITH_MY_SAMPLES
    before = window.current_weights()
    with qtbot.waitSignal(window.message_shown, timeout=TIMEOUT) as shown:  # no samples saved yet
        button(window, "trainButton").click()
    assert "could not add your samples" in shown.args[0] and window.current_weights() is before
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=TIMEOUT)
    add_synthetic_writer(per_digit=1)
    with qtbot.waitSignal(tab.weights_trained, timeout=TIMEOUT) as trained:
        button(window, "trainButton").click()
    assert trained.args[0].settings["my_samples_share"] == MY_SAMPLES_SHARE  # the weights file says what it saw


def test_finetune_replays_the_real_mnist_from_the_train_tabs_folder(qtbot, window, real_mnist_dir,
                                                                     one_torch_thread):
    for strokes, digit in ((STROKES[0], 0), (STROKES[1], 1), (STROKES[7], 7)):
        save_drawn(window, strokes, digit)
    window.train_tab.form.set_data_folder(str(real_mnist_dir))
    tab = show_my_digits(qtbot, window)
    with qtbot.waitSignal(tab.weights_finetuned, timeout=TIMEOUT) as finetuned:
        assert tab.finetune.start()
    after = finetuned.args[0].test_accuracy  # measured on the 10,000 real test images
    assert after is not None and 0.0 <= after <= 1.0
    assert f"MNIST test images: 50.0% \u2192 {100 * after:.1f}%" in tab.finetune.result.text()
    assert "not found" not in tab.finetune.result.text()
