"""Generated things that are not one digit (letters, symbols, scribbles, dots, lines, pairs of digits, blank-looking
photos), each a page as a user would give it, for training and measuring the "is this one digit?" gate."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.pen_digits import VARIANTS, draw_polylines, jittered_polylines

# The gate's classes, in output order; index 0 is "one digit", every other one a kind of non-digit.
KINDS = ("digit", "letter", "scribble", "dot", "line", "pair", "blank")
DESCRIPTIONS = {  # what the prediction pane says it looks like
    "letter": "a letter or symbol", "scribble": "a scribble", "dot": "a dot", "line": "a line",
    "pair": "more than one digit", "blank": "an empty page or photo",
}
# Glyphs that are digit shapes (O/0, l/I/1, S/5, Z/2, B/8, b/6, g q/9, brackets and slashes/1): never called
# non-digits, in training or in evaluation, since a reader could rightly take them for digits.
DIGIT_LIKE = set("OoQDIlij|/\\()[]!SsZzBbgqGT")
LETTERS = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+*=#@&%$?<>{}~^"
                  if c not in DIGIT_LIKE)
STREAMS = {"train": 11, "tune": 12, "heldout": 13}  # seed streams: no evaluation page is ever a training page
CANVAS_PX = (64, 400)        # page side range (log-uniform), thumbnails to large pads
MIN_LINE_ANGLE_DEG = 35.0    # lines closer to vertical than this are 1s, not non-digits


def rng_for(stream: str, kind: str, seed: int, index: int) -> np.random.Generator:
    """One generator per page: page i is the same whatever else is made."""
    return np.random.default_rng([STREAMS[stream], KINDS.index(kind), seed, index])


def frame(mask: np.ndarray, rng: np.random.Generator, share: tuple[float, float] = (0.3, 0.9)) -> np.ndarray:
    """Ink mask (h, w) in [0, 1] -> (H, W) uint8 page: scaled so its longer side is `share` of the page, anywhere,
    dark on light or light on dark."""
    side = round(math.exp(rng.uniform(math.log(CANVAS_PX[0]), math.log(CANVAS_PX[1]))))
    page_h, page_w = side, max(32, round(side * (rng.uniform(0.75, 1.33) if rng.random() < 0.3 else 1.0)))
    h, w = mask.shape
    scale = rng.uniform(*share) * min(page_h, page_w) / max(h, w)
    tw, th = min(page_w, max(1, round(w * scale))), min(page_h, max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize((tw, th), Image.Resampling.LANCZOS))
    ink = np.zeros((page_h, page_w), dtype=np.float32)
    top, left = rng.integers(0, page_h - th + 1), rng.integers(0, page_w - tw + 1)
    ink[top:top + th, left:left + tw] = np.clip(small, 0, 1)
    if rng.random() < 0.5:
        paper, pen = rng.uniform(225, 255), rng.uniform(0, 50)
    else:
        paper, pen = rng.uniform(0, 30), rng.uniform(205, 255)
    return np.round(paper + (pen - paper) * ink).astype(np.uint8)


@lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size) if path == "" else ImageFont.truetype(path, size)


def glyph_mask(font: Path | str, text: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """`text` in a font ("" = Pillow's built-in one) as an ink mask (h, w) in [0, 1], maybe bolder, slanted, turned."""
    face = _font(str(font), size)
    bold = round(rng.uniform(0, 0.035) * size) if rng.random() < 0.4 else 0
    left, top, right, bottom = face.getbbox(text, stroke_width=bold)
    pad = size // 4
    glyph = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(glyph).text((pad - left, pad - top), text, font=face, fill=255, stroke_width=bold, stroke_fill=255)
    shear = rng.uniform(-0.2, 0.2)
    glyph = glyph.transform(glyph.size, Image.Transform.AFFINE, (1, shear, -shear * glyph.size[1] / 2, 0, 1, 0),
                            resample=Image.Resampling.BICUBIC)
    glyph = glyph.rotate(rng.uniform(-15, 15), Image.Resampling.BICUBIC, expand=True)
    box = glyph.getbbox()
    return np.zeros((1, 1), np.float32) if box is None else np.asarray(glyph.crop(box), np.float32) / 255.0


def _smooth_path(points: np.ndarray, steps: int = 12) -> np.ndarray:
    """Catmull-Rom through (k, 2) points -> a smooth polyline (n, 2)."""
    p = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]  # (steps, 1)
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2:-1])
    return np.concatenate(out)


def draw_strokes(lines: list[np.ndarray], pen: float, long_side: int) -> np.ndarray:
    """Polylines (n, 2) -> ink mask (h, w) in [0, 1] whose longer side is `long_side` px, round pen `pen` x long_side
    wide (core.pen_digits.draw_polylines scales by height, which a horizontal line does not have)."""
    points = np.concatenate(lines)
    extent = float(np.ptp(points, axis=0).max())
    fake_height = long_side * float(np.ptp(points[:, 1])) / max(extent, 1e-6)
    if fake_height >= 4:
        return draw_polylines(lines, pen * long_side / fake_height, height=round(fake_height))
    turned = [line[:, ::-1] for line in lines]  # flat: draw it standing up, then lay it down
    return draw_polylines(turned, pen, height=long_side).T.copy()


def scribble_mask(rng: np.random.Generator) -> np.ndarray:
    """A tangle, a zigzag, a spiral or a scribbled-out patch, drawn with a round pen."""
    style = rng.integers(4)
    if style == 0:    # tangle: a smooth path through many random points
        lines = [_smooth_path(rng.uniform(0, 1, (int(rng.integers(6, 14)), 2)))]
    elif style == 1:  # zigzag or wave across
        n = int(rng.integers(4, 10))
        xs = np.linspace(0, 1, n) + rng.normal(0, 0.03, n)
        ys = np.where(np.arange(n) % 2 == 0, 0.0, 1.0) * rng.uniform(0.3, 1.0) + rng.normal(0, 0.08, n)
        lines = [_smooth_path(np.stack([xs, ys], 1), steps=int(rng.integers(1, 8)))]
    elif style == 2:  # spiral of 1.5-4 turns
        t = np.linspace(0, rng.uniform(3, 8) * math.pi, 200)
        r = 0.05 + 0.45 * t / t[-1]
        lines = [np.stack([r * np.cos(t) * rng.uniform(0.6, 1.2), r * np.sin(t)], 1)]
    else:             # hatching: back and forth over a patch, as when crossing something out
        n = int(rng.integers(6, 16))
        ys = np.linspace(0, 1, n) + rng.normal(0, 0.02, n)
        xs = np.where(np.arange(n) % 2 == 0, 0.0, 1.0) + rng.normal(0, 0.08, n)
        lines = [np.stack([xs * rng.uniform(0.8, 2.0), ys], 1)]
    return draw_strokes(lines, rng.uniform(0.02, 0.1), int(rng.integers(60, 140)))


def dot_mask(rng: np.random.Generator) -> np.ndarray:
    """One to three filled dots (a click, a blob), on a patch several times their size."""
    patch = int(rng.integers(40, 160))
    canvas = Image.new("L", (patch, patch), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):
        r = rng.uniform(0.03, 0.12) * patch
        cx, cy = rng.uniform(r, patch - r, 2)
        rx, ry = r * rng.uniform(0.7, 1.3), r * rng.uniform(0.7, 1.3)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    box = canvas.getbbox()
    return np.asarray(canvas.crop(box), np.float32) / 255.0


def line_mask(rng: np.random.Generator) -> np.ndarray:
    """A straight or gently bowed stroke at least MIN_LINE_ANGLE_DEG from vertical, or two parallel ones (=)."""
    angle = math.radians(rng.uniform(MIN_LINE_ANGLE_DEG, 90) * rng.choice([-1, 1]))  # from vertical
    direction = np.array([math.sin(angle), math.cos(angle)])
    normal = np.array([-direction[1], direction[0]])
    t = np.linspace(-0.5, 0.5, 30)[:, None]
    bow = rng.uniform(-0.08, 0.08) * (1 - 4 * t ** 2)
    line = t * direction + bow * normal
    lines = [line] if rng.random() < 0.8 else [line, line + rng.uniform(0.15, 0.35) * normal]
    return draw_strokes(lines, rng.uniform(0.015, 0.08), int(rng.integers(60, 200)))


def pair_mask(left: np.ndarray, right: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two digit masks side by side, heights within 25%, a gap from slightly touching to half a digit wide."""
    height = int(rng.integers(40, 100))
    parts = []
    for mask in (left, right):
        h, w = mask.shape
        th = max(4, round(height * rng.uniform(0.85, 1.15)))
        parts.append(np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize((max(1, round(w * th / h)), th),
                                                                                     Image.Resampling.BILINEAR)))
    gap = round(height * rng.uniform(-0.02, 0.5))
    total_h = max(p.shape[0] for p in parts) + round(0.15 * height)
    width = parts[0].shape[1] + max(0, gap) + parts[1].shape[1] + 2
    out = np.zeros((total_h, width), np.float32)
    x = 0
    for part in parts:
        y = int(rng.integers(0, total_h - part.shape[0] + 1))
        region = out[y:y + part.shape[0], x:x + part.shape[1]]
        np.maximum(region, np.clip(part, 0, 1), out=region)
        x += part.shape[1] + gap
    return out


def pen_digit_mask(digit: int, rng: np.random.Generator, heldout: bool) -> np.ndarray:
    """A pen digit from the training hands (heldout=False) or the held-out ones, as an ink mask."""
    hands = [v for v in VARIANTS if v.digit == digit and v.heldout == heldout]
    variant = hands[rng.integers(len(hands))]
    return draw_polylines(jittered_polylines(variant, rng), rng.uniform(0.04, 0.16), height=int(rng.integers(40, 120)))


def blank_page(rng: np.random.Generator) -> np.ndarray:
    """A page with no writing: uneven light (a shadow, a vignette), sensor noise and a few specks, faint contrast."""
    side = round(math.exp(rng.uniform(math.log(CANVAS_PX[0]), math.log(CANVAS_PX[1]))))
    yy, xx = np.mgrid[0:side, 0:side] / side  # (side, side) in [0, 1)
    paper = rng.uniform(150, 245)
    light = rng.uniform(-1, 1) * (xx - 0.5) + rng.uniform(-1, 1) * (yy - 0.5)  # a shadow across
    if rng.random() < 0.5:
        light = light - rng.uniform(0.5, 1.5) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)  # vignette
    page = paper + rng.uniform(20, 70) * light + rng.normal(0, rng.uniform(2, 8), (side, side))
    for _ in range(int(rng.integers(0, 6))):  # specks of dust
        y, x = rng.integers(0, side, 2)
        r = int(rng.integers(1, 3))
        page[max(0, y - r):y + r, max(0, x - r):x + r] -= rng.uniform(30, 90)
    page = np.clip(page, 0, 255)
    return (255 - page if rng.random() < 0.2 else page).astype(np.uint8)


def make_page(kind: str, stream: str, seed: int, index: int, fonts: Sequence[Path | str] = ("",),
              digit_source: Callable[[int, np.random.Generator], np.ndarray] | None = None) -> np.ndarray:
    """Page `index` of one non-digit kind from one stream. Letters come from `fonts`; pairs from `digit_source(digit,
    rng) -> mask` (default: pen digits of the stream's hands)."""
    rng = rng_for(stream, kind, seed, index)
    if kind == "letter":
        text = LETTERS[rng.integers(len(LETTERS))]
        return frame(glyph_mask(fonts[rng.integers(len(fonts))], text, rng), rng)
    if kind == "scribble":
        return frame(scribble_mask(rng), rng)
    if kind == "dot":
        return frame(dot_mask(rng), rng, share=(0.02, 0.25))
    if kind == "line":
        return frame(line_mask(rng), rng)
    if kind == "pair":
        source = digit_source or (lambda d, r: pen_digit_mask(d, r, heldout=stream == "heldout"))
        a, b = rng.integers(0, 10, 2)
        return frame(pair_mask(source(int(a), rng), source(int(b), rng), rng), rng, share=(0.4, 0.95))
    if kind == "blank":
        return blank_page(rng)
    raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS[1:])}")
