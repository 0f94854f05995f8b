"""Hostile pictures in the window: FIFOs and devices opened or dropped, huge pasted and dropped images."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from tests.gui_support import draw, open_window, private_qsettings, settings  # noqa: F401 (fixtures by name)
from tests.test_gui_app import DIGITS, tutorial_weights  # noqa: F401
from tests.test_inputs_hostile import fifo_that_cannot_hang

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and /dev need a POSIX system")


@pytest.fixture
def window(qtbot, settings, tutorial_weights):  # noqa: F811 (the fixtures imported above)
    window = open_window(qtbot, settings, tutorial_weights)
    draw(window.draw_tab.pad, DIGITS[1])  # the user's drawing, which a refused picture must leave alone
    return window


def assert_pad_unchanged(window, shown) -> None:
    pad = window.draw_tab.pad
    assert pad.stroke_count() == 1 and not pad.has_image()
    assert window.draw_tab.bars.probabilities() == shown


def drop(window, mime: QMimeData) -> None:
    where = QPointF(window.width() / 3, window.height() / 2)
    enter = QDragEnterEvent(where.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))


@needs_fifo
def test_opening_or_dropping_a_fifo_or_device_answers_at_once(window, tmp_path):
    """Before: open() on the FIFO blocked the GUI thread until something wrote to it."""
    shown = window.draw_tab.bars.probabilities()
    with fifo_that_cannot_hang(tmp_path / "scan.png") as fifo:
        assert not window.open_image_file(fifo)
        assert window.last_message() == ("Could not open the image: scan.png is not a regular file "
                                         "(a pipe, device or socket is never read as an image)")
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(fifo))])
        drop(window, mime)
    assert "scan.png is not a regular file" in window.last_message()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile("/dev/zero")])  # endless: reading it would never finish
    drop(window, mime)
    assert "zero is not a regular file" in window.last_message()
    assert_pad_unchanged(window, shown)


def test_a_pasted_12000_pixel_square_is_refused_before_any_conversion(window):
    """Before: no limit; converting 12000x12000 froze the GUI for 14 s. A 1-bit image keeps this test light (18 MB)."""
    shown = window.draw_tab.bars.probabilities()
    huge = QImage(12000, 12000, QImage.Format.Format_Mono)
    huge.fill(1)
    QGuiApplication.clipboard().setImage(huge)
    assert not window.paste_image()
    assert window.last_message() == (
        "Could not open the image: the pasted image is too large to open safely (12000x12000 = 144,000,000 pixels; "
        f"the limit is {Image.MAX_IMAGE_PIXELS:,})")
    assert_pad_unchanged(window, shown)


def test_pasted_and_dropped_pictures_meet_the_same_limit_as_files(window, monkeypatch):
    shown = window.draw_tab.bars.probabilities()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300)  # the files' limit, made small
    picture = QImage(400, 300, QImage.Format.Format_RGB32)
    picture.fill(Qt.GlobalColor.white)
    QGuiApplication.clipboard().setImage(picture)
    assert not window.paste_image()
    assert "pasted image is too large to open safely (400x300" in window.last_message()
    mime = QMimeData()
    mime.setImageData(picture)
    drop(window, mime)
    assert "dropped image is too large to open safely (400x300" in window.last_message()
    assert_pad_unchanged(window, shown)
    small = picture.copy(0, 0, 300, 300)  # at the limit: opened as before
    for y in range(60, 240):
        for x in range(140, 160):
            small.setPixelColor(x, y, Qt.GlobalColor.black)
    QGuiApplication.clipboard().setImage(small)
    assert window.paste_image() and window.draw_tab.pad.has_image()


def test_opening_a_float_tiff_with_nan_pixels_explains_and_keeps_the_drawing(window, tmp_path):
    from tests.test_inputs_hostile import float_tiff

    shown = window.draw_tab.bars.probabilities()
    assert not window.open_image_file(float_tiff(tmp_path / "scan.tif", float("nan")))
    assert window.last_message().startswith("Could not open the image: scan.tif holds pixels that are not numbers")
    assert_pad_unchanged(window, shown)
