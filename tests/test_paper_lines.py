"""Paper lines (core/paper_lines.py): the page's angle from its lines, and lines removed while the digit's ink stays."""
import cv2
import numpy as np

from core.paper_lines import page_tilt, remove_lines


def turned(mask: np.ndarray, degrees: float) -> np.ndarray:
    """`mask` turned by `degrees` about its centre, as a page turned on the table (OpenCV's sense)."""
    h, w = mask.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(mask.astype(np.uint8), turn, (w, h), flags=cv2.INTER_NEAREST).astype(bool)


def test_one_line_each_way_on_a_turned_page_is_a_grid():
    """Grid paper with a large square shows one line across and one down: that is paper, and its angle is found
    (two parallel lines were once needed, so such a page stayed turned and its lines stayed in the digit)."""
    page = np.zeros((600, 800), np.uint8)
    cv2.line(page, (0, 250), (799, 250), 1, 2)
    cv2.line(page, (300, 0), (300, 599), 1, 2)
    tilt = page_tilt(turned(page, 7.0))
    assert tilt is not None and abs(tilt + 7.0) <= 0.2


def test_a_digits_crossing_strokes_and_a_single_line_are_not_paper():
    """A 4's stem and bar cross but stop short of the picture's sides; one line alone may be a digit's bar."""
    four = np.zeros((600, 800), np.uint8)
    cv2.line(four, (500, 60), (500, 540), 1, 12)     # the stem: 80% of the height
    cv2.line(four, (140, 400), (700, 400), 1, 12)    # the bar: 70% of the width
    assert page_tilt(turned(four, 5.0)) is None
    one_line = np.zeros((600, 800), np.uint8)
    cv2.line(one_line, (0, 250), (799, 250), 1, 2)
    assert page_tilt(turned(one_line, 5.0)) is None


def test_lines_cut_short_by_a_turned_photos_edge_are_removed_and_the_digit_kept():
    """Turned upright, a photo of a turned page leaves its lines cut by the photo's tilted edge: they reach only
    part of the picture's width, but all of the part that came from the photo."""
    mask = np.zeros((500, 1000), dtype=bool)
    inside = np.zeros_like(mask)
    inside[:, :700] = True                     # the rest turned in from outside the photo
    for row in (100, 200, 300, 400):
        mask[row:row + 2, 0:690] = True        # ruled lines, 69% of the width
    mask[150:350, 400:406] = True              # a digit's stem crossing two of them
    kept = remove_lines(mask, inside=inside)
    assert not kept[100:102, :380].any() and not kept[400:402].any()
    assert kept[150:350, 400:406].all()
    assert remove_lines(mask)[100:102, :380].all()  # measured against the whole width, they are not lines


def test_a_dark_stroke_lying_along_a_faint_line_is_kept():
    """A 5's bar written along a grid line, no thicker than the line: the pen is far darker than the print."""
    mask = np.zeros((400, 600), dtype=bool)
    strength = np.zeros(mask.shape, np.float32)
    for row in (100, 200, 300):
        mask[row:row + 3] = True
        strength[row:row + 3] = 0.15           # printed lines: faint
    mask[200:203, 250:400] = True
    strength[200:203, 250:400] = 0.6           # the bar, on the middle line
    kept = remove_lines(mask, strength=strength)
    assert kept[200:203, 250:400].all()
    assert not kept[200:203, :240].any() and not kept[100:103].any()
    assert not remove_lines(mask)[200:203, 250:400].any()  # by thickness alone it went with the line

