"""Photo-like digit images made here: real handwriting shapes on paper with lighting, lines, ink colours, tilt, blur, JPEG.

Shapes: pen-path digits (core/pen_digits.py), font digits (bench/ood_sets.py), UCI optdigits and, when the data folder
has it, MNIST *test* digits read at run time (never copied). Tune and held-out sets use separate seed streams, separate
stroke variants and fonts, and separate halves of optdigits; MNIST test digits appear only in the held-out set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from bench.ood_sets import find_fonts, font_mask
from core.pen_digits import VARIANTS, draw_polylines, jittered_polylines

STREAMS = {"tune": 20, "heldout": 30}
BLANK_STREAM = 7         # blank photos draw from their own generators, never a digit photo's
SIZE_PX = (96, 4000)     # the photo's longer side, log-uniform
PAPERS = {"white": (246, 246, 242), "cream": (240, 232, 210), "yellow note": (250, 236, 120),
          "pink note": (250, 190, 205), "blue note": (175, 215, 245), "green note": (200, 240, 180),
          "grey recycled": (205, 205, 200)}
INKS = {"black": (25, 25, 30), "blue": (30, 50, 170), "red": (190, 30, 35), "green": (25, 120, 60),
        "pencil": (95, 95, 105)}
LINES = ("none", "ruled", "grid", "dotted")
LIGHTING = ("flat", "gradient", "shadow", "vignette")


@dataclass(frozen=True)
class Conditions:
    """One photo's look; every field can be set alone for a unit test."""

    size: tuple[int, int] = (640, 480)      # (width, height) px
    digit_share: float = 0.5                # the digit's height as a share of the photo's height
    offset: tuple[float, float] = (0, 0)    # the digit's centre from the photo's centre, as shares of (width, height)
    paper: str = "white"
    texture: float = 0.02                   # low-frequency paper mottling, share of brightness
    lines: str = "none"
    line_spacing: float = 0.8               # ruled/grid spacing as a share of the digit's height
    ink: str = "black"
    ink_strength: float = 0.9               # 1: opaque ink; pencil is fainter
    lighting: str = "flat"
    light_depth: float = 0.4                # how much darker the dark side / shadow / corners are
    tilt_deg: float = 0.0                   # the page turned on the table (the table shows in the corners)
    blur: float = 0.0                       # Gaussian blur sigma as a share of the digit's height
    noise: float = 3.0                      # sensor noise, grey levels
    specks: int = 0                         # dust and specks around the page
    clutter: bool = False                   # another mark (a scribble) off to the side
    jpeg_quality: int | None = None         # None: no JPEG round trip


def random_conditions(rng: np.random.Generator) -> Conditions:
    """Every condition drawn at once, as a phone photo of a written digit might have them."""
    long_side = math.exp(rng.uniform(math.log(SIZE_PX[0]), math.log(SIZE_PX[1])))
    aspect = rng.choice([1.0, 4 / 3, 3 / 4, 16 / 9])
    size = (max(64, round(long_side if aspect >= 1 else long_side * aspect)),
            max(64, round(long_side / aspect if aspect >= 1 else long_side)))
    small_in_large = long_side > 1500 and rng.random() < 0.4
    ink = str(rng.choice(list(INKS)))
    return Conditions(
        size=size, digit_share=rng.uniform(0.08, 0.2) if small_in_large else rng.uniform(0.3, 0.75),
        offset=(rng.uniform(-0.15, 0.15), rng.uniform(-0.12, 0.12)), paper=str(rng.choice(list(PAPERS))),
        texture=rng.uniform(0, 0.05), lines=str(rng.choice(LINES)), line_spacing=rng.uniform(0.45, 1.0),
        ink=ink, ink_strength=rng.uniform(0.3, 0.6) if ink == "pencil" else rng.uniform(0.75, 1.0),
        lighting=str(rng.choice(LIGHTING)), light_depth=rng.uniform(0.15, 0.5),
        tilt_deg=rng.uniform(-12, 12) if rng.random() < 0.5 else 0.0, blur=rng.uniform(0, 0.02),
        noise=rng.uniform(1, 6), specks=int(rng.integers(0, 30)), clutter=bool(rng.random() < 0.25),
        jpeg_quality=int(rng.integers(35, 86)))


def _field(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    """Smooth random field (h, w) in about [-1, 1]: a few noise cells upsampled."""
    h, w = shape
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _lighting(c: Conditions, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Brightness factor (h, w): 1 where fully lit."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xs / w - 0.5, ys / h - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    along = u * np.cos(angle) + v * np.sin(angle)              # -0.7..0.7 across the frame
    if c.lighting == "gradient":
        return 1 - c.light_depth * (along + 0.7) / 1.4
    if c.lighting == "shadow":                                 # a soft-edged shadow over part of the page
        edge = rng.uniform(-0.25, 0.25)
        soft = max(0.01, rng.uniform(0.005, 0.05))
        return 1 - c.light_depth * 1 / (1 + np.exp(-(along - edge) / soft))
    if c.lighting == "vignette":
        return 1 - c.light_depth * np.clip((u ** 2 + v ** 2) / 0.5, 0, 1) ** 1.2
    return np.ones(shape, np.float32)


def render(mask: np.ndarray, c: Conditions, rng: np.random.Generator) -> np.ndarray:
    """Ink mask (h, w) in [0, 1] -> photo (H, W, 3) uint8 RGB under conditions `c`."""
    w, h = c.size
    paper = np.array(PAPERS[c.paper], np.float32)
    page = np.ones((h, w, 3), np.float32) * paper
    page *= (1 + c.texture * _field((h, w), rng, 6))[..., None]
    digit_h = max(8, round(c.digit_share * h))
    spacing = max(4.0, c.line_spacing * digit_h)
    thick = max(1, round(digit_h / 60))
    line_colour = np.array((150, 175, 225), np.float32) if c.paper in ("white", "cream") else paper * 0.7
    cx, cy = w / 2 + c.offset[0] * w, h / 2 + c.offset[1] * h
    lines = np.zeros((h, w), np.uint8)
    phase = rng.uniform(0, spacing)
    if c.lines in ("ruled", "grid"):
        for y in np.arange(cy + digit_h / 2 - phase % spacing, -spacing, -spacing).tolist() + \
                 np.arange(cy + digit_h / 2 + spacing - phase % spacing, h + spacing, spacing).tolist():
            cv2.line(lines, (0, round(y)), (w, round(y)), 255, thick)
    if c.lines == "grid":
        for x in np.arange(phase % spacing, w, spacing):
            cv2.line(lines, (round(x), 0), (round(x), h), 255, thick)
    if c.lines == "dotted":
        for y in np.arange(phase % spacing, h, spacing):
            for x in np.arange(phase % spacing, w, spacing):
                cv2.circle(lines, (round(x), round(y)), thick, 255, -1)
    alpha = (lines.astype(np.float32) / 255 * 0.8)[..., None]
    page = page * (1 - alpha) + line_colour * alpha
    if c.lines == "ruled":                                     # the red margin line
        x = round(w * rng.uniform(0.06, 0.18))
        cv2.line(page, (x, 0), (x, h), (225, 90, 90), thick)
    # the digit: subtractive ink, like pen on paper
    mh, mw = mask.shape
    scale = digit_h / mh
    dw = max(1, round(mw * scale))
    ink_mask = cv2.resize(mask.astype(np.float32), (dw, digit_h), interpolation=cv2.INTER_LINEAR)
    ink_layer = np.zeros((h, w), np.float32)
    cx = min(max(cx, dw / 2 + 2), w - dw / 2 - 2)              # the whole digit is in the photo
    x0, y0 = round(cx - dw / 2), round(cy - digit_h / 2)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + dw, w), min(y0 + digit_h, h)
    ink_layer[ya:yb, xa:xb] = ink_mask[ya - y0:yb - y0, xa - x0:xb - x0]
    for _ in range(c.specks):                                  # dust: small dark dots anywhere
        cv2.circle(ink_layer, (int(rng.integers(w)), int(rng.integers(h))), int(rng.integers(1, thick + 2)),
                   float(rng.uniform(0.3, 0.8)), -1)
    if c.clutter:                                              # a scribble in a corner of the photo
        px, py = rng.choice([0.08, 0.92]) + rng.uniform(-0.04, 0.04), rng.choice([0.1, 0.9]) + rng.uniform(-0.05, 0.05)
        pts = (np.array([px * w, py * h]) + np.cumsum(rng.normal(0, min(w, h) / 60, (8, 2)), 0)).astype(np.int32)
        cv2.polylines(ink_layer, [pts], False, 1.0, max(1, thick * 2))
    ink_colour = np.array(INKS[c.ink], np.float32)
    coverage = (np.clip(ink_layer, 0, 1) * c.ink_strength)[..., None]
    page = page * (1 - coverage * (1 - ink_colour / 255))
    if c.tilt_deg:                                             # the page turned on a table that fills the corners
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), c.tilt_deg, 1.0)
        page = cv2.warpAffine(page, turn, (w, h), flags=cv2.INTER_LINEAR, borderValue=(-1, -1, -1))
        table = np.array(rng.choice([(120, 80, 50), (60, 60, 65), (170, 140, 100)]), np.float32)
        table_img = table * (1 + 0.15 * _field((h, w), rng, 12))[..., None]
        page = np.where(page < 0, table_img, page)
    page *= _lighting(c, (h, w), rng)[..., None]
    if c.blur > 0:
        page = cv2.GaussianBlur(page, (0, 0), max(0.3, c.blur * digit_h))
    page += rng.normal(0, c.noise, page.shape).astype(np.float32)
    rgb = np.clip(np.round(page), 0, 255).astype(np.uint8)
    if c.jpeg_quality is not None:
        ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, c.jpeg_quality])
        rgb = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(rgb)


# ---------------------------------------------------------------- digit shapes
def stroke_mask(digit: int, rng: np.random.Generator, heldout: bool) -> np.ndarray:
    variants = [v for v in VARIANTS if v.digit == digit and v.heldout == heldout] or \
               [v for v in VARIANTS if v.digit == digit]
    polylines = jittered_polylines(variants[rng.integers(len(variants))], rng, max_rotation_deg=10.0)
    return draw_polylines(polylines, rng.uniform(0.05, 0.14), height=200)


@lru_cache(maxsize=1)
def optdigit_masks() -> tuple[np.ndarray, np.ndarray]:
    """UCI optdigits (shipped inside scikit-learn) as soft masks (N, 160, 160) and labels (N,); made once (read
    only), since sets are made a slice at a time."""
    from sklearn.datasets import load_digits

    data = load_digits()
    masks = []
    for image in data.images:
        big = cv2.resize(np.pad(image / 16.0, 1).astype(np.float32), (160, 160), interpolation=cv2.INTER_CUBIC)
        masks.append(np.clip((big - 0.15) / 0.5, 0, 1))       # firm strokes, as bench/ood_sets.py does
    return np.stack(masks), data.target


def mnist_test_masks(data_dir: Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST test digits (read from the data folder at run time) as masks upsampled 6x, or None when absent."""
    if data_dir is None:
        return None
    from core.data import DataError, find_files, load_split

    files = find_files(Path(data_dir))
    if files is None:
        return None
    try:
        images, labels = load_split(files, train=False)
    except DataError:
        return None
    return images.numpy(), labels.numpy()


def _crop(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask > 0.05)
    return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def photo_set(split: str, n: int, seed: int = 0, data_dir: Path | None = None, first: int = 0
              ) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Photos first..first+n-1 (H, W, 3) uint8 with labels and each one's shape source; image i is the same whatever
    n and first are (so a large set can be made a slice at a time)."""
    heldout = split == "heldout"
    fonts, _missing = find_fonts(heldout)
    opt_masks, opt_labels = optdigit_masks()
    half = len(opt_labels) // 2
    opt_index = np.arange(half, len(opt_labels)) if heldout else np.arange(half)
    mnist = mnist_test_masks(data_dir) if heldout else None
    kinds = ["strokes", "optdigits"] + (["fonts"] if fonts else []) + (["mnist"] if mnist is not None else [])
    images, labels, sources = [], [], []
    for i in range(first, first + n):
        rng = np.random.default_rng([STREAMS[split], seed, i])
        kind = kinds[i % len(kinds)]
        digit = (i // len(kinds)) % 10
        if kind == "strokes":
            mask = stroke_mask(digit, rng, heldout)
        elif kind == "fonts":
            mask = font_mask(fonts[rng.integers(len(fonts))], digit, rng, 200)
        elif kind == "optdigits":
            pick = rng.choice(opt_index[opt_labels[opt_index] == digit])
            mask = opt_masks[pick]
        else:
            images28, labels28 = mnist
            pick = int(rng.choice(np.nonzero(labels28 == digit)[0]))
            big = cv2.resize(images28[pick].astype(np.float32) / 255, (168, 168), interpolation=cv2.INTER_CUBIC)
            mask = np.clip((big - 0.2) / 0.5, 0, 1)
        images.append(render(_crop(mask), random_conditions(rng), rng))
        labels.append(digit)
        sources.append(kind)
    return images, labels, sources



def blank_photos(split: str, n: int, seed: int = 0, first: int = 0) -> list[np.ndarray]:
    """Photos first..first+n-1 (H, W, 3) uint8 of paper with no writing: texture, lines, lighting, tilt, specks,
    blur, JPEG drawn as for the digit photos, no clutter."""
    photos = []
    for i in range(first, first + n):
        rng = np.random.default_rng([STREAMS[split], BLANK_STREAM, seed, i])
        photos.append(render(np.zeros((8, 8), np.float32), replace(random_conditions(rng), clutter=False), rng))
    return photos
