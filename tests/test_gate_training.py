"""Gate training (core/gate_training.py): low-resolution digits stay readable digits, a seeded share of the positives
gets them, and a small gate trains, separates digits from non-digits and leaves the caller's state alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.digit_gate import load_gate, save_gate
from core.gate_training import (LINE_REMNANT_SHARE, LOW_RES_SHARE, line_remnants, low_resolution, train_gate,
                                with_line_remnants, with_low_resolution)
from core.not_digits import KINDS, frame, make_page, pen_digit_mask
from core.predict import Predictor
from core.preprocess import preprocess
from core.weights import load_default_weights


def pen_digits(n: int, seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    """uint8 (n, 28, 28) preprocessed pen digits of the held-out hands, labels 0-9 in turn."""
    images = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        images.append(torch.from_numpy(preprocess(frame(pen_digit_mask(i % 10, rng, heldout=True), rng)).image28))
    return torch.stack(images), [i % 10 for i in range(n)]


def detail(image28: np.ndarray) -> float:
    """Edge energy per unit of ink: high for crisp strokes, lower once fine detail is lost."""
    x = image28.astype(np.float32) / 255
    edges = np.abs(np.diff(x, axis=0)).sum() + np.abs(np.diff(x, axis=1)).sum()
    return float(edges / max(x.sum(), 1e-6))


def test_a_low_resolution_digit_loses_detail_but_is_still_read_as_that_digit():
    images, labels = pen_digits(40)
    low = np.stack([low_resolution(img.numpy(), np.random.default_rng([5, i])) for i, img in enumerate(images)])
    assert low.shape == (40, 28, 28) and low.dtype == np.uint8 and int(low.reshape(40, -1).max(1).min()) > 100
    again = low_resolution(images[3].numpy(), np.random.default_rng([5, 3]))
    assert np.array_equal(again, low[3])                                   # seeded: the same picture again
    blurrier = [detail(a) < detail(b.numpy()) for a, b in zip(low, images)]
    assert np.mean(blurrier) >= 0.8, f"only {np.mean(blurrier):.0%} lost detail"
    predictor = Predictor(load_default_weights(), gate=None)
    mean, std = predictor.weights.normalization
    batch = ((torch.from_numpy(low).float() / 255).unsqueeze(1) - mean) / std  # (40, 1, 28, 28)
    read = predictor.probabilities(batch).argmax(1).tolist()
    right = np.mean([r == d for r, d in zip(read, labels)])
    assert right >= 0.8, f"the classifier reads only {right:.0%} of the low-resolution digits right"


def test_a_seeded_share_of_the_positives_is_made_low_resolution():
    images, _ = pen_digits(30, seed=1)
    state = torch.random.get_rng_state()
    mixed = with_low_resolution(images, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)               # the caller's RNG is untouched
    changed = int((mixed != images).flatten(1).any(1).sum())
    assert changed == round(LOW_RES_SHARE * 30)
    assert torch.equal(mixed, with_low_resolution(images, seed=4))
    assert not torch.equal(mixed, with_low_resolution(images, seed=5))
    assert torch.equal(images, pen_digits(30, seed=1)[0])                  # the input is not changed in place


def test_line_remnants_add_thin_straight_grey_lines_and_keep_the_writing():
    images, _ = pen_digits(20, seed=2)
    for i, image in enumerate(images.numpy()):
        marked = line_remnants(image, np.random.default_rng([7, i]))
        assert marked.dtype == np.uint8 and (marked >= image).all()       # the digit stays, nothing is erased
        assert ((marked > image) & (image < 40)).any()                     # new grey on what was paper
    for i in range(20):  # on empty paper the whole of each line shows
        lines = line_remnants(np.zeros((28, 28), np.uint8), np.random.default_rng([8, i])) > 0
        rows, cols = np.nonzero(lines)
        # every marked pixel lies on a row or column that holds a straight run of 4 or more (a line, not a blot)
        assert min(max(int(lines[r].sum()), int(lines[:, c].sum())) for r, c in zip(rows, cols)) >= 4
        assert line_remnants(np.zeros((28, 28), np.uint8), np.random.default_rng([8, i])).max() <= round(0.7 * 255)
    assert np.array_equal(line_remnants(images[0].numpy(), np.random.default_rng([7, 0])),
                          line_remnants(images[0].numpy(), np.random.default_rng([7, 0])))


def test_a_seeded_share_of_every_kind_of_page_gets_line_remnants():
    images, _ = pen_digits(40, seed=3)
    marked = with_line_remnants(images, seed=0, salt=1)
    assert int((marked != images).flatten(1).any(1).sum()) == round(LINE_REMNANT_SHARE * 40)
    assert torch.equal(marked, with_line_remnants(images, seed=0, salt=1))
    assert not torch.equal(marked, with_line_remnants(images, seed=0, salt=0))  # digits and non-digits draw apart


def test_a_small_gate_trains_to_tell_digits_from_lines_and_dots(tmp_path):
    digits, _ = pen_digits(120, seed=2)
    others, kinds = [], []
    for kind in ("line", "dot"):
        for i in range(60):
            prepared = preprocess(make_page(kind, "train", 0, i))
            if not prepared.empty:
                others.append(torch.from_numpy(prepared.image28))
                kinds.append(KINDS.index(kind))
    images = torch.cat([digits, torch.stack(others)])
    labels = torch.cat([torch.zeros(len(digits), dtype=torch.long), torch.tensor(kinds)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: two threads on a busy 2-core machine take 50x as long
    try:
        state = torch.random.get_rng_state()
        losses: list[str] = []
        model = train_gate(images, labels, seed=0, epochs=4, width=8, batch_size=32, log=losses.append)
        assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert not model.training and len(losses) == 4
    first, last = (float(line.split("loss ")[1].split(",")[0]) for line in (losses[0], losses[-1]))
    assert last < 0.5 * first, losses
    save_gate(tmp_path / "gate.safetensors", model, 8, 0.6, {"seed": 0})
    gate = load_gate(tmp_path / "gate.safetensors")
    scores = np.array([s.not_digit for s in gate.scores(images)])
    is_digit = labels.numpy() == 0
    accuracy = np.mean((scores < 0.6) == is_digit)
    assert accuracy >= 0.9, f"the trained gate tells {accuracy:.0%} of its own training pages apart"


def test_training_photos_are_preprocessed_digits_letters_and_blank_paper(synthetic_mnist):
    from core.data import load_mnist
    from core.gate_training import training_photos

    data = load_mnist(synthetic_mnist, val_fraction=0.1, seed=0, download=False)
    counts = {"digit": 6, "letter": 3, "blank": 3}
    digits, others, kinds = training_photos(0, data.train_images, data.train_labels, counts)
    assert digits.shape == (6, 28, 28) and digits.dtype == torch.uint8
    assert int(digits.flatten(1).amax(1).min()) > 100                      # each photo's digit was found
    assert len(others) == len(kinds) and set(kinds.tolist()) <= {KINDS.index("letter"), KINDS.index("blank")}
    assert kinds.tolist().count(KINDS.index("letter")) == 3                 # every letter photo has its letter
    again = training_photos(0, data.train_images, data.train_labels, counts)
    assert torch.equal(digits, again[0]) and torch.equal(others, again[1])


def test_members_are_given_as_seed_and_epochs_and_a_bad_list_is_one_sentence(capsys):
    from core.gate_training import MEMBERS, main, parse_members

    assert parse_members("0:12,0:24,1:24") == [(0, 12), (0, 24), (1, 24)] == parse_members(MEMBERS)
    for bad in ("", "0", "0:0", "a:3", "0:12,"):
        with pytest.raises(SystemExit):
            main(["--data", "x", "--out", "y", "--members", bad])
        assert "--members: expected SEED:EPOCHS" in capsys.readouterr().err
