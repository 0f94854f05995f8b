""""Teach me" mode: which digit to ask for next, favouring those the model misreads or doubts in your samples."""
from __future__ import annotations

import random
from typing import Sequence

TARGET = 10     # samples per digit the progress row aims for (the "ten of each")
FLOOR = 0.05    # every digit keeps a little weight, so a well-learned one still comes up now and then


def digit_weights(counts: Sequence[int], mean_true_probability: Sequence[float | None],
                  target: int = TARGET) -> list[float]:
    """How much a new sample of each digit would help: doubt + shortfall + FLOOR.

    doubt = 1 - the mean probability the model gives the true digit over that digit's samples (1 when unknown:
    no samples yet, or not predicted yet); shortfall = the share of `target` still missing (0 once reached).
    """
    if len(counts) != 10 or len(mean_true_probability) != 10:
        raise ValueError("need a count and a mean probability for each of the 10 digits")
    weights = []
    for count, probability in zip(counts, mean_true_probability):
        doubt = 1.0 if probability is None else min(max(1.0 - float(probability), 0.0), 1.0)
        shortfall = max(0, target - int(count)) / target if target > 0 else 0.0
        weights.append(FLOOR + doubt + shortfall)
    return weights


def next_digit(counts: Sequence[int], mean_true_probability: Sequence[float | None], rng: random.Random,
               previous: int | None = None, target: int = TARGET) -> int:
    """Draw the digit to ask for, in proportion to digit_weights(); never `previous` twice in a row.

    `rng` is the caller's own random.Random, so the process-wide random state is left alone.
    """
    weights = digit_weights(counts, mean_true_probability, target)
    if previous is not None and 0 <= previous < 10:
        weights[previous] = 0.0  # asking for the same digit again at once feels like a glitch
    return rng.choices(range(10), weights=weights)[0]
