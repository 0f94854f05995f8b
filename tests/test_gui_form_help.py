"""The form teaches (tooltips, preset descriptions, Advanced), help texts, the Help menu and small-screen layout."""
from __future__ import annotations

import argparse

import pytest

from core.cli import build_parser, main

OWN_COMMANDS = ("train", "predict", "evaluate", "export", "summary")  # built in core/cli.py itself


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", OWN_COMMANDS)
def test_every_command_line_option_has_help_text(command, capsys):
    parser = subparsers(build_parser())[command]
    missing = [a.option_strings or a.dest for a in parser._actions if not (a.help and a.help.strip())]
    assert missing == []
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "show this help" in capsys.readouterr().out


@pytest.mark.parametrize("text, expected", [("0.1", 0.1), ("10%", 0.1), (" 25 % ", 0.25), ("0", 0.0)])
def test_val_share_takes_a_share_or_a_percentage(text, expected):
    args = build_parser().parse_args(["train", "--val-share", text])
    assert args.val_share == pytest.approx(expected)


def test_a_val_share_that_is_no_number_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "--val-share", "ten"])
    assert exit_info.value.code == 2
    assert "write 0.1 or 10%" in capsys.readouterr().err


# ---------------------------------------------------------------- the Train form teaches
@pytest.fixture
def form(qtbot):
    from gui.train_form import TrainForm

    form = TrainForm()
    qtbot.addWidget(form)
    return form


def test_every_form_field_and_its_label_explain_themselves(form):
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QFormLayout, QLabel, QLineEdit, QWidget

    kinds = (QComboBox, QAbstractSpinBox, QLineEdit, QAbstractButton)
    fields = [w for w in form.findChildren(QWidget)
              if isinstance(w, kinds) and (w.parent() is form or w.parent() is form.advanced)]
    assert len(fields) >= 18  # 15 fields, Browse, the Advanced toggle and its 4 fields
    assert [w for w in fields if len(w.toolTip()) < 15] == []
    labels = [w for w in form.findChildren(QLabel) if w is not form.preset_description and w.text()]
    assert labels and [label.text() for label in labels if not label.toolTip()] == []
    assert isinstance(form.layout(), QFormLayout)


def test_the_description_follows_the_preset_and_custom_says_where_from_and_what_changed(form):
    from core.settings import PRESETS

    texts = {}
    for name in PRESETS:
        form.preset.setCurrentText(name)
        texts[name] = form.preset_description.text()
    assert len(set(texts.values())) == len(PRESETS) and "label smoothing" in texts["quick"]
    form.preset.setCurrentText("quick")
    form.epochs.setValue(3)
    assert form.preset.currentText() == "custom (from quick)" and form.custom_origin() == "quick"
    assert form.preset_description.text().startswith("custom (from quick)")
    assert "epochs 1 → 3" in form.preset_description.text()
    assert form.settings().preset == "custom"  # the stored name stays core.settings' rule
    form.epochs.setValue(1)
    assert form.preset.currentText() == "quick" and form.custom_origin() is None
    assert form.preset_description.text() == texts["quick"]
    form.seed.setValue(7)  # another draw of the same recipe is still quick
    assert form.preset.currentText() == "quick" and form.settings().preset == "quick"


def test_the_validation_share_reads_in_percent_on_the_preset_line_as_in_its_field(form):
    form.preset.setCurrentText("tutorial")  # the tutorial trains on all 60k: share 0
    form.val_share.setValue(10)
    assert form.val_share.text() == "10 %"
    assert "validation share 0% → 10%" in form.preset_description.text()
    assert "0.1" not in form.preset_description.text()
    assert form.settings().val_fraction == pytest.approx(0.1)  # the settings keep their share
    tip = form.val_share.toolTip()  # --val-share takes both: see test_val_share_takes_a_share_or_a_percentage
    assert "--val-share" in tip and "0.1 or 10%" in tip


def test_the_preset_box_names_the_origin_of_a_custom_run_and_picking_a_preset_restores_it(form, qtbot):
    form.show()
    form.preset.setCurrentText("tutorial")
    form.lr.setValue(0.005)
    assert form.preset.currentText() == "custom (from tutorial)"
    form.preset.setCurrentText("quick")  # picked again from the box
    assert form.preset.currentText() == "quick" and form.settings().preset == "quick"
    assert form.preset.itemText(form.preset.count() - 1) == "custom"  # no stale origin left in the list
    assert form.arch.currentText() == "fastnet" and form.lr.value() == 0.01  # quick's own values are back
    form.batch_size.setValue(form.batch_size.value() * 2)
    assert form.preset.currentText() == "custom (from quick)"
    box = form.preset
    assert box.width() >= box.fontMetrics().horizontalAdvance(box.currentText())  # the box is not cut off


def test_settings_named_after_a_preset_but_changed_are_shown_as_custom_from_it(form):
    """Settings handed to the form (a run's "Use these settings", a script) can name a preset whose recipe they no
    longer follow: the box must not call them that preset."""
    from dataclasses import replace

    from core.settings import PRESETS

    form.set_settings(replace(PRESETS["quick"], epochs=3))
    assert form.preset.currentText() == "custom (from quick)" and form.epochs.value() == 3
    assert "epochs 1 → 3" in form.preset_description.text() and form.settings().preset == "custom"
    form.set_settings(replace(PRESETS["tutorial"], data_dir="somewhere"))  # where the data lies is no recipe
    assert form.preset.currentText() == "tutorial" and form.settings().preset == "tutorial"


def test_advanced_section_shows_and_edits_schedule_decay_smoothing_and_strength(form, qtbot):
    from PySide6.QtCore import Qt

    form.show()
    form.preset.setCurrentText("tutorial")
    assert not form.advanced.isVisible()
    qtbot.mouseClick(form.advanced_button, Qt.MouseButton.LeftButton)
    assert form.advanced.isVisible()
    assert (form.schedule.currentText(), form.weight_decay.value(), form.label_smoothing.value()) == \
        ("constant", 0.0, 0.0)
    form.schedule.setCurrentText("cosine")
    form.weight_decay.setValue(0.001)
    form.label_smoothing.setValue(0.1)
    form.augment_strength.setValue(0.5)
    settings = form.settings()
    assert (settings.schedule, settings.weight_decay, settings.label_smoothing, settings.augment_strength) == \
        ("cosine", 0.001, 0.1, 0.5)
    assert settings.preset == "custom" and "schedule constant → cosine" in form.preset_description.text()
    assert "about 0.5" in form.label_smoothing.toolTip()
    form.preset.setCurrentText("best")  # a preset fills the advanced fields too
    assert (form.schedule.currentText(), form.label_smoothing.value()) == ("onecycle", 0.05)
    qtbot.mouseClick(form.advanced_button, Qt.MouseButton.LeftButton)
    assert not form.advanced.isVisible()


# ---------------------------------------------------------------- the real window: Help menu and small screens
from tests.gui_support import open_window, private_qsettings, settings  # noqa: E402,F401 (fixtures by name)


@pytest.fixture
def window(qtbot, settings):  # noqa: F811 (the fixture named settings)
    return open_window(qtbot, settings, None)


def inside(outer, widget, window) -> bool:
    """Whether `widget` lies wholly inside `outer` (a QRect in window coordinates) and is visible."""
    from PySide6.QtCore import QPoint, QRect

    return widget.isVisible() and outer.contains(QRect(widget.mapTo(window, QPoint(0, 0)), widget.size()))


@pytest.mark.parametrize("size", [(1024, 640), (800, 600)])
def test_train_tab_is_usable_on_a_small_screen(qtbot, window, size, tmp_path):
    from PySide6.QtCore import QPoint, QRect

    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    window.resize(*size)
    tab.form.advanced_button.setChecked(True)  # the longest form: every field shown
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5000)
    qtbot.wait(50)  # layouts settle
    window.grab().save(str(tmp_path / f"train_tab_{size[0]}x{size[1]}.png"))
    assert (window.width(), window.height()) == size  # no widget's minimum size forces a larger window
    status_bar = window.statusBar()
    status_top = status_bar.mapTo(window, QPoint(0, 0)).y()
    above_status = QRect(0, 0, window.width(), status_top)
    assert inside(window.rect(), status_bar, window) and status_bar.height() >= status_bar.sizeHint().height()
    assert inside(above_status, tab.train_button, window) and inside(above_status, tab.stop_button, window)
    tab.stats.setText("Epoch 12/12 · loss 0.0123 · training accuracy 99.12% · 12,345 samples/s · ETA 12:34")
    qtbot.wait(50)
    assert inside(above_status, tab.stats, window)
    stats_rect = QRect(tab.stats.mapTo(window, QPoint(0, 0)), tab.stats.size())
    chart_rect = QRect(tab.chart.mapTo(window, QPoint(0, 0)), tab.chart.size())
    assert not stats_rect.intersects(chart_rect) and tab.chart.height() >= tab.chart.minimumHeight()
    assert tab.stats.height() >= tab.stats.heightForWidth(tab.stats.width())  # every wrapped line shows
    scroll = tab.form_scroll
    last_field = tab.form.augment_strength
    scroll.ensureWidgetVisible(last_field)
    qtbot.wait(50)
    viewport = scroll.viewport()
    field_rect = QRect(last_field.mapTo(viewport, QPoint(0, 0)), last_field.size())
    assert viewport.rect().contains(field_rect)  # the last field can be scrolled into view
    assert scroll.horizontalScrollBar().maximum() == 0  # and nothing is cut sideways
    window.grab().save(str(tmp_path / f"train_tab_{size[0]}x{size[1]}_scrolled.png"))
    assert (tmp_path / f"train_tab_{size[0]}x{size[1]}.png").stat().st_size > 1000


def test_the_train_tab_alone_fits_an_800x600_window(qtbot, window):
    window.tabs.setCurrentWidget(window.train_tab)
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: window.height() == 640, timeout=5000)
    chrome = window.size() - window.train_tab.size()  # menu bar, tab bar, status bar and margins
    needed = window.train_tab.minimumSizeHint() + chrome
    assert needed.width() <= 800 and needed.height() <= 600, needed


def test_a_remembered_geometry_larger_than_the_screen_is_fitted_into_it(qtbot, settings):  # noqa: F811
    from gui.main_window import MainWindow

    first = MainWindow(settings)
    qtbot.addWidget(first)
    area = first.screen().availableGeometry()
    first.setGeometry(area.x() + 300, area.y() + 200, area.width() + 900, area.height() + 700)
    settings.setValue("window/geometry", first.saveGeometry())
    first.close()
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    frame = window.frameGeometry()
    assert area.contains(frame.topLeft()) and frame.bottom() <= area.bottom(), (frame, area)
    assert frame.right() <= area.right(), (frame, area)  # the whole window fits the (800 px wide) offscreen screen
    assert window.height() < area.height() + 700  # the remembered size was not kept


def test_help_lists_the_shortcuts_of_the_menus_as_they_are(qtbot, window):
    from PySide6.QtGui import QKeySequence

    help_actions = {a.text(): a for a in window.menuBar().actions()[-1].menu().actions()}
    assert {"&Keyboard shortcuts", "&Where are my files?", "&About"} <= set(help_actions)
    help_actions["&Keyboard shortcuts"].trigger()
    rows = window.help_window().rows()
    assert ("Training", "Start training", "Ctrl+T") in rows and ("View", "Train tab", "Ctrl+5") in rows
    assert any(command == "Keyboard shortcuts" for _, command, _ in rows)
    window.load_action.setShortcuts([QKeySequence("Ctrl+Shift+K")])  # a changed shortcut is listed as it is now
    help_actions["&Keyboard shortcuts"].trigger()
    rows = window.help_window().rows()
    assert ("File", "Load weights…", "Ctrl+Shift+K") in rows and ("File", "Load weights…", "Ctrl+L") not in rows


def test_about_says_what_is_offline_what_downloads_once_and_the_version(window):
    from gui.help_dialogs import app_version

    window._show_about()
    text = window.help_window().text()
    assert app_version() != "unknown" and app_version() in text
    assert "Offline" in text and "MNIST" in text and "download once" in text


def test_where_are_my_files_copies_each_folder_and_opens_only_existing_ones(qtbot, window, private_home):
    from PySide6.QtGui import QGuiApplication

    from core import logs, paths

    paths.user_weights_dir().mkdir(parents=True)
    for action in window.menuBar().actions()[-1].menu().actions():
        if action.text() == "&Where are my files?":
            action.trigger()
    dialog = window.help_window()
    from core.runs import runs_dir

    expected = {"Trained weights": paths.user_weights_dir(), "My digit samples": paths.samples_dir(),
                "Training runs": runs_dir(), "MNIST data": paths.mnist_dir(), "Log": logs.log_path().parent}
    assert set(dialog.copy_buttons) == set(expected)
    for name, folder in expected.items():
        assert str(folder).startswith(str(private_home))
        dialog.copy_buttons[name].click()
        assert QGuiApplication.clipboard().text() == str(folder)
        assert dialog.open_buttons[name].isEnabled() == folder.is_dir()
    assert dialog.open_buttons["Trained weights"].isEnabled() and not dialog.open_buttons["Log"].isEnabled()
    assert not paths.samples_dir().exists()  # showing the folders makes none of them
