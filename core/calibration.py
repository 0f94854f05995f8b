"""Calibrated confidences: temperature scaling fitted on data the model never trained on, expected calibration error,
and the temperature stored in a weights file's metrics.

    python -m core.calibration --weights PATH --data DIR --out PATH [--json]

fits the temperature on the validation split the weights' own settings describe, reports the expected calibration
error (ECE) before and after on MNIST's test split, and writes a copy of the file with the temperature added."""
from __future__ import annotations

import argparse
import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from core import jsonout
from core.inference import channels_last_on_cpu

TEMPERATURE_KEY = "temperature"          # in a weights file's metrics; absent means 1.0 (the raw softmax)
TEMPERATURE_RANGE = (0.05, 20.0)         # what a weights file may hold; the fit searches inside it
ECE_BINS = 15                            # equal-width confidence bins, as in Guo et al. (2017)


@dataclass
class CalibrationReport:
    """A fitted temperature and what it does: ECE and negative log-likelihood before (T = 1) and after."""

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    fitted_on: int      # images the temperature was fitted on
    checked_on: int     # held-out images the ECE and NLL were measured on


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Sum over confidence bins of |accuracy - mean confidence| x the bin's share of inputs; probabilities (N, C)."""
    confidence, predicted = probabilities.max(1)
    right = (predicted == labels).float()
    which = (confidence * bins).long().clamp(max=bins - 1)  # (N,) bin of each input
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += float(members.float().mean()) * abs(float(right[members].mean() - confidence[members].mean()))
    return error


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    return float(torch.nn.functional.cross_entropy(logits.double() / temperature, labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T in TEMPERATURE_RANGE minimizing the NLL of softmax(logits / T): a log-spaced grid, then golden-section
    search around its best point (the NLL is smooth and unimodal in log T; no optimizer state, no randomness)."""
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    grid = [low + (high - low) * i / 80 for i in range(81)]
    best = min(range(len(grid)), key=lambda i: negative_log_likelihood(logits, labels, math.exp(grid[i])))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if negative_log_likelihood(logits, labels, math.exp(c)) < negative_log_likelihood(logits, labels, math.exp(d)):
            b = d
        else:
            a = c
    return math.exp((a + b) / 2)


def calibrate(fit_logits: torch.Tensor, fit_labels: torch.Tensor, check_logits: torch.Tensor,
              check_labels: torch.Tensor) -> CalibrationReport:
    """Fit T on one set of logits (N, C); measure ECE and NLL before and after on another, held-out one."""
    t = fit_temperature(fit_logits, fit_labels)
    return CalibrationReport(
        t, expected_calibration_error(torch.softmax(check_logits.double(), 1), check_labels),
        expected_calibration_error(torch.softmax(check_logits.double() / t, 1), check_labels),
        negative_log_likelihood(check_logits, check_labels), negative_log_likelihood(check_logits, check_labels, t),
        len(fit_labels), len(check_labels))


def temperature_of(metrics: dict) -> float:
    """A weights file's temperature (checked on load by core.weights_checks), 1.0 when it has none."""
    value = metrics.get(TEMPERATURE_KEY)
    return 1.0 if value is None else float(value)


@torch.no_grad()
def logits_of(model: torch.nn.Module, images: torch.Tensor, normalization: tuple[float, float],
              batch_size: int = 250) -> torch.Tensor:
    """uint8 (N, 28, 28) -> logits (N, 10), in eval mode, from a copy (channels-last on a CPU: about twice as fast
    there); `model` itself is not touched."""
    runnable = channels_last_on_cpu(copy.deepcopy(model).eval())
    mean, std = normalization
    parts = [runnable(images[i:i + batch_size].unsqueeze(1).float().div(255.0).sub(mean).div(std))
             for i in range(0, len(images), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, 10)


def write_with_temperature(source: Path, out: Path, report: CalibrationReport) -> None:
    """A copy of `source` whose metrics also hold the temperature and its ECE figures; every tensor and every other
    field unchanged. Refuses to write onto the shipped default weights (core.weights.check_save_target)."""
    from core.atomic_files import atomic_write
    from core.weights import _serialize, check_save_target, load_weights

    load_weights(source)  # the full safe checks first
    obj = torch.load(source, map_location="cpu", weights_only=True)
    obj["metrics"] = {**obj.get("metrics", {}), TEMPERATURE_KEY: report.temperature,
                      "ece_before_calibration": report.ece_before, "ece_after_calibration": report.ece_after}
    atomic_write(_serialize(obj), check_save_target(out))


def main(argv: list[str] | None = None) -> int:
    from core.data import load_mnist
    from core.weights import load_weights

    p = argparse.ArgumentParser(description="Fit a weights file's temperature on its validation split.")
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True, help="MNIST folder")
    p.add_argument("--out", required=True, help="the calibrated copy to write")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    weights = load_weights(args.weights)
    val_fraction, seed = weights.settings.get("val_fraction", 0.1), weights.settings.get("seed", 0)
    data = load_mnist(args.data, val_fraction, seed, download=False)  # the split training held out
    report = calibrate(logits_of(weights.model, data.val_images, weights.normalization), data.val_labels,
                       logits_of(weights.model, data.test_images, weights.normalization), data.test_labels)
    write_with_temperature(Path(args.weights), Path(args.out), report)
    if args.json:
        print(jsonout.dumps(asdict(report)))
    else:
        print(f"temperature {report.temperature:.4f} fitted on {report.fitted_on:,} validation images; on "
              f"{report.checked_on:,} test images ECE {100 * report.ece_before:.2f}% -> {100 * report.ece_after:.2f}%, "
              f"NLL {report.nll_before:.4f} -> {report.nll_after:.4f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
