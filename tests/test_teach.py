""""Teach me" mode's choice of the next digit: it asks most for what the model misreads or has too few of."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from core.teach import FLOOR, TARGET, digit_weights, next_digit

FULL = [TARGET] * 10
SURE = [0.99] * 10


def asked(counts, probabilities, n=4000, seed=0) -> Counter:
    rng = random.Random(seed)
    return Counter(next_digit(counts, probabilities, rng) for _ in range(n))


def test_a_digit_the_model_doubts_is_asked_far_more_often():
    probabilities = list(SURE)
    probabilities[4] = 0.2  # your 4s are read as something else
    times = asked(FULL, probabilities)
    assert times[4] > 0.5 * sum(times.values())
    assert times[4] > 8 * max(times[d] for d in range(10) if d != 4)


def test_a_digit_with_few_samples_is_asked_more_than_a_complete_one():
    counts = list(FULL)
    counts[7] = 0
    times = asked(counts, SURE)
    assert times[7] > 8 * max(times[d] for d in range(10) if d != 7)


def test_unknown_digits_count_as_doubtful_and_all_digits_still_come_up():
    probabilities = [None] + [0.999] * 9  # no samples of 0 predicted yet
    weights = digit_weights(FULL, probabilities)
    assert weights[0] == pytest.approx(1 + FLOOR) and weights[1] == pytest.approx(0.001 + FLOOR)
    times = asked(FULL, SURE, n=3000)
    assert set(times) == set(range(10))  # the floor keeps every digit in the rotation
    assert max(times.values()) < 2 * min(times.values())  # all equal: roughly uniform


def test_never_the_same_digit_twice_in_a_row():
    rng = random.Random(1)
    probabilities = [0.99] * 9 + [0.0]  # 9 is by far the most wanted
    previous = None
    for _ in range(300):
        digit = next_digit(FULL, probabilities, rng, previous)
        assert digit != previous
        previous = digit


def test_same_seed_same_questions_and_the_global_random_state_is_untouched():
    random.seed(123)
    state = random.getstate()
    first = [next_digit([3] * 10, [0.5] * 10, random.Random(7)) for _ in range(20)]
    again = [next_digit([3] * 10, [0.5] * 10, random.Random(7)) for _ in range(20)]
    assert first == again
    assert random.getstate() == state


def test_wrong_lengths_are_refused():
    with pytest.raises(ValueError):
        digit_weights([1, 2, 3], [0.5] * 10)
