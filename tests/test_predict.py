"""The predictor: probabilities, batching, blank input and what the shipped default weights recognize."""
import numpy as np
import pytest
import torch

from core.models import build_model
from core.paths import DEFAULT_WEIGHTS
from core.predict import Predictor
from core.settings import PRESETS
from core.weights import LoadedWeights, load_default_weights
from tests.test_preprocess import SEVEN, draw

# Pen paths of a few digits in a unit box, as people draw them with a mouse.
STROKES = {
    1: [(0.5, 0.05), (0.5, 0.95)],
    7: SEVEN,
    4: [(0.6, 0.95), (0.6, 0.05), (0.1, 0.65), (0.85, 0.65)],
    0: [(0.5, 0.05), (0.8, 0.2), (0.9, 0.5), (0.8, 0.8), (0.5, 0.95), (0.2, 0.8), (0.1, 0.5), (0.2, 0.2), (0.5, 0.05)],
}


@pytest.fixture
def untrained_predictor():
    torch.manual_seed(0)
    return Predictor(LoadedWeights(build_model("tutorial").eval(), "tutorial", {}, (0.0, 1.0)))


def test_probabilities_sum_to_one_and_batching_matches_single_calls(untrained_predictor):
    images = [draw(SEVEN), draw(STROKES[1]), draw(STROKES[0], ink=255, paper=0)]
    batched = untrained_predictor.predict_many(images)
    for image, result in zip(images, batched):
        single = untrained_predictor.predict(image)
        assert len(result.probabilities) == 10 and abs(sum(result.probabilities) - 1) < 1e-5
        assert np.allclose(single.probabilities, result.probabilities, atol=1e-6)
        assert result.digit == int(np.argmax(result.probabilities)) and result.image28.shape == (28, 28)


def test_blank_input_is_never_guessed(untrained_predictor):
    results = untrained_predictor.predict_many([np.full((280, 280), 255, np.uint8), draw(SEVEN)])
    assert results[0].digit is None and results[0].probabilities is None and results[0].empty
    assert results[1].digit is not None


def test_default_weights_ship_and_describe_themselves():
    assert DEFAULT_WEIGHTS.is_file(), "resources/default_weights.pt must ship with the app"
    weights = load_default_weights()
    # the best recipe continued from the previous default weights for 5 epochs at a lower rate (README)
    best = PRESETS["best"]
    assert weights.arch == "digitnet" and weights.settings["preset"] == "custom"
    assert {k: weights.settings[k] for k in ("synthetic_digits", "synthetic_font_share", "augment", "optimizer")} == \
        {"synthetic_digits": best.synthetic_digits, "synthetic_font_share": best.synthetic_font_share,
         "augment": True, "optimizer": best.optimizer}
    assert "previous default weights" in weights.settings["init_weights"]
    assert weights.test_accuracy >= 0.996


@pytest.mark.parametrize("digit", sorted(STROKES))
@pytest.mark.parametrize("style", ["black on white", "white on black", "small in a corner", "fat pen"])
def test_default_weights_read_drawn_digits(digit, style):
    kwargs = {"black on white": {}, "white on black": {"ink": 255, "paper": 0},
              "small in a corner": {"size": (400, 400), "box": (320, 300, 360, 370), "width": 5},
              "fat pen": {"width": 26}}[style]
    prediction = Predictor(load_default_weights()).predict(draw(STROKES[digit], **kwargs))
    assert prediction.digit == digit, f"{style} {digit} read as {prediction.digit}: {np.round(prediction.probabilities, 2)}"
