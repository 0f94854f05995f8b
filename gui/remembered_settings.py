"""Values remembered between runs (QSettings), read back as the user input they are: a bad one gives its default."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

MAX_TEXT = 4096  # characters: longer than any real path; a megabyte of text in the file is not a folder name
log = logging.getLogger(__name__)


def _value(settings: QSettings, key: str) -> Any:
    try:
        return settings.value(key)
    except Exception:  # noqa: BLE001 - a value Qt cannot convert is simply not remembered
        log.warning("the remembered %s could not be read", key, exc_info=True)
        return None


def _rejected(key: str, value: Any) -> None:
    if value is not None:
        log.warning("ignored the remembered %s: %.80r", key, value)


def remembered_text(settings: QSettings, key: str, default: str = "") -> str:
    """A remembered path or name: text of a sane length without NUL characters, else `default`."""
    value = _value(settings, key)
    if isinstance(value, str) and len(value) <= MAX_TEXT and "\0" not in value:
        return value
    _rejected(key, value)
    return default


def remembered_folder(settings: QSettings, key: str) -> str:
    """A remembered folder: as remembered_text, and a path the system can look up (a missing folder is kept, e.g. an
    unplugged drive; a name too long for the file system is not: looking it up raises instead of saying 'missing')."""
    folder = remembered_text(settings, key)
    try:
        Path(folder).exists()
    except (OSError, ValueError):
        _rejected(key, folder)
        return ""
    return folder


def remembered_int(settings: QSettings, key: str, low: int, high: int, default: int) -> int:
    """A remembered whole number in [low, high] (the INI file stores it as text), else `default`."""
    value = _value(settings, key)
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit() and len(value) < 20:
        number = int(value)
    if number is not None and low <= number <= high:
        return number
    _rejected(key, value)
    return default


def remembered_bytes(settings: QSettings, key: str) -> QByteArray | None:
    """Remembered binary state (window geometry), or None when it is missing, empty or not bytes."""
    value = _value(settings, key)
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    _rejected(key, value)
    return None
