"""Honest numbers: rounded, valid JSON from every `--json` output; samples/s and ETA from the wall clock."""
from __future__ import annotations

import json
import math
import time

import pytest

from core import jsonout
from tests.test_cli import run_cli
from tests.test_preprocess import SEVEN, draw


def decimal_places(number: str) -> int:
    """Decimal places of a JSON number as written: "0.9745" 4, "1.4e-05" 6 (0.000014), "1.2345678e-05" 12."""
    mantissa, _, exponent = number.lower().partition("e")
    places = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return max(0, places - int(exponent or 0))


def decimals_by_key(text: str) -> dict[str, int]:
    """The most decimal places any float under each key has, read from the JSON text itself (not re-printed)."""
    most: dict[str, int] = {}

    def walk(value, key):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str) and key is not None and value[:1] in "-0123456789" and value[:1]:
            most[key] = max(most.get(key, 0), decimal_places(value))

    walk(json.loads(text, parse_float=str), None)  # floats stay as written
    return most


def test_decimal_places_count_an_exponent():
    assert [decimal_places(n) for n in ("0.9745", "1.4e-05", "1.2345678e-05", "3", "2e-06", "1.5e+02")] == \
        [4, 6, 12, 0, 6, 0]


def test_rounded_rounds_by_what_the_number_measures():
    report = {"test_accuracy": 0.9745000004768372, "probabilities": [0.12345678901, 0.87654321099],
              "train_seconds": 12.3456789, "held_out": {"before": 1 / 3, "n": 7}, "name": "x", "flag": True}
    assert jsonout.rounded(report) == {"test_accuracy": 0.9745, "probabilities": [0.123457, 0.876543],
                                       "train_seconds": 12.35, "held_out": {"before": 0.3333, "n": 7}, "name": "x",
                                       "flag": True}
    assert json.loads(jsonout.dumps(report))["test_accuracy"] == 0.9745


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_is_refused_rather_than_written_as_invalid_json(bad):
    with pytest.raises(ValueError):
        jsonout.dumps({"val_accuracy": bad})


def test_train_predict_and_evaluate_json_are_rounded(synthetic_mnist, tmp_path, capsys):
    weights = tmp_path / "tiny.pt"
    code, out, _ = run_cli(capsys, "train", "--preset", "quick", "--arch", "tutorial", "--epochs", "1",
                           "--batch-size", "20", "--data", synthetic_mnist, "--out", weights, "--json", "--quiet")
    assert code == 0
    places = decimals_by_key(out)
    assert places["test_accuracy"] <= 4 and places["train_seconds"] <= 2 and places.get("val_accuracy", 0) <= 4

    draw(SEVEN).save(tmp_path / "seven.png")
    code, out, _ = run_cli(capsys, "predict", tmp_path / "seven.png", "--weights", weights, "--json")
    assert code == 0 and 1 <= decimals_by_key(out)["probabilities"] <= 6
    assert abs(sum(json.loads(out)["probabilities"]) - 1) < 1e-4  # rounding kept them probabilities

    code, out, _ = run_cli(capsys, "evaluate", "--weights", weights, "--data", synthetic_mnist, "--json")
    places = decimals_by_key(out)
    assert code == 0 and places["test_accuracy"] <= 4 and places["per_class_accuracy"] <= 4


def test_explain_json_is_rounded(tmp_path, capsys):
    draw(SEVEN).save(tmp_path / "seven.png")
    code, _, _ = run_cli(capsys, "explain", tmp_path / "seven.png", "--out", tmp_path / "o", "--method", "gradcam")
    text = (tmp_path / "o" / "explain.json").read_text()
    assert code == 0 and 1 <= decimals_by_key(text)["probabilities"] <= 6


# ---------------------------------------------------------------- rate, ETA and running accuracy (core)
def test_samples_per_second_is_wall_time_over_samples_done_even_when_the_caller_is_slow(tiny_settings, monkeypatch):
    """A slow progress callback (a GUI repainting, holding the GIL) slows the run, and the rate must say so: the
    old figure, a mean of per-batch rates timed without the callback, read ~2x too high here."""
    from dataclasses import replace

    import core.training
    from core.training import train

    clock = [1000.0]  # training's clock, advanced by hand: deterministic, and no real waiting

    def perf_counter() -> float:
        clock[0] += 0.001  # each look at the clock stands for 1 ms of work
        return clock[0]

    monkeypatch.setattr(core.training.time, "perf_counter", perf_counter)
    reports, called = [], []

    def on_batch(progress):
        called.append(clock[0])
        reports.append(progress)
        clock[0] += 0.05  # the callback costs 50 ms a batch of 20: at most 400 samples/s

    train(replace(tiny_settings, epochs=1, val_fraction=0.0), on_batch=on_batch)
    assert [r.samples_done for r in reports] == [20 * (i + 1) for i in range(len(reports))]
    last = reports[-1]
    wall_rate = (last.samples_done - 20) / (called[-1] - called[0])  # batches 2..n over the time they took
    assert last.samples_per_second == pytest.approx(wall_rate, rel=0.2)
    # at most the samples over the time the callbacks alone took (50 ms each before the last): ~414/s
    assert last.samples_per_second < last.samples_done / (0.05 * (len(reports) - 1))
    assert reports[0].eta_seconds > 0 and last.eta_seconds == 0
    half = reports[len(reports) // 2]  # ETA from the same clock: the time so far, scaled to the batches left
    assert half.eta_seconds == pytest.approx(half.elapsed * (half.total_batches / half.batches_done - 1))


def test_running_training_accuracy_is_reported_with_each_batch_and_epoch(tiny_settings):
    from core.training import train

    batches, epochs = [], []
    train(tiny_settings, on_batch=batches.append, on_epoch=epochs.append)
    per_epoch = batches[0].batches_per_epoch
    for epoch in epochs:
        last = batches[(epoch.epoch + 1) * per_epoch - 1]
        assert last.running_accuracy == pytest.approx(epoch.train_accuracy)
    assert all(round(b.accuracy * 20) == b.accuracy * 20 for b in batches[:-1])  # k of 20 images right
    assert batches[0].accuracy < 0.5 and epochs[-1].train_accuracy > 0.9  # from guessing to learned


# ---------------------------------------------------------------- on real MNIST (skipped without it)
def test_predict_json_on_real_mnist_digits_is_rounded(real_mnist_dir, tmp_path, capsys):
    from PIL import Image

    from core.data import load_mnist

    data = load_mnist(str(real_mnist_dir), 0.0, 0, False)
    images = []
    for i in range(3):
        images.append(tmp_path / f"{i}.png")
        Image.fromarray(data.test_images[i].numpy()).save(images[-1])
    code, out, _ = run_cli(capsys, "predict", *images, "--json")  # the shipped weights
    assert code == 0 and all(1 <= decimals_by_key(line)["probabilities"] <= 6 for line in out.splitlines())
    assert [json.loads(line)["digit"] for line in out.splitlines()] == data.test_labels[:3].tolist()


def test_quick_on_real_mnist_reports_its_true_rate_and_a_rising_accuracy(real_mnist_dir):
    from core.training import preset, train

    reports, called = [], []

    def on_batch(progress):
        called.append(time.perf_counter())
        reports.append(progress)

    settings = preset("quick", data_dir=str(real_mnist_dir), device="cpu")
    result = train(settings, on_batch=on_batch, should_stop=lambda: len(reports) >= 40)
    assert result.stopped and len(reports) == 40
    # the rate's clock is the wall clock (not a sum of batch times), and the rate is all samples over all of it, so
    # it can never exceed what the wall clock allows from batch 1's end (a mean of per-batch rates read ~10x that).
    # Compared clock to clock, not rate to rate: under load the first batch alone can take a second.
    interval = called[-1] - called[0]
    assert reports[-1].elapsed - reports[0].elapsed == pytest.approx(interval, rel=0.05, abs=0.02)
    assert reports[-1].samples_per_second <= reports[-1].samples_done / interval
    assert reports[-1].eta_seconds > 0 and reports[-1].running_accuracy > reports[0].accuracy
