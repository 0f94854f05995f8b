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
