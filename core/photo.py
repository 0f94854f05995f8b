"""Photos and scans: find the digit on uneven, lined or cluttered paper and return its ink alone (OpenCV)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.paper_lines import line_runs, opencv, page_tilt, remove_lines

WORK_SIDE = 1000         # photos are searched at most this big (px, longer side): a 12 MP photo in ~100 ms
MIN_PHOTO_SIDE = 48      # smaller images (thumbnails, MNIST's own 28x28) always take the drawing path
FLAT_LEVELS = 0.5        # a clean drawing's paper is exactly its median level (a photo's: noise), over
MIN_PAPER = 0.4          # ...over at least this share of the image
FAINT_SHARE = 0.1        # a drawing has almost no faintly-off-paper pixels; JPEG'd photo paper has them over this share
BACKGROUND_SHARE = 0.25  # the background filter is this share of the (small) image's side: wider than any stroke
STRAY_REACH = 0.25       # pieces further than this share of the digit's size from it are not of it (_choose too)
SPECK_AREA = 0.1         # a speck: less ink than this share of the digit's main piece...
SPECK_SIDE = 3.0         # ...and no longer than this many pen widths
THIN_PIECE = 0.4         # a piece thinner than this share of the pen's width is a paper line's remnant

Region = tuple[int, int, int, int]  # (x0, y0, x1, y1) in source pixels, x1/y1 exclusive


@dataclass(frozen=True)
class Reading:
    """How a photo is read. The usual reading decides the ink's polarity and grows each stroke's faint edges from
    its dark core. A second reading (core.predict tries them when the usual one does not look like a digit) can
    keep the dark cores alone, where faint paper stains or shadows had grown onto the digit, or force dark ink,
    where a thick digit on mottled paper looked like light ink."""

    cores_only: bool = False
    light_ink: bool | None = None   # None: decided from the picture (_light_ink)


@dataclass
class FoundDigit:
    """The chosen digit: `ink` (h, w) float32 in [0, 1], zero outside it; `region` where it lies in the source."""

    ink: np.ndarray
    region: Region
    tilt_deg: float        # the paper's ruled lines were turned upright by this much (0: no lines found)
    candidates: int        # inked groups found before choosing
    reading: Reading       # how it was read, the polarity decided


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 luminance 0-255, ITU-R 601 weights as Pillow's convert("L")."""
    cv2 = opencv()
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)


def looks_like_photo(gray: np.ndarray) -> bool:
    """False for a clean drawing (flat paper, ink, little in between, no page-wide lines); True otherwise.

    Clean drawings keep the original MNIST path pixel for pixel; everything else gets the photo treatment."""
    h, w = gray.shape
    if min(h, w) < MIN_PHOTO_SIDE:
        return False
    step = max(1, int(np.sqrt(h * w / 250_000)))  # statistics on <= ~250k pixels: 12 MP costs what 0.25 MP does
    sample = gray[::step, ::step]
    paper = float(np.bincount(np.clip(np.round(sample), 0, 255).astype(np.int64).ravel()).argmax())  # most common
    deviation = np.abs(sample - paper)
    if float(np.mean(deviation <= FLAT_LEVELS)) < MIN_PAPER:
        return True                       # sensor noise, paper texture, JPEG
    if float(np.mean((deviation > FLAT_LEVELS) & (deviation <= 8))) > FAINT_SHARE:
        return True                       # JPEG flattened the noise, but shading, texture and faint lines remain
    ink = deviation > 32
    # two or more separate lines inked edge to edge: ruled paper (one full row may be a digit's bar cropped tight)
    return max(line_runs(ink.sum(1), ink.shape[1], share=0.9), line_runs(ink.sum(0), ink.shape[0], share=0.9)) >= 2


def erase_and_crop(gray: np.ndarray, region: Region | None = None, erase: np.ndarray | None = None
                   ) -> tuple[np.ndarray, tuple[int, int]]:
    """The user's edits: `erase` (H, W) bool pixels painted over with the paper around them (inpainting), then the
    crop to `region`. Returns the edited (h, w) float32 image and the crop's top-left (x, y) in source pixels."""
    if erase is not None and erase.shape != gray.shape:
        raise ValueError(f"the erase mask is {erase.shape[1]}x{erase.shape[0]} pixels but the image is "
                         f"{gray.shape[1]}x{gray.shape[0]}")
    if erase is not None and erase.any():
        cv2 = opencv()
        mask = erase.astype(np.uint8)
        # inpainting continues the paper's shading and texture into the erased pixels (a flat fill leaves a patch)
        gray = cv2.inpaint(np.clip(gray, 0, 255).astype(np.uint8), mask, 3, cv2.INPAINT_TELEA).astype(np.float32)
    if region is None:
        return gray, (0, 0)
    h, w = gray.shape
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    x0, x1 = sorted((min(max(x0, 0), w), min(max(x1, 0), w)))
    y0, y1 = sorted((min(max(y0, 0), h), min(max(y1, 0), h)))
    return gray[y0:y1, x0:x1], (x0, y0)


def _estimate_size(small: np.ndarray) -> np.ndarray:
    """`small` shrunk by a whole factor (area average) to a longer side of about 400 px or less, for estimating the
    paper, which varies slowly: the wide filters then run on up to 36x fewer pixels."""
    cv2 = opencv()
    h, w = small.shape
    factor = max(1, max(h, w) // 400)
    return cv2.resize(small, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)


def _background_kernel(tiny: np.ndarray) -> int:
    """The odd width of a background filter on `tiny`: BACKGROUND_SHARE of its longer side."""
    return 2 * max(1, round(BACKGROUND_SHARE * max(tiny.shape) / 2)) + 1


def _contrast(small: np.ndarray) -> np.ndarray:
    """Ink strength (h, w) in [0, 1] of a dark-ink image: 1 - pixel / local paper, the paper estimated by a
    morphological closing far wider than any stroke (keeps shadows' and the page's edges, removes the ink)."""
    cv2 = opencv()
    h, w = small.shape
    tiny = _estimate_size(small)
    k = _background_kernel(tiny)
    # the edge pixels continued outward: a closing would otherwise lift the paper where a vignette darkens the edge
    padded = cv2.copyMakeBorder(tiny, k, k, k, k, cv2.BORDER_REPLICATE)
    # a square closing keeps straight shadow edges where they are (any convex shape does) and costs O(1) a pixel
    paper = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))[k:-k, k:-k]
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(1.0 - small / np.maximum(paper, 1.0), 0.0, 1.0)  # shadows divide out: ink is a ratio


def _light_ink(small: np.ndarray) -> bool:
    """Polarity: light ink on a dark board only when both tests say so (dark ink on paper is far more common):
    the far tail of the pixels is light, both from the local median (a shadow's edge reaches both ways) and
    from the global one (strokes wider than the local window fool the first)."""
    cv2 = opencv()
    tiny = _estimate_size(np.clip(small, 0, 255).astype(np.uint8))
    k = min(255, _background_kernel(tiny))  # wider than twice a stroke (medianBlur takes at most 255 on uint8)
    away = tiny.astype(np.float32) - cv2.medianBlur(tiny, k)
    lo, mid, hi = np.percentile(tiny, (1, 50, 99))
    return bool(float(np.percentile(away, 99.98)) > -float(np.percentile(away, 0.02)) and hi - mid > mid - lo)


def _thresholds(contrast: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Smoothed contrast and the (low, high) ink thresholds, relative to the paper's own noise and the darkest ink."""
    cv2 = opencv()
    smooth = cv2.GaussianBlur(contrast, (3, 3), 0)
    level = float(np.median(smooth))
    noise = 1.4826 * float(np.median(np.abs(smooth - level))) + 1e-3
    peak = float(np.percentile(smooth, 99.99))  # the darkest ink, not one hot pixel
    return smooth, max(level + 3 * noise, 0.2 * peak, 0.05), max(level + 6 * noise, 0.4 * peak, 0.08)


def _hysteresis(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """The weak pixels connected to a strong one: faint stroke edges grow from the dark stroke cores."""
    cv2 = opencv()
    count, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    seeded = np.zeros(count, dtype=bool)
    seeded[np.unique(labels[strong & weak])] = True
    seeded[0] = False
    return seeded[labels]


def _choose(mask: np.ndarray, contrast: np.ndarray, edge: np.ndarray) -> tuple[np.ndarray, int]:
    """The digit's pixels: nearby pieces grouped, each group scored by ink mass, closeness to the centre and not
    touching the image's edge (table, page edge, shadow); pieces close to the winner and not specks join it."""
    cv2 = opencv()
    h, w = mask.shape
    gap = max(2, round(0.01 * max(h, w)))
    grouped = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1,) * 2))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    if count <= 1:
        return np.zeros_like(mask), 0
    labels = np.where(mask, labels, 0)
    mass = np.bincount(labels.ravel(), weights=contrast.ravel(), minlength=count)
    x, y, bw, bh = (stats[:, i].astype(np.float64) for i in range(4))
    cx, cy = (x + bw / 2) / w - 0.5, (y + bh / 2) / h - 0.5
    centrality = np.exp(-(cx ** 2 + cy ** 2) / (2 * 0.3 ** 2))
    touches = np.zeros(count, dtype=bool)
    touches[np.unique(labels[edge])] = True
    elongated = np.maximum(bw, bh) / np.maximum(np.minimum(bw, bh), 1) > 6  # lines, edges, folds
    score = mass * centrality * np.where(elongated, 0.1, 1.0)
    score[touches] *= 0.05                # the table, the page's edge, a shadow: only if nothing much else is inked
    score[0] = -1
    best = int(np.argmax(score))
    chosen = {best}
    x0, y0, x1, y1 = x[best], y[best], x[best] + bw[best], y[best] + bh[best]
    reach = STRAY_REACH * max(bw[best], bh[best])
    for i in np.argsort(-score):
        if i in chosen or i == 0 or score[i] <= 0 or touches[i] or mass[i] < 0.03 * mass[best]:
            continue
        dx = max(x0 - (x[i] + bw[i]), x[i] - x1, 0)
        dy = max(y0 - (y[i] + bh[i]), y[i] - y1, 0)
        if max(dx, dy) <= reach:
            chosen.add(int(i))
    keep = np.zeros(count, dtype=bool)
    keep[list(chosen)] = True
    return keep[labels], count - 1


def _pen_width(mask: np.ndarray, dist: np.ndarray) -> float:
    """The strokes' width in pixels: twice the distance to the paper along their middles (the pixels no neighbour
    of which is further in), less the middle pixel counted twice; the median over the middle pixels, each weighted
    by its distance, i.e. by the ink it stands for. A thin line piece that came along is long but little ink, and
    corners and crossings, where the distance is larger, are few. (Weighting by the distance squared read 6 more
    of 1,200 tune photos wrong: it takes the thick parts of a stroke for the pen.)"""
    cv2 = opencv()
    middle = np.sort(dist[(dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (mask > 0)])
    if not len(middle):
        return 1.0
    weight = np.cumsum(middle.astype(np.float64))
    half = min(int(np.searchsorted(weight, 0.5 * weight[-1])), len(middle) - 1)
    return max(1.0, 2.0 * float(middle[half]) - 1.0)


def _drop_thin_straight_runs(chosen: np.ndarray) -> np.ndarray:
    """Pieces of paper lines that touch the digit and so came with it: straight horizontal or vertical runs, long
    against the digit and much thinner than its strokes, are dropped (a stroke as thick as the pen stays)."""
    cv2 = opencv()
    m = chosen.astype(np.uint8)
    if not m.any():
        return chosen
    stroke = _pen_width(m, cv2.distanceTransform(m, cv2.DIST_L2, 3))
    thick = max(2, int(np.ceil(0.6 * stroke))) | 1        # thinner than this across: a line, not a stroke
    ys, xs = np.nonzero(m)
    long = max(9, int(min(0.5 * max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1), 3 * stroke)) | 1)
    # (odd sizes: OpenCV's opening with an even kernel shifts what it keeps by a pixel)
    drop = np.zeros_like(m)
    for along, across in (((1, long), (thick, 1)), ((long, 1), (1, thick))):  # horizontal, then vertical runs
        runs = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones(along, np.uint8))
        strokes = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones(across, np.uint8))
        drop |= runs & (1 - strokes)
    kept = m & (1 - drop)
    if kept.sum() < 0.5 * m.sum():
        return chosen  # most of it was thin and straight: better the whole than a fragment
    count, labels, stats, _ = cv2.connectedComponentsWithStats(kept, connectivity=8)
    if count > 2:  # what the lines leave behind in bits (their crossings, short pieces) goes too
        area = stats[1:, cv2.CC_STAT_AREA]
        keep = np.concatenate([[False], area >= 0.05 * area.max()])
        kept = keep[labels].astype(np.uint8)
    return kept.astype(bool)


def _drop_strays(chosen: np.ndarray) -> np.ndarray:
    """Pieces that came with the digit but are not of it, once the line pieces are gone. The digit's main piece
    (the largest) stays, and another piece goes when it is
    - beyond reach of the main piece (it had joined through a line piece that is now dropped);
    - a speck: little ink and short, a dot of dust beside the stroke;
    - far thinner than the digit's strokes (what a grid leaves): one pen writes one width."""
    cv2 = opencv()
    m = chosen.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if count <= 2:
        return chosen
    x, y, bw, bh, area = (stats[:, i].astype(np.float64) for i in range(5))
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    core = 1 + int(np.argmax(area[1:]))
    core_box = (slice(int(y[core]), int(y[core] + bh[core])), slice(int(x[core]), int(x[core] + bw[core])))
    stroke = _pen_width((labels[core_box] == core).astype(np.uint8), dist[core_box])
    reach = STRAY_REACH * max(bw[core], bh[core])
    keep = np.zeros(count, dtype=bool)
    keep[core] = True
    for i in range(1, count):
        if i == core:
            continue
        gap = max(x[core] - (x[i] + bw[i]), x[i] - (x[core] + bw[core]),
                  y[core] - (y[i] + bh[i]), y[i] - (y[core] + bh[core]), 0)
        box = (slice(int(y[i]), int(y[i] + bh[i])), slice(int(x[i]), int(x[i] + bw[i])))
        width = 2.0 * float(dist[box][labels[box] == i].max())
        speck = area[i] < SPECK_AREA * area[core] and max(bw[i], bh[i]) <= SPECK_SIDE * stroke
        keep[i] = gap <= reach and not speck and width >= THIN_PIECE * stroke
    return keep[labels]


@dataclass
class _Page:
    """A photo at working size with its ink made dark: contrast (h, w), the thresholds, the weak ink with paper lines
    removed, what counts as the picture's edge, and the turn that levelled its lines (None: none found)."""

    contrast: np.ndarray
    smooth: np.ndarray
    high: float
    weak: np.ndarray
    edge: np.ndarray
    turn: np.ndarray | None
    tilt: float | None


def _page(small: np.ndarray, light_ink: bool) -> _Page | None:
    """Background and paper lines worked out on `small` (h, w) gray at working size; None if there is no ink."""
    cv2 = opencv()
    if light_ink:                         # light ink on a dark board: make the ink dark
        small = 255.0 - small
    contrast = _contrast(small)           # (h, w) in [0, 1]
    smooth, low, high = _thresholds(contrast)
    weak = smooth > low
    if not weak.any():
        return None
    tilt = page_tilt(weak)
    sh, sw = small.shape
    edge = np.zeros((sh, sw), dtype=bool)
    edge[:2], edge[-2:], edge[:, :2], edge[:, -2:] = True, True, True, True
    turn = None
    if tilt is not None:
        # turn the page so its lines are level: the digit written along them comes upright too
        turn = cv2.getRotationMatrix2D((sw / 2, sh / 2), tilt, 1.0)
        contrast = cv2.warpAffine(contrast, turn, (sw, sh), flags=cv2.INTER_LINEAR)
        smooth = cv2.warpAffine(smooth, turn, (sw, sh), flags=cv2.INTER_LINEAR)
        # what turns in from outside the photo is edge too: ink reaching it is the table or the page's edge
        outside = cv2.warpAffine(np.ones((sh, sw), np.uint8), turn, (sw, sh), flags=cv2.INTER_NEAREST) == 0
        edge |= cv2.dilate(outside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        weak = remove_lines(smooth > low, inside=~outside, strength=smooth)
    return _Page(contrast, smooth, high, weak, edge, turn, tilt)


class PhotoReader:
    """One photo (H, W) gray 0-255, read one or more ways (Reading): the working-size image, the polarity decision
    and each polarity's page (background, paper lines) are worked out once, so a second reading costs only the
    digit's choice unless it asks for the other polarity."""

    def __init__(self, gray: np.ndarray):
        cv2 = opencv()
        self.shape = gray.shape
        h, w = gray.shape
        self.scale = min(1.0, WORK_SIDE / max(h, w))
        small = np.asarray(gray, dtype=np.float32)
        if self.scale < 1.0:
            small = cv2.resize(small, (max(1, round(w * self.scale)), max(1, round(h * self.scale))),
                               interpolation=cv2.INTER_AREA)
        self.small = small
        self.light_ink = _light_ink(small)
        self._pages: dict[bool, _Page | None] = {}

    def read(self, reading: Reading = Reading()) -> FoundDigit | None:
        """The digit as `reading` says; None if there is no ink."""
        light_ink = self.light_ink if reading.light_ink is None else reading.light_ink
        if light_ink not in self._pages:
            self._pages[light_ink] = _page(self.small, light_ink)
        page = self._pages[light_ink]
        if page is None:
            return None
        return _digit_on(page, Reading(reading.cores_only, light_ink), self.scale, self.shape)


def find_digit(gray: np.ndarray, reading: Reading = Reading()) -> FoundDigit | None:
    """The photo pipeline on (H, W) gray 0-255: background removed, lines removed, the digit chosen; None if no ink."""
    return PhotoReader(gray).read(reading)


def _digit_on(page: _Page, reading: Reading, scale: float, shape: tuple[int, int]) -> FoundDigit | None:
    """The digit chosen on a page read as `reading` (its polarity decided), its ink and its region in the source's
    pixels (`shape` (H, W), `scale` the working size's)."""
    cv2 = opencv()
    h, w = shape
    contrast, smooth, weak = page.contrast, page.smooth, page.weak
    # the cores alone, or the faint edges grown from them (hysteresis)
    mask = weak & (smooth > page.high) if reading.cores_only else _hysteresis(weak, smooth > page.high)
    chosen, candidates = _choose(mask, contrast, page.edge)
    chosen = _drop_strays(_drop_thin_straight_runs(chosen))
    if not chosen.any():
        return None
    near = cv2.dilate(chosen.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # its anti-aliased rim too
    ink = np.where(near, contrast, 0.0).astype(np.float32)
    strong = float(np.percentile(ink[chosen], 90))
    ink = np.clip(ink / max(strong, 1e-3), 0.0, 1.0)  # pen, pencil and marker all come out as full-strength ink
    ys, xs = np.nonzero(chosen)
    corners = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.min()], [xs.min(), ys.max() + 1],
                        [xs.max() + 1, ys.max() + 1]], dtype=np.float64)
    if page.turn is not None:             # back to the unturned photo's pixels
        corners = cv2.transform(corners[None], cv2.invertAffineTransform(page.turn))[0]
    x0, y0 = np.floor(corners.min(0) / scale)
    x1, y1 = np.ceil(corners.max(0) / scale)
    region = (int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h)))
    return FoundDigit(ink, region, float(page.tilt or 0.0), candidates, reading)
