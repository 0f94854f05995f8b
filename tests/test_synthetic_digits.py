"""Synthetic training digits: pen-drawn hands plus handwriting fonts of the training split, never held-out fonts."""
from __future__ import annotations

import pytest
import torch

from bench import ood_sets
from core import pen_digits
from core.settings import TrainingError, TrainSettings
from core.synthetic_digits import training_digits


def test_without_a_font_share_the_synthetic_digits_are_the_pen_digits():
    images, labels = training_digits(30, seed=3)
    pen_images, pen_labels = pen_digits.training_digits(30, seed=3)
    assert torch.equal(images, pen_images) and torch.equal(labels, pen_labels)


@pytest.mark.skipif(not ood_sets.find_fonts(heldout=False)[0], reason="no training font installed here")
def test_half_typed_in_training_fonts_balanced_and_unlike_the_pen_digits():
    images, labels = training_digits(40, seed=0, font_share=0.5)
    pen_images, _ = pen_digits.training_digits(20, seed=0)
    assert images.shape == (40, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images[:20], pen_images)
    typed = images[20:]
    assert sorted(labels[20:].tolist()) == sorted(list(range(10)) * 2)  # 0-9 in turn
    assert all(img.float().mean() > 5 for img in typed)  # every typed digit has ink
    assert not any(torch.equal(t, p) for t in typed for p in pen_images)


def test_training_fonts_never_include_a_held_out_font():
    held_out = {f.file for f in ood_sets.FONTS if f.heldout}
    from bench.weak_spots import WEAK_SPOTS

    held_out |= {name for spot in WEAK_SPOTS for name in spot.heldout_fonts}
    training = {p.name for p in ood_sets.find_fonts(heldout=False)[0]}
    assert not training & held_out
    assert not {f.file for f in ood_sets.FONTS if not f.heldout} & held_out


def test_with_no_font_installed_it_says_which_packages_and_draws_them_all(monkeypatch):
    missing = [f for f in ood_sets.FONTS if not f.heldout]
    monkeypatch.setattr(ood_sets, "find_fonts", lambda heldout: ([], missing))
    with pytest.warns(UserWarning, match="apt-get install -y .*fonts-kristi"):
        images, labels = training_digits(20, seed=1, font_share=0.5)
    assert torch.equal(images, pen_digits.training_digits(20, seed=1)[0])


def test_a_font_share_outside_zero_to_one_is_refused_by_name():
    with pytest.raises(TrainingError, match="typed in fonts"):
        TrainSettings(synthetic_font_share=1.5).validate()
