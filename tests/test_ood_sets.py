"""The out-of-distribution digit generators (bench/ood_sets.py): seeded, varied, balanced, split, recognizable."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bench.ood_sets import (FONTS, HELDOUT_PEN, TUNE_PEN, font_digits, find_fonts, optdigits, stroke_digits,
                            pen_and_font_training_digits)
from core.pen_digits import VARIANTS
from core import paths

TUNE_VARIANTS = [v for v in VARIANTS if not v.heldout]


def _paper_is_light(image: np.ndarray) -> bool:
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return float(np.median(border)) > 127


def _ink_share(image: np.ndarray) -> float:
    """The ink's bounding-box longer side as a share of the canvas's shorter side."""
    ink = np.abs(image.astype(np.int16) - np.median(image)) > 64
    rows, cols = np.nonzero(ink)
    return max(np.ptp(rows) + 1, np.ptp(cols) + 1) / min(image.shape)


def test_stroke_digits_are_deterministic_for_a_seed():
    a = stroke_digits("a", TUNE_VARIANTS, 20, "tune", seed=3)
    b = stroke_digits("b", TUNE_VARIANTS, 20, "tune", seed=3)
    c = stroke_digits("c", TUNE_VARIANTS, 20, "tune", seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a.images, c.images))


def test_stroke_digits_vary_polarity_size_and_canvas_with_balanced_labels():
    digits = stroke_digits("s", TUNE_VARIANTS, 200, "tune", seed=0)
    assert Counter(digits.labels) == {d: 20 for d in range(10)}
    light = [_paper_is_light(img) for img in digits.images]
    assert 0.3 < np.mean(light) < 0.7                        # both black on white and white on black
    sides = [min(img.shape) for img in digits.images]
    assert min(sides) < 100 and max(sides) > 300             # thumbnails to large pads
    shares = [_ink_share(img) for img in digits.images]
    assert min(shares) < 0.4 and max(shares) > 0.8           # small and large digits
    assert len(set(digits.sources)) >= 15                    # many of the 20 tune variants appear


def test_training_digits_are_preprocessed_balanced_and_never_held_out():
    images, labels = pen_and_font_training_digits(40, seed=1, kinds=("strokes",))
    assert images.shape == (40, 28, 28) and str(images.dtype) == "torch.uint8"
    assert Counter(labels.tolist()) == {d: 4 for d in range(10)}
    assert int(images.flatten(1).amax(1).min()) > 128        # every one has ink after preprocessing
    again, _ = pen_and_font_training_digits(40, seed=1, kinds=("strokes",))
    assert bool((images == again).all())
    assert not any(v.heldout for v in TUNE_VARIANTS)
    held = {f"{v.digit}:{v.name}" for v in VARIANTS if v.heldout}
    assert len(held) == 10                                   # one held-out hand per digit
    assert held.isdisjoint(stroke_digits("t", TUNE_VARIANTS, 100, "train", seed=1).sources)
    assert TUNE_PEN[0] > HELDOUT_PEN[0] and TUNE_PEN[1] < HELDOUT_PEN[1]


def test_font_split_is_disjoint_and_font_digits_render():
    tune = {f.file for f in FONTS if not f.heldout}
    assert tune.isdisjoint({f.file for f in FONTS if f.heldout})
    fonts, _missing = find_fonts(heldout=False)
    if not fonts:
        pytest.skip("no tune font installed (see bench/README.md for the apt command)")
    a = font_digits("f", fonts, 20, "tune", seed=0)
    b = font_digits("f", fonts, 20, "tune", seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert Counter(a.labels) == {d: 2 for d in range(10)}
    images, labels = pen_and_font_training_digits(20, seed=0)                  # ten strokes, then ten font digits
    assert images.shape == (20, 28, 28) and int(images.flatten(1).amax(1).min()) > 128
    assert Counter(labels.tolist()) == {d: 2 for d in range(10)}


def test_optdigits_when_scikit_learn_is_installed():
    digits = optdigits(seed=0, n=20)
    if isinstance(digits, str):
        pytest.skip(digits)
    assert len(digits.images) == 20 and set(digits.labels) == set(range(10))
    assert {_paper_is_light(img) for img in digits.images} == {True, False}


def test_trained_model_reads_stroke_digits_well_above_chance():
    if not paths.DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"no trained weights at {paths.DEFAULT_WEIGHTS}")
    from core.predict import Predictor

    digits = stroke_digits("s", TUNE_VARIANTS, 100, "tune", seed=0)
    predicted = [p.digit for p in Predictor.from_file(paths.DEFAULT_WEIGHTS).predict_many(digits.images)]
    accuracy = np.mean([p == y for p, y in zip(predicted, digits.labels)])
    assert accuracy > 0.5, f"{accuracy:.0%} on stroke digits (chance is 10%)"


def test_every_installed_font_draws_real_digits_not_missing_glyph_boxes():
    from PIL import ImageFont

    fonts = find_fonts(False)[0] + find_fonts(True)[0]
    if not fonts:
        pytest.skip("no font of the list is installed (see bench/README.md for the apt command)")
    boxes = []
    for path in fonts:
        face = ImageFont.truetype(str(path), 48)
        missing = np.asarray(face.getmask("\uffff"))  # the font's own "no such glyph" box
        for digit in "0123456789":
            glyph = np.asarray(face.getmask(digit))
            if glyph.size == 0 or glyph.max() == 0 or (glyph.shape == missing.shape and np.array_equal(glyph, missing)):
                boxes.append(f"{path.name}:{digit}")
    assert not boxes, f"fonts that draw no real digit: {boxes}"


def test_the_weak_spot_benchmarks_held_out_fonts_never_train_the_gate_or_the_classifier():
    from bench.weak_spots import WEAK_SPOTS

    tune = {f.file for f in FONTS if not f.heldout}
    never = {name for spot in WEAK_SPOTS for name in spot.heldout_fonts}
    assert never and tune.isdisjoint(never)
    assert all(f.package.startswith("fonts-") for f in FONTS)  # the install hint names real packages
