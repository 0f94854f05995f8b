"""Verdicts: a clear digit is a digit; a dot, a line, a letter, two digits side by side are not; a hesitation is "not
sure"; hints for small drawings and strokes off the edge; the gate file is read safely."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from core.digit_gate import (
    DEFAULT_GATE,
    GateError,
    GateScore,
    gate_net,
    load_gate,
    save_gate,
)
from core.not_digits import KINDS, pen_digit_mask
from core.predict import Predictor, default_gate
from core.verdict import judge
from core.weights import load_default_weights
from tests.conftest import requires_real_mnist
from tests.test_predict import STROKES
from tests.test_preprocess import SEVEN, draw


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(load_default_weights())


def pad(size: int = 280) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    page = Image.new("L", (size, size), 255)
    return page, ImageDraw.Draw(page)


def dot() -> Image.Image:
    page, pen = pad()
    pen.ellipse((130, 130, 150, 150), fill=0)  # one click with a round brush
    return page


def line() -> Image.Image:
    page, pen = pad()
    pen.line((40, 150, 240, 130), fill=0, width=14)
    return page


def letter(text: str) -> Image.Image:
    page, pen = pad()
    pen.text((140, 140), text, font=ImageFont.load_default(size=200), fill=0, anchor="mm")  # Pillow's own font
    return page


def pair(left: int, right: int) -> Image.Image:
    rng = np.random.default_rng(7)
    masks = [pen_digit_mask(d, rng, heldout=True) for d in (left, right)]
    height = 120
    page = np.full((200, 320), 255.0)
    x = 30
    for mask in masks:
        scaled = np.asarray(Image.fromarray(mask, "F").resize((round(mask.shape[1] * height / mask.shape[0]), height)))
        page[40:40 + height, x:x + scaled.shape[1]] -= 255 * np.clip(scaled, 0, 1)
        x += scaled.shape[1] + 25
    return Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("name, image", [("dot", dot()), ("line", line()), ("letter A", letter("A")),
                                         ("letter K", letter("K")), ("letter W", letter("W")),
                                         ("pair 3 8", pair(3, 8)), ("pair 2 5", pair(2, 5))])
def test_things_that_are_not_one_digit_are_called_so_and_keep_a_top_guess(predictor, name, image):
    prediction = predictor.predict(image)
    assert prediction.verdict.kind == "not_a_digit", (name, prediction.verdict)
    assert prediction.digit in range(10) and len(prediction.probabilities) == 10  # the bars still have values
    assert "not a single digit" in prediction.verdict.sentence(prediction.probabilities)


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_a_clear_drawn_digit_is_a_digit(predictor, digit):
    prediction = predictor.predict(draw(STROKES[digit], size=(280, 280), box=(70, 40, 210, 240), width=18))
    assert prediction.digit == digit and prediction.verdict.kind == "digit", prediction.verdict
    assert prediction.verdict.hints == [] and prediction.verdict.headline == str(digit)


def test_a_hesitation_between_two_digits_is_not_sure_and_names_both():
    probabilities = [0.035] * 10
    probabilities[4], probabilities[9] = 0.38, 0.34
    verdict = judge(probabilities, GateScore(0.02, "letter"), gate_threshold=0.5)
    assert verdict.kind == "unsure" and verdict.candidates == [4, 9] and verdict.headline == "Not sure: 4 or 9?"
    assert verdict.sentence(probabilities) == "not sure: 4 (38.00%) or 9 (34.00%)?"
    assert judge(probabilities, None, 0.5).kind == "unsure"  # without a gate, confidence still judges
    probabilities[4], probabilities[9] = 0.9, 0.02
    assert judge(probabilities, GateScore(0.02, "letter"), 0.5).kind == "digit"
    assert judge(probabilities, GateScore(0.97, "pair"), 0.5).looks_like == "more than one digit"


def test_hints_for_a_tiny_drawing_and_for_strokes_off_the_pad(predictor):
    tiny = draw(SEVEN, size=(400, 400), box=(180, 180, 215, 230), width=5)
    assert any("draw bigger" in h for h in predictor.predict(tiny).verdict.hints)
    off = draw(SEVEN, size=(200, 200), box=(40, -30, 150, 150), width=12)  # the top bar runs off the top edge
    assert any("off the edge" in h for h in predictor.predict(off).verdict.hints)


def test_a_predictor_without_a_gate_judges_by_confidence_alone(predictor):
    plain = Predictor(predictor.weights, gate=None)
    verdict = plain.predict(draw(SEVEN)).verdict
    assert verdict.kind == "digit" and verdict.not_digit_probability is None


def test_the_shipped_gate_is_small_and_reads_back(tmp_path):
    gate = load_gate()
    assert len(gate.members) == len(gate.info["members"]) == 3  # what core.gate_training's default recipe makes
    assert DEFAULT_GATE.is_file() and DEFAULT_GATE.stat().st_size < 300_000 * len(gate.members)
    assert 0 < gate.threshold < 1 and default_gate() is not None
    save_gate(tmp_path / "copy.safetensors", gate.members, 16, gate.threshold, gate.info)
    copy = load_gate(tmp_path / "copy.safetensors")
    images = torch.from_numpy(np.stack([np.asarray(dot().resize((28, 28)))] * 2))
    assert [s.not_digit for s in copy.scores(images)] == [s.not_digit for s in gate.scores(images)]


def test_the_gate_averages_its_members_and_reads_a_one_model_file_of_the_first_format(tmp_path):
    from safetensors.torch import save

    torch.manual_seed(0)
    first, second = gate_net(8), gate_net(8)
    images = torch.from_numpy(np.stack([np.asarray(dot().resize((28, 28))), np.asarray(line().resize((28, 28)))]))
    x = images.float().div(255.0).unsqueeze(1)
    with torch.no_grad():
        each = [torch.softmax(m.eval()(x), dim=1)[:, 1:].sum(1) for m in (first, second)]  # P(not a digit)
    save_gate(tmp_path / "two.safetensors", [first, second], 8, 0.5, {"seed": 0})
    both = load_gate(tmp_path / "two.safetensors")
    assert len(both.members) == 2
    assert [s.not_digit for s in both.scores(images)] == pytest.approx(((each[0] + each[1]) / 2).tolist(), abs=1e-6)
    # a gate written by the previous version (format 1: one model, plain keys) still loads, as that one model
    meta = {"format": "digit-recognizer-gate", "version": "1", "width": "8", "threshold": "0.5",
            "kinds": json.dumps(KINDS), "info": "{}"}
    (tmp_path / "old.safetensors").write_bytes(save({k: v.contiguous() for k, v in first.state_dict().items()}, meta))
    old = load_gate(tmp_path / "old.safetensors")
    assert len(old.members) == 1
    assert [s.not_digit for s in old.scores(images)] == pytest.approx(each[0].tolist(), abs=1e-6)


def test_a_damaged_or_foreign_gate_file_is_one_sentence(tmp_path):
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(DEFAULT_GATE.read_bytes()[:5000])
    with pytest.raises(GateError, match="damaged"):
        load_gate(damaged)
    wide = tmp_path / "wide.safetensors"
    save_gate(wide, gate_net(8), 16, 0.5, {})  # says width 16, holds width 8
    with pytest.raises(GateError, match="does not match"):
        load_gate(wide)
    short = tmp_path / "short.safetensors"  # says three members, holds two
    data = bytearray((save_gate(short, [gate_net(8), gate_net(8)], 8, 0.5, {}), short.read_bytes())[1])
    short.write_bytes(bytes(data).replace(b'"members":"2"', b'"members":"3"'))
    with pytest.raises(GateError, match="does not match"):
        load_gate(short)
    with pytest.raises(GateError, match="cannot be read"):
        load_gate(tmp_path / "absent.safetensors")
    with pytest.raises(GateError, match="at most"):
        load_gate(tmp_path)  # a folder


@requires_real_mnist
def test_real_mnist_test_digits_are_rarely_flagged(real_mnist_dir, predictor):
    from core.data import load_split, locate

    images, _labels = load_split(locate(real_mnist_dir, download=False), train=False)
    picked = torch.arange(0, 10_000, 10)  # 1,000 digits spread over the whole test split
    verdicts = [p.verdict.kind for p in predictor.predict_many([images[i].numpy() for i in picked])]
    flagged = sum(v != "digit" for v in verdicts) / len(verdicts)
    assert flagged <= 0.01, f"{100 * flagged:.1f}% of real MNIST test digits flagged (target <= 1%)"


def test_photo_sets_in_the_not_digit_benchmark_and_a_baseline_gate_on_the_same_images():
    from bench.not_digits import photo_sets, score_set

    sets = photo_sets(2, seed=0, data_dir=None)
    assert [(name, split, is_digit) for name, split, is_digit, _images, _labels in sets] == [
        ("photos-tune", "tune", True), ("photos-heldout", "heldout", True),
        ("blank-photos-tune", "tune", False), ("blank-photos-heldout", "heldout", False)]
    predictor = Predictor(load_default_weights())
    gate = load_gate()
    scored = [score_set(predictor, name, split, images, is_digit, labels, gate, chunk=2)
              for name, split, is_digit, images, labels in sets]
    for s in scored:
        assert len(s.not_digit) == 2 and (s.labels is None or len(s.labels) == 2)  # labels filled as photos were made
        assert s.flags(gate.threshold, 0.5) == s.flags(gate.threshold, 0.5, not_digit_scores=s.baseline)
    blank_flagged = np.mean([s.flags(gate.threshold, 0.5)["flagged"] for s in scored if not s.is_digit])
    assert blank_flagged >= 0.8, f"only {blank_flagged:.0%} of blank photos were flagged"


def test_the_threshold_sweep_reports_the_worst_non_digit_set_as_the_choice_rule_needs():
    """The rule keeps thresholds at which every non-digit tune set is >= 92% flagged: the worst set, not the mean."""
    from bench.not_digits import Scored, tune_sweep

    sure = np.tile(np.eye(10)[3], (4, 1))                  # four confident 3s: never "not sure"
    letters = Scored("letters-tune", "tune", False, sure, np.array([0.95, 0.95, 0.95, 0.55]))
    dots = Scored("dots-tune", "tune", False, sure, np.array([0.99, 0.99, 0.99, 0.99]))
    digits = Scored("fonts-tune", "tune", True, sure, np.array([0.1, 0.1, 0.1, 0.65]))
    held = Scored("letters-heldout", "heldout", False, sure, np.zeros(4))  # held out: never part of the choice
    rows = {r["gate_threshold"]: r for r in tune_sweep([letters, dots, digits, held]) if r["unsure_below"] == 0.4}
    assert rows[0.5]["non_digits_flagged_min"] == 1.0 and rows[0.5]["drawn_digits_flagged_max"] == 0.25
    assert rows[0.6]["non_digits_flagged_min"] == 0.75 and rows[0.6]["non_digits_flagged_mean"] == 0.875
    assert rows[0.6]["drawn_digits_flagged_max"] == 0.25 and rows[0.7]["drawn_digits_flagged_max"] == 0.0
