"""ProbabilityBars tells observers (benchmarks, tests) through public signals when a prediction is set and on screen."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from gui.probability_bars import ProbabilityBars  # noqa: E402


def test_a_prediction_is_announced_when_set_and_again_when_the_bars_have_repainted(qtbot):
    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    bars.show()
    qtbot.waitExposed(bars)
    probabilities = [0.01] * 10
    probabilities[7] = 0.91
    with qtbot.waitSignal(bars.prediction_shown, timeout=1000):
        bars.set_prediction(probabilities, np.zeros((28, 28), dtype=np.uint8))
    assert bars.top_digit() == 7 and bars.message() == "91.0% sure"  # emitted after the values are in place
    with qtbot.waitSignal(bars.bars_painted, timeout=2000):
        pass  # the repaint set_prediction asked for
    with qtbot.assertNotEmitted(bars.prediction_shown):
        bars.clear_prediction()  # a message is no prediction


def test_a_hesitation_and_a_non_digit_are_said_in_words_and_the_bars_stay(qtbot):
    from core.verdict import Verdict

    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    probabilities = [0.01] * 10
    probabilities[4], probabilities[9] = 0.5, 0.42
    image = np.zeros((28, 28), dtype=np.uint8)
    bars.set_prediction(probabilities, image, Verdict("unsure", [4, 9], None, 0.03))
    assert bars.verdict() == "unsure" and bars.message() == "Not sure: 4 or 9?"
    assert bars.probabilities() == probabilities and bars.top_digit() == 4  # the bars are still there
    bars.set_prediction(probabilities, image, Verdict("not_a_digit", [4], "a letter or symbol", 0.97,
                                                      ["draw bigger: the digit fills only a small part of the picture"]))
    assert bars.verdict() == "not_a_digit" and bars.probabilities() == probabilities
    assert bars.message() == ("Not a digit? It looks like a letter or symbol.\n"
                              "Draw bigger: the digit fills only a small part of the picture.")
    probabilities[4], probabilities[9] = 0.9, 0.02
    bars.set_prediction(probabilities, image, Verdict("digit", [4], None, 0.01))
    assert bars.verdict() == "digit" and bars.message() == "90.0% sure"
    bars.clear_prediction()
    assert bars.verdict() is None
