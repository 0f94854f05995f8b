"""Temperature scaling: the fit finds the temperature, lowers the calibration error on held-out data, is stored in the
weights file (bounded on load) and used by the predictor."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    logits_of,
    temperature_of,
    write_with_temperature,
)
from core.models import build_model
from core.predict import Predictor
from core.weights import WeightsError, load_default_weights, load_weights, save_weights
from tests.conftest import requires_real_mnist


def overconfident_logits(n: int, true_temperature: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (n, 10) whose labels are drawn from softmax(logits / true_temperature): a model that is too sure
    (true_temperature > 1) or too timid (< 1), with a known answer."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 10, generator=generator) * 3
    labels = torch.multinomial(torch.softmax(logits / true_temperature, 1), 1, generator=generator).flatten()
    return logits, labels


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_the_fit_finds_the_temperature_and_lowers_the_error_on_held_out_data(true_temperature):
    fit_logits, fit_labels = overconfident_logits(4000, true_temperature, seed=1)
    check_logits, check_labels = overconfident_logits(4000, true_temperature, seed=2)
    report = calibrate(fit_logits, fit_labels, check_logits, check_labels)
    assert report.temperature == pytest.approx(true_temperature, rel=0.1)
    assert report.ece_before > 0.05 and report.ece_after < 0.03 and report.ece_after < report.ece_before / 2
    assert report.nll_after < report.nll_before


def test_the_error_is_zero_for_honest_confidences_and_the_gap_for_dishonest_ones():
    labels = torch.tensor([0, 0, 0, 1])  # the first three right, the last wrong at 75% confidence: honest
    probabilities = torch.tensor([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0)
    assert expected_calibration_error(torch.tensor([[0.95, 0.05]] * 4), labels) == pytest.approx(0.20)


def test_a_well_calibrated_model_keeps_a_temperature_near_one():
    logits, labels = overconfident_logits(4000, 1.0, seed=3)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.1)


def tutorial_file(tmp_path: Path) -> Path:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("tutorial")
    return save_weights(tmp_path / "w.pt", model, "tutorial", {}, (0.0, 1.0), {"val_fraction": 0.1, "seed": 0})


def test_the_temperature_is_stored_beside_unchanged_tensors_and_sharpens_the_predictor(tmp_path):
    source = tutorial_file(tmp_path)
    logits, labels = overconfident_logits(500, 0.5, seed=4)
    write_with_temperature(source, tmp_path / "calibrated.pt", calibrate(logits, labels, logits, labels))
    before, after = load_weights(source), load_weights(tmp_path / "calibrated.pt")
    assert temperature_of(before.metrics) == 1.0 and temperature_of(after.metrics) == pytest.approx(0.5, rel=0.15)
    for key, tensor in before.model.state_dict().items():
        assert torch.equal(tensor, after.model.state_dict()[key])
    batch = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    raw, calibrated = Predictor(before).probabilities(batch), Predictor(after).probabilities(batch)
    assert torch.equal(raw.argmax(1), calibrated.argmax(1))  # the answer stays, only the confidence moves
    assert bool((calibrated.max(1).values > raw.max(1).values).all())


def test_the_default_weights_are_never_overwritten_by_a_calibration(tmp_path):
    from core import paths

    logits, labels = overconfident_logits(100, 1.0, seed=6)
    with pytest.raises(WeightsError, match="never overwritten"):
        write_with_temperature(tutorial_file(tmp_path), paths.DEFAULT_WEIGHTS,
                               calibrate(logits, labels, logits, labels))


@pytest.mark.parametrize("temperature", [0.0, -1.0, 1e9, "2", True])
def test_an_out_of_range_temperature_is_refused_in_one_sentence(tmp_path, temperature):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("tutorial")
    path = save_weights(tmp_path / "bad.pt", model, "tutorial", {}, (0.0, 1.0), metrics={"temperature": temperature})
    with pytest.raises(WeightsError, match="temperature must be a number from 0.05 to 20"):
        load_weights(path)


@requires_real_mnist
def test_the_shipped_temperature_lowers_the_calibration_error_on_mnist_test_digits(real_mnist_dir):
    from core.data import load_mnist

    weights = load_default_weights()
    assert 0.2 < temperature_of(weights.metrics) < 1.0  # label smoothing made the raw softmax timid
    test = load_mnist(real_mnist_dir, download=False)
    images, labels = test.test_images[:2000], test.test_labels[:2000]  # never seen in training or in the fit
    logits = logits_of(weights.model, images, weights.normalization)
    raw = torch.softmax(logits, 1)
    calibrated = torch.softmax(logits / temperature_of(weights.metrics), 1)
    assert float((raw.argmax(1) == labels).float().mean()) >= 0.995  # the same tensors: accuracy unchanged
    assert expected_calibration_error(calibrated, labels) < 0.01 < expected_calibration_error(raw, labels)


def test_training_with_a_validation_split_stores_a_temperature_that_fits_it(tiny_settings):
    from dataclasses import replace

    from core.calibration import logits_of, negative_log_likelihood
    from core.data import load_mnist
    from core.training import train

    result = train(replace(tiny_settings, epochs=1))
    assert result.temperature is not None and result.metrics["temperature"] == round(result.temperature, 4)
    data = load_mnist(tiny_settings.data_dir, tiny_settings.val_fraction, tiny_settings.seed, download=False)
    with torch.no_grad():
        logits = logits_of(result.model, data.val_images, result.normalization)
    assert negative_log_likelihood(logits, data.val_labels, result.temperature) <= \
        negative_log_likelihood(logits, data.val_labels)  # the fitted T is no worse than the raw softmax
    no_split = train(replace(tiny_settings, epochs=1, val_fraction=0.0))
    assert no_split.temperature is None and "temperature" not in no_split.metrics
