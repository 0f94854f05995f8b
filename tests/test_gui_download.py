"""The window's first run without MNIST, against a real local HTTP mirror: progress, then training; offline, one
message; Cancel."""
from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("pytestqt")

import core.mnist_download  # noqa: E402
from core.data import ALL_FILE_NAMES  # noqa: E402
from gui.mnist_download import MnistDownloadDialog  # noqa: E402
from tests.gui_support import TIMEOUT, open_window, private_qsettings, settings, tutorial_weights, window  # noqa: E402, F401 (fixtures)
from tests.test_mnist_download import everything_under, local_mirror, refused_url  # noqa: E402, F401 (fixture)


def click_train(window, settings) -> None:
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    tab.form.set_settings(settings)
    tab.train_button.click()


def the_dialog(widget) -> MnistDownloadDialog:
    (dialog,) = widget.findChildren(MnistDownloadDialog)  # exactly one
    return dialog


def test_train_without_mnist_downloads_with_progress_then_trains(qtbot, window, local_mirror, tiny_settings,
                                                                 tmp_path):
    tab, before = window.train_tab, window.current_weights()
    root = tmp_path / "first-run"
    shown: list[tuple[int, int, str]] = []
    with qtbot.waitSignal(tab.weights_trained, timeout=TIMEOUT):
        click_train(window, replace(tiny_settings, data_dir=str(root)))
        dialog = the_dialog(tab)
        assert dialog.isVisible() and not tab.is_training()  # the download comes first
        dialog.progress_shown.connect(lambda *report: shown.append(report))
    for name, body in local_mirror.files.items():
        assert (len(body), len(body), name) in shown  # every file's bar reached 100%
    assert "MB" in dialog.progress.format() and not dialog.isVisible()
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(f"{n}.gz" for n in ALL_FILE_NAMES)
    assert window.current_weights() is not before and window.last_message() is None


def test_offline_shows_one_message_and_the_train_tab_stays_ready(qtbot, window, tiny_settings, tmp_path,
                                                                  monkeypatch):
    url = refused_url()
    monkeypatch.setattr(core.mnist_download, "mnist_sources", lambda: ([url], [(f"{n}.gz", "0" * 32)
                                                                              for n in ALL_FILE_NAMES]))
    tab, before = window.train_tab, window.current_weights()
    root = tmp_path / "offline" / "data"
    click_train(window, replace(tiny_settings, data_dir=str(root)))
    dialog = the_dialog(tab)
    with qtbot.waitSignal(dialog.download_failed, timeout=TIMEOUT) as failed:
        pass
    message = failed.args[0]
    assert dialog.isVisible() and dialog.message.text() == message and "Connection refused" in message
    assert str(root / "MNIST" / "raw") in message and all(f"{n}.gz" in message for n in ALL_FILE_NAMES)
    # shown once: no message box from the window, no inline "Training failed", and the tab is ready again
    assert window.last_message() is None and tab.result.text() == ""
    assert tab.train_button.isEnabled() and tab.form.isEnabled() and not tab.is_training()
    assert window.current_weights() is before and everything_under(tmp_path / "offline") == []
    dialog.copy_button.click()
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == str(root / "MNIST" / "raw")
    dialog.cancel_button.click()  # reads "Close" now
    assert not dialog.isVisible()


def test_cancel_stops_the_download_and_nothing_starts(qtbot, window, local_mirror, tiny_settings, tmp_path):
    local_mirror.mode = "slow"
    tab = window.train_tab
    root = tmp_path / "cancelled"
    click_train(window, replace(tiny_settings, data_dir=str(root)))
    dialog = the_dialog(tab)
    qtbot.waitUntil(lambda: dialog.progress.maximum() > 1 and dialog.progress.value() > 0, timeout=TIMEOUT)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=TIMEOUT)
    assert not dialog.is_downloading() and not tab.is_training() and tab.train_button.isEnabled()
    assert not root.exists() and window.last_message() is None


def test_evaluate_without_mnist_downloads_then_evaluates(qtbot, window, local_mirror, tmp_path):
    window.train_tab.form.set_data_folder(str(tmp_path / "eval-data"))
    tab = window.evaluate_tab
    window.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(tab.report_shown, timeout=TIMEOUT, check_params_cb=lambda r: r is not None) as shown:
        tab.evaluate_button.click()  # starts the download; the evaluation follows
    assert shown.args[0] is not None and shown.args[0].evaluation.n == 200


def test_the_download_dialog_and_about_give_the_same_size_for_mnist(qtbot, window, tmp_path):
    dialog = MnistDownloadDialog(tmp_path, window)  # its first words, before anything downloads
    window._show_about()
    about = window.help_window().text()
    assert "four files, about 12 MB" in dialog.message.text() and "four files, about 12 MB" in about
    dialog.on_task_progress_changed((1_648_877, 1_648_877, "t10k-images-idx3-ubyte.gz"))
    assert dialog.progress.format() == "1.6 of 1.6 MB"  # the same megabytes as the total
