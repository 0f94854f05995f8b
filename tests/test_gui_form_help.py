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
    assert form.preset.currentText() == "custom" and form.custom_origin() == "quick"
    assert form.preset_description.text().startswith("custom (from quick)")
    assert "epochs 1 → 3" in form.preset_description.text()
    assert form.settings().preset == "custom"  # the stored name stays core.settings' rule
    form.epochs.setValue(1)
    assert form.preset.currentText() == "quick" and form.custom_origin() is None
    assert form.preset_description.text() == texts["quick"]


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
