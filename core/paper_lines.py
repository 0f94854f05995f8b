"""Ruled, grid and margin lines of a photographed page: the angle that levels them, and removing them from a mask."""
from __future__ import annotations

import numpy as np

LINE_COVERAGE = 0.6      # a row or column inked along this share of the image is a paper line, not a digit
CROSSING_COVERAGE = 0.85  # one line each way reaching this far is a grid too (a digit's crossing strokes stop short)
STROKE_OVER_LINE = 2.0   # ink this many times the contrast of the lines' median pixel is a pen stroke on a line
MAX_TILT_DEG = 15.0      # ruled or grid lines are looked for up to this angle either way


def opencv():
    """The cv2 module, imported on the first photo: drawings on the pad never pay for it."""
    import cv2

    return cv2


def line_runs(counts: np.ndarray, length: float, share: float = LINE_COVERAGE) -> int:
    """How many separate runs of projection bins are inked along `share` of `length`."""
    full = np.concatenate([[False], counts >= share * length, [False]])
    return int(np.count_nonzero(full[1:] & ~full[:-1]))


def page_tilt(mask: np.ndarray) -> float | None:
    """The angle (degrees) that makes paper lines in `mask` horizontal/vertical, or None when there are none: the
    rotation under which two or more separate parallel lines each reach along LINE_COVERAGE of the image, or one
    line each way CROSSING_COVERAGE (one long stroke of a big digit is not ruled paper), then to a tenth of a degree
    by the sharpest projection."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 50:
        return None
    h, w = mask.shape
    step = max(1, len(xs) // 40_000)      # every step-th inked pixel: 70 projections stay ~1 ms each
    ys, xs = ys[::step], xs[::step]
    cell = max(1, round(max(h, w) / 250))  # px: a line 0.25 degrees off spreads over 4 rows of a 1000 px photo

    def turned(angle: float) -> tuple[np.ndarray, np.ndarray]:
        """Each inked pixel's row and column (px, >= 0) in the mask turned by `angle`."""
        t = np.deg2rad(angle)
        across = np.round(ys * np.cos(t) - xs * np.sin(t)).astype(np.int64) + w
        along = np.round(xs * np.cos(t) + ys * np.sin(t)).astype(np.int64) + h
        return across, along

    def has_lines(across: np.ndarray, along: np.ndarray) -> bool:
        """Whether two or more separate parallel lines reach along LINE_COVERAGE of the image, or one line each way
        along CROSSING_COVERAGE (a grid with a single line in view): the extent of ink along bands two cells wide,
        not its count (a line a little off the angle stays in one band, a thick stroke counts once)."""
        across, along = (across - across.min()) // cell, (along - along.min()) // cell
        crossing = 0
        for band, position, length in ((across, along, w), (along, across, h)):
            seen = np.zeros((int(band.max()) + 2, int(position.max()) + 1), dtype=bool)
            seen[band, position] = True
            extent = (seen[:-1] | seen[1:]).sum(1) * cell  # px along, per band (bands overlap by a cell)
            if line_runs(extent, length) >= 2:
                return True
            crossing += line_runs(extent, length, CROSSING_COVERAGE) >= 1
        return crossing == 2

    def sharpness(across: np.ndarray, along: np.ndarray) -> float:
        """The fullest turned row or column (sampled pixels over the side): highest at the lines' exact angle."""
        return max(np.bincount(across).max() / w, np.bincount(along).max() / h)

    best, best_angle = 0.0, None
    for angle in sorted(np.arange(-MAX_TILT_DEG, MAX_TILT_DEG + 0.01, 0.5), key=abs):  # on a tie the smallest turn
        projected = turned(angle)
        found = sharpness(*projected) if has_lines(*projected) else 0.0  # lines there; the sharpest such angle
        if found > best + 0.01:
            best, best_angle = found, float(angle)
    if best_angle is None:
        return None
    return max(np.arange(best_angle - 0.4, best_angle + 0.41, 0.1), key=lambda angle: sharpness(*turned(angle)))


def remove_lines(mask: np.ndarray, inside: np.ndarray | None = None, strength: np.ndarray | None = None
                 ) -> np.ndarray:
    """Drop horizontal and vertical page-wide lines (ruled, grid, margin) from an upright mask; where a stroke
    crosses a line or lies along it, its pixels are kept: ink thicker across than the line, or (given `strength`,
    the (h, w) ink contrast) far darker than the lines' typical pixel, as pen is against printed lines.
    `inside` (h, w) bool: the pixels that come from the photo when it was turned upright (None: all); a line is
    measured against the part of its row inside the photo, because a turned page's lines end where the photo's
    tilted edge cuts them."""
    cv2 = opencv()
    m = mask.astype(np.uint8)
    cleaned = m.copy()
    for horizontal in (True, False):
        rows = m if horizontal else np.ascontiguousarray(m.T)  # lines run along these rows
        n = rows.shape[1]
        if inside is None:
            length = np.full(rows.shape[0], float(n))
        else:  # a row mostly outside the photo is no line's row (a stroke in a corner is not cut short by it)
            length = (inside if horizontal else inside.T).sum(1).astype(np.float64)
            length = np.where(length >= 0.5 * n, length, np.inf)
        band = rows.copy()                            # a line not quite level spreads over neighbouring rows
        band[1:] |= rows[:-1]
        band[:-1] |= rows[1:]
        runs = cv2.morphologyEx(band, cv2.MORPH_OPEN, np.ones((1, max(15, n // 5)), np.uint8))  # long straight runs
        extent = n - runs[:, ::-1].argmax(1) - runs.argmax(1)
        # rows whose long runs add up to half a line's share and reach from side to side are a paper line, even
        # where it breaks up; a digit's long stroke reaches across only part of the page
        along = (runs.sum(1) >= 0.5 * LINE_COVERAGE * length) & (extent >= 0.75 * length) & runs.any(1)
        if not along.any():
            continue
        edges = np.diff(np.concatenate([[0], along.astype(np.int8), [0]]))
        thickness = int(np.max(np.nonzero(edges == -1)[0] - np.nonzero(edges == 1)[0]))  # the widest line, in rows
        along = np.convolve(along, np.ones(5), mode="same") > 0  # the lines' fuzzy sides too
        lines = np.zeros_like(rows)
        lines[along] = 1
        lines = lines if horizontal else np.ascontiguousarray(lines.T)
        # ink running across the line further than the line is thick is a stroke crossing it or lying on it: kept
        across = thickness + 5
        strokes = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((across, 1) if horizontal else (1, across), np.uint8))
        on_line = lines & (1 - strokes)
        if strength is not None and (on_line & m).any():
            line_level = float(np.median(strength[(on_line & m) > 0]))
            on_line &= (strength < STROKE_OVER_LINE * line_level).astype(np.uint8)
        cleaned &= 1 - on_line
    return cleaned.astype(bool)
