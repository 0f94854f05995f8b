"""The Draw tab with an opened photo: the region read is outlined; a dragged box and the eraser change the reading."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from bench.photo_sets import Conditions, render, stroke_mask  # noqa: E402
from tests.gui_support import private_qsettings, settings, trained_window  # noqa: E402,F401 (fixtures by name)


def photo_of(digit: int, size=(320, 320), seed: int = 0) -> np.ndarray:
    """A pen-path digit photographed on lined paper under a gradient of light: (H, W, 3) uint8."""
    rng = np.random.default_rng([seed, digit])
    mask = stroke_mask(digit, rng, heldout=False)
    rows, cols = np.nonzero(mask > 0.05)
    c = Conditions(size=size, lines="ruled", ink="blue", lighting="gradient", light_depth=0.3, jpeg_quality=80)
    return render(mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1], c, rng)


def drag(view, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    """A real mouse drag on the photo from `start` to `end`, both in photo pixels."""
    def at(x: float, y: float) -> QPoint:
        return view.to_widget(x, y).toPoint()

    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*start))
    for i in range(1, steps + 1):
        QTest.mouseMove(view, at(start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps))
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*end))


def test_a_dragged_box_chooses_which_digit_is_read(trained_window, tmp_path):
    """Two digits side by side: the photo is shown with the region read outlined; a box around either digit reads
    that digit and moves the outline into the box; "Whole photo" forgets the box."""
    window = trained_window
    tab = window.draw_tab
    path = tmp_path / "two digits.png"
    Image.fromarray(np.concatenate([photo_of(3), photo_of(8)], axis=1)).save(path)  # (320, 640, 3)
    assert window.open_image_file(path)
    assert tab.showing_photo() and tab.photo_tools.isVisible()
    first = tab.bars.top_digit()
    assert first in (3, 8) and tab.photo._found is not None  # one of them, outlined

    for box, digit in (((330, 10, 630, 310), 8), ((10, 10, 310, 310), 3)):
        drag(tab.photo, box[:2], box[2:])
        assert tab.photo.box() is not None
        assert tab.bars.top_digit() == digit
        x0, y0, x1, y1 = tab.photo._found
        assert box[0] - 2 <= x0 < x1 <= box[2] + 2  # the outline is on the digit inside the box

    tab.whole_button.click()
    assert tab.photo.box() is None and tab.bars.top_digit() == first


def test_erasing_a_blot_on_the_photo_fixes_the_reading(trained_window, tmp_path):
    window = trained_window
    tab = window.draw_tab
    image = photo_of(7)
    image[235:255, 100:230] = (20, 30, 120)  # a thick bar of the same ink under the 7: it reads as something else
    path = tmp_path / "blotted.jpg"
    Image.fromarray(image).save(path, quality=90)
    assert window.open_image_file(path)
    assert tab.bars.top_digit() != 7
    tab.erase_button.click()
    drag(tab.photo, (95, 245), (235, 245), steps=20)
    assert tab.photo.erased() is not None and tab.photo.erased()[245, 160]
    assert tab.bars.top_digit() == 7


def test_clear_goes_back_to_the_drawing_pad(trained_window, tmp_path):
    window = trained_window
    tab = window.draw_tab
    path = tmp_path / "seven.png"
    Image.fromarray(photo_of(7)).save(path)
    assert window.open_image_file(path)
    assert tab.showing_photo()
    tab.clear_button.click()
    assert not tab.showing_photo() and not tab.photo_tools.isVisible()
    assert tab.bars.top_digit() is None and tab.pad.is_blank()
