"""Synthetic training digits next to MNIST's scans: pen-drawn hands (core.pen_digits) and handwriting fonts.

The fonts are the training split of bench/ood_sets.py (FONTS with heldout=False), rendered from its "train" seed
stream, so no benchmark image and no held-out font is ever trained on. Fonts that are not installed are skipped;
with none installed every synthetic digit is pen-drawn (and a warning says which packages would add them)."""
from __future__ import annotations

import warnings

import torch

from core import pen_digits
from core.preprocess import preprocess


def training_digits(n: int, seed: int = 0, font_share: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """n digits after the shared preprocessing: uint8 (n, 28, 28) ink high and int64 labels (n,), balanced 0-9;
    round(n * font_share) of them typed in the training fonts, the rest pen-drawn."""
    n_fonts = round(n * font_share)
    if n_fonts == 0:
        return pen_digits.training_digits(n, seed)
    from bench.ood_sets import find_fonts, font_digits, install_hint  # the font split lives with the benchmarks

    fonts, missing = find_fonts(heldout=False)
    if not fonts:
        warnings.warn(f"no training font is installed ({install_hint(missing)}): all {n} synthetic digits are "
                      "pen-drawn", stacklevel=2)
        return pen_digits.training_digits(n, seed)
    pen_images, pen_labels = pen_digits.training_digits(n - n_fonts, seed)
    typed = font_digits("train", fonts, n_fonts, "train", seed)  # labels 0-9 in turn, any size, either polarity
    images = torch.zeros(n_fonts, 28, 28, dtype=torch.uint8)
    for i, page in enumerate(typed.images):
        prepared = preprocess(page, route="drawing")  # flat paper by construction
        if not prepared.empty:  # a glyph too thin to survive framing stays blank and is dropped below
            images[i] = torch.from_numpy(prepared.image28)
    kept = (images.flatten(1) > 0).any(1)  # (n_fonts,) bool
    labels = torch.tensor(typed.labels, dtype=torch.long)
    return torch.cat([pen_images, images[kept]]), torch.cat([pen_labels, labels[kept]])
