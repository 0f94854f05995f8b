"""Synthetic writers whose digits the shipped weights misread: each a consistent hand, drawn like the app's pad saves them.

Never MNIST. Every writer keeps its own traits (pen width, slant, size) across all its samples, like a person does;
each sample is the writer's shape for that digit with its own small jitter, drawn with a round pen as dark ink on a
white 280x280 pad, anywhere on it. The samples the fine-tune sees ("tune") and the ones it is judged on ("heldout")
come from separate seed streams, so no held-out image is ever tuned on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.pen_digits import VARIANTS, Variant, jittered_polylines

PAD_PX = 280                # the drawing pad's side
STREAMS = {"tune": 11, "heldout": 12}


def seven_segment(digit: int) -> str:
    """A seven-segment digit as pen strokes in a 0.6 x 1 box: each lit segment one line, corners touching."""
    left, right, top, middle, bottom = 0.2, 0.8, 0.0, 0.5, 1.0
    segments = {"a": (left, top, right, top), "b": (right, top, right, middle), "c": (right, middle, right, bottom),
                "d": (left, bottom, right, bottom), "e": (left, middle, left, bottom), "f": (left, top, left, middle),
                "g": (left, middle, right, middle)}
    lit = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"][digit]
    return " ".join("M {} {} L {} {}".format(*segments[s]) for s in lit)


def _plain_hand(digit: int) -> str:
    """The first ordinary (tune-split) pen hand of core.pen_digits for this digit."""
    return next(v.path for v in VARIANTS if v.digit == digit and not v.heldout)


@dataclass(frozen=True)
class Writer:
    """A synthetic person: a path per digit, how they hold the pen, and what is unusual about their hand."""

    name: str
    description: str
    path: Callable[[int], str]            # the writer's shape of each digit (core.pen_digits path syntax)
    seed: int                             # the writer's own traits
    pen: float = 0.08                     # pen width as a share of the digit's height
    outline: float = 0.0                  # > 0: hollow "bubble" strokes, this thick (share of height)
    mirrored: tuple[int, ...] = ()        # digits this writer writes back to front


WRITERS = {
    "seven-segment": Writer("seven-segment", "digits written as seven-segment displays, one pen line per segment",
                            seven_segment, seed=1, pen=0.07),
    "bubble": Writer("bubble", "hollow 'bubble' digits: each stroke drawn as its outline", _plain_hand, seed=2,
                     pen=0.22, outline=0.035),
    "mirror": Writer("mirror", "a child's reversals: 3, 4, 6, 7 and 9 written back to front", _plain_hand, seed=3,
                     mirrored=(3, 4, 6, 7, 9)),
}


def _resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` along a polyline (n, 2)."""
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    at = np.arange(0.0, cumulative[-1] + 1e-9, spacing)
    return np.stack([np.interp(at, cumulative, points[:, 0]), np.interp(at, cumulative, points[:, 1])], axis=1)


def _stroke_mask(polylines: list[np.ndarray], pen_px: float, hollow_px: float, size: tuple[int, int]) -> np.ndarray:
    """Ink (h, w) in [0, 1] of polylines already in pixel coordinates, 2x supersampled; hollow strokes if asked."""
    def draw(radius: float) -> np.ndarray:
        canvas = Image.new("L", (2 * size[0], 2 * size[1]), 0)
        pen = ImageDraw.Draw(canvas)
        r = 2 * radius
        for line in polylines:
            for x, y in _resample(2 * line, max(r / 3, 0.5)):  # overlapping round dabs: a round nib
                pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
        return np.asarray(canvas.reduce(2), dtype=np.float32) / 255.0

    ink = draw(pen_px)
    if hollow_px > 0:
        ink = np.clip(ink - draw(max(pen_px - 2 * hollow_px, 0.5)), 0.0, 1.0)
    return ink


def draw_sample(writer: Writer, digit: int, rng: np.random.Generator) -> np.ndarray:
    """One sample as the pad saves it: (280, 280) uint8, dark ink on white paper."""
    traits = np.random.default_rng([writer.seed, 0xC0FFEE])
    slant, width = traits.uniform(-0.15, 0.15), traits.uniform(0.75, 1.0)  # the writer's, the same every time
    variant = Variant(digit, writer.name, writer.path(digit))
    polylines = jittered_polylines(variant, rng, jitter=0.02, slant=0.08, max_rotation_deg=6.0)
    affine = np.array([[width, -slant], [0.0, 1.0]])
    polylines = [p @ affine.T for p in polylines]
    if digit in writer.mirrored:
        polylines = [p * np.array([-1.0, 1.0]) for p in polylines]
    points = np.concatenate(polylines)
    lo, hi = points.min(0), points.max(0)
    height = rng.uniform(0.45, 0.8) * PAD_PX                          # px: the digit's height on the pad
    pen_px = writer.pen * height * rng.uniform(0.9, 1.1) / 2          # radius
    scale = height / max(hi[1] - lo[1], 1e-6)
    extent = (hi - lo) * scale + 2 * pen_px                           # (w, h) of the ink
    margin = np.maximum(PAD_PX - extent, 0)
    offset = rng.uniform(0, 1, 2) * margin + pen_px                   # anywhere on the pad
    placed = [(p - lo) * scale + offset for p in polylines]
    ink = _stroke_mask(placed, pen_px, writer.outline * height / 2 if writer.outline else 0.0, (PAD_PX, PAD_PX))
    paper, pen_grey = 255.0, rng.uniform(0, 40)
    return np.round(paper + (pen_grey - paper) * ink).astype(np.uint8)


def writer_samples(writer: Writer, per_digit: int, stream: str, seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """`per_digit` samples of each digit, 0-9 in turn; image i depends only on (stream, writer, seed, i)."""
    images, labels = [], []
    for i in range(10 * per_digit):
        rng = np.random.default_rng([STREAMS[stream], writer.seed, seed, i])
        images.append(draw_sample(writer, i % 10, rng))
        labels.append(i % 10)
    return images, labels


def write_image_folder(images: list[np.ndarray], labels: list[int], folder: Path) -> Path:
    """Save samples in ImageFolder layout (<folder>/<digit>/<i>.png), as the app's samples folder holds them."""
    for i, (image, label) in enumerate(zip(images, labels)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(folder / str(label) / f"{i:05d}.png")
    return folder
