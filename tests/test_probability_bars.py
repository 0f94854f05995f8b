"""ProbabilityBars tells observers (benchmarks, tests) through public signals when a prediction is set and on screen."""
from __future__ import annotations

import numpy as np

from gui.probability_bars import ProbabilityBars


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
