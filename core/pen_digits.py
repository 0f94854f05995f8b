"""Single-stroke pen digits: each digit 0-9 as a few SVG-like paths in a unit box, jittered and drawn with a round pen.

Used by training (a share of synthetic pen digits makes the model read mouse-drawn digits) and by bench/drawn_digits.py
(which also keeps some hands held out: `heldout=True` variants are never used for training)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

K = 0.5523  # cubic Bezier handle length for a quarter ellipse


def ellipse(cx: float, cy: float, rx: float, ry: float) -> str:
    """A closed ellipse as four cubic segments, starting at the top and running counter-clockwise."""
    return (f"M {cx} {cy - ry} C {cx - K * rx} {cy - ry} {cx - rx} {cy - K * ry} {cx - rx} {cy} "
            f"C {cx - rx} {cy + K * ry} {cx - K * rx} {cy + ry} {cx} {cy + ry} "
            f"C {cx + K * rx} {cy + ry} {cx + rx} {cy + K * ry} {cx + rx} {cy} "
            f"C {cx + rx} {cy - K * ry} {cx + K * rx} {cy - ry} {cx} {cy - ry}")


@dataclass(frozen=True)
class Variant:
    """One way of writing a digit: `path` in a unit box (x right, y down), M starts a new pen stroke."""

    digit: int
    name: str
    path: str
    heldout: bool = False  # True: never used for training/tuning, only in the held-out set


# Several hands per digit; the held-out ones are plausible but deliberately absent from the tune/train split.
VARIANTS: list[Variant] = [
    Variant(0, "oval", ellipse(0.5, 0.5, 0.4, 0.5)),
    Variant(0, "overlap", "M .62 .06 C .2 -.06 .02 .4 .08 .66 C .14 .95 .46 1.02 .68 .9 "
                          "C .92 .74 .94 .3 .76 .12 C .66 .02 .46 .02 .38 .1"),
    Variant(0, "pointed", "M .5 0 C .1 .2 .08 1 .5 1 C .92 1 .9 .2 .5 0", heldout=True),
    Variant(1, "bar", "M .5 0 L .5 1"),
    Variant(1, "flag", "M .3 .2 L .55 0 L .55 1"),
    Variant(1, "long-flag", "M .12 .38 L .6 0 L .6 1"),  # the continental 1: MNIST has few of these
    Variant(1, "curl-flag", "M .28 .24 C .2 .12 .34 0 .52 0 L .52 1"),  # a flag that curls: read as 9 before
    Variant(1, "wide-flag", "M .1 .4 C .25 .3 .45 .15 .62 0 C .6 .35 .58 .7 .56 1"),  # long curved flag: read as 2
    Variant(1, "flag-base", "M .3 .2 L .55 0 L .55 1 M .25 1 L .85 1", heldout=True),
    Variant(2, "plain", "M .12 .25 C .15 -.03 .86 -.05 .86 .28 C .86 .5 .45 .7 .1 1 L .92 1"),
    Variant(2, "z-like", "M .1 .1 C .4 -.05 .86 0 .84 .26 C .8 .46 .5 .62 .1 1 C .4 .94 .7 .94 .92 .98"),
    Variant(2, "loop", "M .12 .25 C .15 -.03 .86 -.05 .86 .28 C .86 .5 .4 .72 .2 .88 "
                       "C .04 1.02 .14 1.06 .3 .92 C .45 .82 .6 1 .92 .96", heldout=True),
    Variant(3, "round", "M .14 .12 C .4 -.04 .86 0 .82 .25 C .8 .42 .6 .47 .4 .47 "
                        "C .66 .47 .9 .58 .88 .77 C .85 1 .4 1.04 .12 .88"),
    Variant(3, "pointy", "M .14 .1 C .5 -.05 .86 .05 .8 .22 C .75 .38 .6 .45 .42 .48 "
                         "C .9 .52 .96 .8 .76 .92 C .56 1.03 .3 1 .12 .9"),
    Variant(3, "flat-top", "M .14 0 L .82 0 L .42 .4 C .76 .38 .92 .58 .86 .76 C .82 .98 .4 1.04 .12 .88",
            heldout=True),
    Variant(4, "open", "M .55 0 L .1 .66 L .94 .66 M .7 .34 L .7 1"),
    Variant(4, "closed", "M .72 1 L .72 0 L .06 .68 L .96 .68"),
    Variant(4, "narrow", "M .56 0 C .42 .2 .22 .45 .1 .62 L .82 .6 M .64 0 L .58 1"),  # tall, short bar: read as 9
    Variant(4, "open-arm", "M .38 .02 C .26 .24 .16 .44 .1 .62 L .92 .6 M .68 .08 L .66 1"),
    Variant(4, "open-top", "M .2 0 L .14 .56 L .92 .56 M .72 .04 L .72 1", heldout=True),
    Variant(5, "one-stroke", "M .84 0 L .26 0 L .2 .46 C .45 .3 .9 .38 .88 .68 C .86 1 .35 1.04 .1 .88"),
    Variant(5, "flag-after", "M .26 0 L .2 .46 C .45 .3 .9 .38 .88 .68 C .86 1 .35 1.04 .1 .88 M .26 0 L .86 .02"),
    Variant(5, "square-belly", "M .8 .02 L .3 .02 L .26 .42 L .6 .4 C .95 .45 .95 .96 .5 .98 C .35 1 .2 .95 .12 .86",
            heldout=True),
    Variant(6, "loop", "M .76 .05 C .45 -.02 .15 .3 .15 .65 C .15 .9 .32 1 .5 1 C .72 1 .86 .85 .86 .7 "
                       "C .86 .52 .7 .42 .5 .42 C .32 .42 .18 .52 .16 .65"),
    Variant(6, "straight-stem", "M .66 0 L .22 .6 C .1 .8 .25 1 .5 1 C .75 1 .86 .85 .86 .72 "
                                "C .86 .52 .66 .45 .5 .45 C .35 .45 .26 .52 .2 .6"),
    Variant(6, "small-loop", "M .8 0 C .4 .1 .2 .45 .2 .75 C .2 .95 .35 1 .5 1 C .65 1 .76 .92 .76 .8 "
                             "C .76 .68 .62 .6 .5 .6 C .38 .6 .25 .68 .2 .75", heldout=True),
    Variant(7, "plain", "M .08 0 L .92 0 L .38 1"),
    Variant(7, "crossbar", "M .08 0 L .92 0 L .38 1 M .3 .5 L .8 .5"),
    Variant(7, "curly", "M .1 .16 C .1 .05 .2 0 .32 .02 L .9 0 C .68 .28 .5 .62 .46 1"),  # curled start: read as 9
    Variant(7, "swash-top", "M .06 .1 C .25 -.04 .5 .1 .92 0 C .66 .32 .5 .66 .44 1"),
    Variant(7, "hook", "M .1 .16 L .12 0 L .92 0 C .66 .35 .5 .65 .45 1", heldout=True),
    Variant(8, "figure", "M .5 .47 C .1 .36 .15 0 .5 0 C .85 0 .9 .36 .5 .47 C .05 .58 .1 1 .5 1 "
                         "C .9 1 .95 .58 .5 .47"),
    Variant(8, "snowman", ellipse(0.5, 0.23, 0.3, 0.23) + " " + ellipse(0.5, 0.72, 0.38, 0.28)),
    Variant(8, "s-and-back", "M .8 .14 C .7 0 .2 -.02 .2 .22 C .2 .45 .8 .5 .8 .75 C .8 1 .2 1 .2 .75 "
                             "C .2 .5 .8 .45 .8 .2 C .8 .1 .76 .05 .7 .04", heldout=True),
    Variant(9, "straight-stem", "M .82 .3 C .82 .1 .65 0 .5 0 C .25 0 .15 .15 .15 .3 C .15 .5 .35 .58 .5 .58 "
                                "C .7 .58 .82 .45 .82 .3 L .8 1"),
    Variant(9, "curved-stem", "M .82 .3 C .82 .1 .65 0 .5 0 C .25 0 .15 .15 .15 .3 C .15 .5 .35 .58 .5 .58 "
                              "C .7 .58 .82 .45 .82 .3 C .86 .7 .7 1 .3 .98"),
    Variant(9, "circle-and-line", ellipse(0.48, 0.28, 0.32, 0.28) + " M .8 .16 L .76 1", heldout=True),
]


def parse(path: str) -> list[list[tuple[str, np.ndarray]]]:
    """'M x y L x y C x1 y1 x2 y2 x y ...' -> strokes, each a list of (command, points (k, 2)); 'M' opens a stroke."""
    tokens = path.replace(",", " ").split()
    strokes: list[list[tuple[str, np.ndarray]]] = []
    sizes = {"M": 1, "L": 1, "C": 3}
    i = 0
    while i < len(tokens):
        cmd = tokens[i]
        k = sizes[cmd]
        points = np.array(tokens[i + 1:i + 1 + 2 * k], dtype=np.float64).reshape(k, 2)
        if cmd == "M":
            strokes.append([])
        strokes[-1].append((cmd, points))
        i += 1 + 2 * k
    return strokes


def _flatten(stroke: list[tuple[str, np.ndarray]], steps: int = 16) -> np.ndarray:
    """One stroke's segments sampled into a polyline (n, 2)."""
    out = [stroke[0][1][0]]
    for cmd, pts in stroke[1:]:
        p0 = out[-1]
        if cmd == "L":
            out.append(pts[0])
        else:  # cubic Bezier from the current point
            t = np.linspace(0, 1, steps + 1)[1:, None]  # (steps, 1)
            curve = ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * pts[0] + 3 * (1 - t) * t ** 2 * pts[1] + t ** 3 * pts[2]
            out.extend(curve)
    return np.array(out)


def jittered_polylines(variant: Variant, rng: np.random.Generator, jitter: float = 0.025,
                       slant: float = 0.25, max_rotation_deg: float = 15.0) -> list[np.ndarray]:
    """The variant's strokes as polylines (n, 2) after control-point jitter, random width/slant and rotation."""
    strokes = parse(variant.path)
    polylines = []
    for stroke in strokes:
        # each control point moves on its own: a hand never repeats a shape exactly
        moved = [(cmd, pts + rng.normal(0, jitter, pts.shape)) for cmd, pts in stroke]
        polylines.append(_flatten(moved))
    width = rng.uniform(0.6, 1.1)                      # narrow to round hands
    shear = rng.uniform(-slant, slant)                 # forward or backward slant
    angle = math.radians(rng.uniform(-max_rotation_deg, max_rotation_deg))
    cos, sin = math.cos(angle), math.sin(angle)
    affine = np.array([[cos, -sin], [sin, cos]]) @ np.array([[width, -shear], [0.0, 1.0]])  # (2, 2), y down
    return [(p - 0.5) @ affine.T for p in polylines]


def draw_polylines(polylines: list[np.ndarray], pen: float, height: int = 128, supersample: int = 2) -> np.ndarray:
    """Ink mask (h, w) float in [0, 1], the digit `height` px tall, pen `pen` x height wide, round joints and ends."""
    points = np.concatenate(polylines)
    lo, hi = points.min(0), points.max(0)
    scale = height * supersample / max(hi[1] - lo[1], 1e-6)
    radius = max(pen * height * supersample / 2, 0.5)
    pad = int(math.ceil(radius)) + 2
    size = np.ceil((hi - lo) * scale).astype(int) + 2 * pad  # (w, h)
    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(2 * radius))
    for line in polylines:
        xy = [(float(x), float(y)) for x, y in (line - lo) * scale + pad]
        draw.line(xy, fill=255, width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):                  # round pen ends
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    if supersample > 1:
        canvas = canvas.reduce(supersample)            # box filter: anti-aliased edges
    return np.asarray(canvas, dtype=np.float32) / 255.0


TRAIN_PEN = (0.04, 0.16)  # pen width as a share of digit height for training digits (mouse pads, felt pens)


def training_digits(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n pen digits from the non-held-out hands, after the shared preprocessing: uint8 (n, 28, 28), int64 (n,).

    Labels run 0-9 in turn (balanced); every image has its own generator (seed, i), so the set is reproducible.
    """
    from core.preprocess import preprocess  # late: preprocess is not needed to draw

    by_digit = [[v for v in VARIANTS if v.digit == d and not v.heldout] for d in range(10)]
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i in range(n):
        rng = np.random.default_rng([0x5EED, seed, i])
        variants = by_digit[i % 10]
        polylines = jittered_polylines(variants[rng.integers(len(variants))], rng)
        mask = draw_polylines(polylines, rng.uniform(*TRAIN_PEN), height=int(rng.integers(40, 160)))
        images[i] = torch.from_numpy(preprocess(mask, route="drawing").image28)  # a drawing by construction
    return images, torch.arange(n) % 10
