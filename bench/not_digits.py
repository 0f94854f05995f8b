"""Not-a-digit benchmark: how often real digits are flagged (unsure or not a digit) and how often non-digits are,
the shipped verdict (gate + calibrated confidence) against confidence alone and against no verdict, in the same run.

Run from the repository root:
    python -m bench.not_digits [--weights PATH] [--gate PATH] [--baseline-gate PATH] [--per-set N] [--photos N]
                               [--json out.json | --json -]
--baseline-gate scores a second gate on the very same preprocessed images (e.g. the gate before a retraining).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch

from bench._common import SHARED_DATA, emit, format_table, log, machine, machine_line
from core.calibration import expected_calibration_error
from core.digit_gate import DEFAULT_GATE, DigitGate, load_gate
from core.not_digits import KINDS, make_page, pen_digit_mask
from core.predict import Predictor
from core.verdict import UNSURE_BELOW
from core.weights import load_default_weights, load_weights

NON_DIGIT_KINDS = KINDS[1:]
CHUNK = 500
PHOTO_CHUNK = 50  # photos are up to 4000 px: made and scored a slice at a time


@dataclass
class Scored:
    """One set through the predictor: calibrated probabilities (N, 10) and the gate's P(not one digit) (N,); blanks
    (nothing to recognize) have NaN rows."""

    name: str
    split: str
    is_digit: bool
    probabilities: np.ndarray
    not_digit: np.ndarray
    labels: np.ndarray | None = None
    baseline: np.ndarray | None = None  # (N,) the baseline gate's P(not one digit) on the same images, NaN for blanks

    def flags(self, gate_threshold: float, unsure_below: float, use_gate: bool = True,
              not_digit_scores: np.ndarray | None = None) -> dict:
        """Shares flagged; `not_digit_scores` replaces the gate's scores (the baseline gate's, say)."""
        scores = self.not_digit if not_digit_scores is None else not_digit_scores
        blank = np.isnan(self.not_digit)
        not_digit = ~blank & (np.nan_to_num(scores) >= gate_threshold) if use_gate else np.zeros_like(blank)
        unsure = ~blank & ~not_digit & (np.nan_to_num(self.probabilities.max(1), nan=1.0) < unsure_below)
        n = len(blank)
        return {"n": n, "flagged": float((unsure | not_digit | (blank & ~self.is_digit)).sum() / n),
                "unsure": float(unsure.sum() / n), "not_a_digit": float(not_digit.sum() / n),
                "blank": float(blank.sum() / n)}


def score_set(predictor: Predictor, name: str, split: str, images: Sequence[np.ndarray] | Iterator[np.ndarray],
              is_digit: bool, labels: list[int] | None = None, baseline_gate: DigitGate | None = None,
              chunk: int = CHUNK) -> Scored:
    """Every image through the predictor (and the baseline gate, on what the predictor saw), `chunk` at a time;
    `images` may be a generator, so large photos need not all be in memory at once."""
    probs, gate, baseline = [], [], []
    source = iter(images)
    while batch := list(islice(source, chunk)):
        predictions = predictor.predict_many(batch)
        seen = [p for p in predictions if p.verdict is not None]
        base = iter(baseline_gate.scores(torch.from_numpy(np.stack([p.image28 for p in seen])))
                    if baseline_gate is not None and seen else [])
        for p in predictions:
            if p.verdict is None:
                probs.append(np.full(10, np.nan)), gate.append(np.nan), baseline.append(np.nan)
            else:
                probs.append(p.probabilities), gate.append(p.verdict.not_digit_probability)
                baseline.append(next(base).not_digit if baseline_gate is not None else np.nan)
    return Scored(name, split, is_digit, np.array(probs, dtype=float).reshape(-1, 10), np.array(gate, dtype=float),
                  None if labels is None else np.asarray(labels),
                  np.array(baseline, dtype=float) if baseline_gate is not None else None)


def photo_sets(n: int, seed: int, data_dir: str | None) -> list[tuple[str, str, bool, Iterator[np.ndarray], list]]:
    """(name, split, real digits?, photos made a slice at a time, labels): bench/photo_sets.py's digit photos (tune
    and held out) and blank photos (paper, lines, lighting, no writing) of both splits. A digit set's label list
    fills as its photos are made, so it is complete once score_set has used them all."""
    from bench.photo_sets import blank_photos, photo_set

    def digit_photos(split: str, folder: str | None, labels: list[int]) -> Iterator[np.ndarray]:
        for first in range(0, n, PHOTO_CHUNK):
            images, digits, _sources = photo_set(split, min(PHOTO_CHUNK, n - first), seed, folder, first)
            labels += digits
            yield from images

    def blanks(split: str) -> Iterator[np.ndarray]:
        for first in range(0, n, PHOTO_CHUNK):
            yield from blank_photos(split, min(PHOTO_CHUNK, n - first), seed, first)

    out = []
    for split in ("tune", "heldout"):
        folder = data_dir if split == "heldout" else None  # MNIST test digits only in the held-out photos
        labels: list[int] = []
        out.append((f"photos-{split}", split, True, digit_photos(split, folder, labels), labels))
    for split in ("tune", "heldout"):
        out.append((f"blank-photos-{split}", split, False, blanks(split), None))
    return out


def heldout_pair_digits(mnist: Callable[[int, np.random.Generator], np.ndarray]):
    """digit, rng -> a mask: half MNIST test digits, half held-out pen hands (never seen by the gate's training)."""
    def source(digit: int, rng: np.random.Generator) -> np.ndarray:
        return mnist(digit, rng) if rng.random() < 0.5 else pen_digit_mask(digit, rng, heldout=True)
    return source


def non_digit_sets(n: int, seed: int, mnist_test: tuple[torch.Tensor, torch.Tensor] | None
                   ) -> list[tuple[str, str, list]]:
    """(name, split, pages): each kind from the tune and the held-out stream; held-out letters use only held-out fonts,
    held-out pairs held-out pen hands and MNIST test digits."""
    from bench.ood_sets import find_fonts
    from core.gate_training import mnist_mask_source

    tune_fonts, heldout_fonts = [*find_fonts(False)[0], ""], find_fonts(True)[0]
    out = []
    for split in ("tune", "heldout"):
        fonts = tune_fonts if split == "tune" else heldout_fonts
        source = None
        if split == "heldout" and mnist_test is not None:
            source = heldout_pair_digits(mnist_mask_source(*mnist_test))
        for kind in NON_DIGIT_KINDS:
            if kind == "letter" and not fonts:
                log(f"letters-{split}: skipped, no font of this split is installed (see bench/README.md)")
                continue
            out.append((f"{kind}s-{split}", split, [make_page(kind, split, seed, i, fonts, source) for i in range(n)]))
    return out


def tune_sweep(scored: list[Scored]) -> list[dict]:
    """Flag rates on the tune sets only, over a grid of the two thresholds: how the shipped values were chosen."""
    tune = [s for s in scored if s.split == "tune"]
    rows = []
    for gate_threshold in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        for unsure_below in (0.4, 0.5, 0.6):
            flags = [(s.is_digit, s.name.startswith("photos"), s.flags(gate_threshold, unsure_below)["flagged"])
                     for s in tune]
            rows.append({"gate_threshold": gate_threshold, "unsure_below": unsure_below,
                         "real_digits_flagged_max": max((f for d, _p, f in flags if d), default=0.0),
                         "drawn_digits_flagged_max": max((f for d, photo, f in flags if d and not photo), default=0.0),
                         "photo_digits_flagged_max": max((f for d, photo, f in flags if d and photo), default=None),
                         "non_digits_flagged_mean": float(np.mean([f for d, _p, f in flags if not d] or [0.0])),
                         "non_digits_flagged_min": min((f for d, _p, f in flags if not d), default=0.0)})
    return rows


def summary_line(split: str, v: dict) -> str:
    return (f"{split}: real digits flagged at most {100 * (v['real_digits_flagged_max'] or 0):.2f}% (target <= 1%); "
            f"non-digits flagged {100 * (v['non_digits_flagged_mean'] or 0):.1f}% on average, "
            f"{100 * (v['non_digits_flagged_min'] or 0):.1f}% in the worst set (target >= 90%)")


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main(argv: list[str] | None = None) -> int:
    from bench.ood_sets import benchmark_sets

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="classifier weights (default: the shipped ones)")
    p.add_argument("--data", default=str(SHARED_DATA), help="MNIST folder (for the MNIST test rows and pairs)")
    p.add_argument("--per-set", type=int, default=500, help="pages per non-digit set and drawn-digit set")
    p.add_argument("--mnist", type=int, default=10000, help="MNIST test images (0: none)")
    p.add_argument("--photos", type=int, default=200, help="photos per photo set (digits and blanks, tune and "
                   "held out; 0: none); they take ~0.4 s each to make")
    p.add_argument("--gate", default=str(DEFAULT_GATE), help="the digit gate to measure (default: the shipped one)")
    p.add_argument("--baseline-gate", help="another gate scored on the same images in the same run (e.g. the one "
                   "before a retraining), at its own threshold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    args = p.parse_args(argv)
    started = time.perf_counter()
    weights = load_weights(args.weights) if args.weights else load_default_weights()
    gate = load_gate(args.gate)
    baseline_gate = load_gate(args.baseline_gate) if args.baseline_gate else None
    predictor = Predictor(weights, gate=gate)
    mnist_test = None
    try:
        from core.data import load_mnist

        data = load_mnist(args.data, download=False)
        mnist_test = (data.test_images, data.test_labels)
    except Exception as exc:  # noqa: BLE001 - the MNIST rows are optional
        log(f"MNIST rows skipped: {exc}")

    scored: list[Scored] = []
    if mnist_test is not None and args.mnist:  # validation: never trained on by the classifier or the gate
        scored.append(score_set(predictor, "mnist-val", "tune", [img.numpy() for img in data.val_images[:args.mnist]],
                                True, data.val_labels[:args.mnist].tolist(), baseline_gate))
        images = [img.numpy() for img in mnist_test[0][:args.mnist]]
        scored.append(score_set(predictor, "mnist-test", "heldout", images, True, mnist_test[1][:args.mnist].tolist(),
                                baseline_gate))
    digit_sets, notes = benchmark_sets({k: args.per_set for k in ("fonts-tune", "strokes-tune", "fonts-heldout",
                                                                   "strokes-heldout", "optdigits")}, args.seed)
    for s in digit_sets:
        split = "tune" if s.name.endswith("-tune") else "heldout"
        scored.append(score_set(predictor, s.name, split, s.images, True, s.labels, baseline_gate))
    photos = photo_sets(args.photos, args.seed, args.data) if args.photos else []
    for name, split, is_digit, images, labels in photos:
        if is_digit:
            log(f"{name}: {args.photos} photos ...")
            scored.append(score_set(predictor, name, split, images, True, labels, baseline_gate, PHOTO_CHUNK))
    for name, split, pages in non_digit_sets(args.per_set, args.seed, mnist_test):
        scored.append(score_set(predictor, name, split, pages, False, None, baseline_gate))
    for name, split, is_digit, images, _labels in photos:
        if not is_digit:
            log(f"{name}: {args.photos} photos ...")
            scored.append(score_set(predictor, name, split, images, False, None, baseline_gate, PHOTO_CHUNK))

    rows, table = [], []
    for s in scored:
        ours = s.flags(gate.threshold, UNSURE_BELOW)
        confidence_only = s.flags(gate.threshold, UNSURE_BELOW, use_gate=False)
        row = {"set": s.name, "split": s.split, "real_digits": s.is_digit, **ours,
               "confidence_only_flagged": confidence_only["flagged"]}
        if baseline_gate is not None:
            row["baseline_gate_flagged"] = s.flags(baseline_gate.threshold, UNSURE_BELOW,
                                                   not_digit_scores=s.baseline)["flagged"]
        if s.labels is not None:
            kept = ~np.isnan(s.not_digit)
            calibrated = torch.from_numpy(s.probabilities[kept])
            raw = torch.softmax(torch.log(calibrated.clamp_min(1e-30)) * predictor.temperature, 1)  # undo 1/T
            labels = torch.from_numpy(s.labels[kept]).long()
            wrong = (calibrated.argmax(1) != labels).numpy()
            flagged = (s.not_digit[kept] >= gate.threshold) | (s.probabilities[kept].max(1) < UNSURE_BELOW)
            row.update(accuracy=float(1 - wrong.mean()),
                       mistakes_flagged=float(flagged[wrong].mean()) if wrong.any() else None,
                       ece_raw=expected_calibration_error(raw, labels),
                       ece_calibrated=expected_calibration_error(calibrated, labels))
        rows.append(row)
        table.append([s.name, s.split, "digits" if s.is_digit else "non-digits", row["n"], pct(row["flagged"]),
                      pct(row["unsure"]), pct(row["not_a_digit"]),
                      *([pct(row["baseline_gate_flagged"])] if baseline_gate is not None else []),
                      pct(row["confidence_only_flagged"]), "0.0%",
                      pct(row["accuracy"]) if "accuracy" in row else "",
                      pct(row["mistakes_flagged"]) if row.get("mistakes_flagged") is not None else "",
                      f"{100 * row['ece_raw']:.2f}% -> {100 * row['ece_calibrated']:.2f}%" if "ece_raw" in row else ""])
    summary = {}
    for split in ("tune", "heldout"):
        digits = [r for r in rows if r["real_digits"] and r["split"] == split]
        others = [r for r in rows if not r["real_digits"] and r["split"] == split]
        summary[split] = {"real_digits_flagged_max": max((r["flagged"] for r in digits), default=None),
                          "non_digits_flagged_mean": float(np.mean([r["flagged"] for r in others])) if others else None,
                          "non_digits_flagged_min": min((r["flagged"] for r in others), default=None)}
        if baseline_gate is not None:
            summary[f"{split} (baseline gate)"] = {
                "real_digits_flagged_max": max((r["baseline_gate_flagged"] for r in digits), default=None),
                "non_digits_flagged_mean": float(np.mean([r["baseline_gate_flagged"] for r in others]))
                if others else None,
                "non_digits_flagged_min": min((r["baseline_gate_flagged"] for r in others), default=None)}
    sweep = tune_sweep(scored)
    info = machine()
    report = {"machine": info, "weights": str(weights.path), "temperature": predictor.temperature,
              "gate": args.gate, "gate_threshold": gate.threshold, "baseline_gate": args.baseline_gate,
              "baseline_gate_threshold": baseline_gate.threshold if baseline_gate is not None else None,
              "unsure_below": UNSURE_BELOW, "rows": rows, "summary": summary,
              "tune_sweep": sweep,
              "notes": notes, "seconds": round(time.perf_counter() - started, 1)}
    text = "\n".join([
        (f"verdicts: gate {args.gate} (threshold {gate.threshold:.2f}), not sure below {100 * UNSURE_BELOW:.0f}% "
         f"(calibrated, T={predictor.temperature:.3f}); {weights.name}"
         + (f"; baseline gate {args.baseline_gate} (threshold {baseline_gate.threshold:.2f})"
            if baseline_gate is not None else "")),
        format_table(["set", "split", "kind", "n", "flagged", "unsure", "not a digit",
                      *(["flagged, baseline gate"] if baseline_gate is not None else []), "confidence only",
                      "no verdict (before)", "top guess right", "mistakes flagged", "ECE raw -> calibrated"],
                     table, "lllrrrr" + "r" * (baseline_gate is not None) + "rrrrr"),
        *(summary_line(split, v) for split, v in summary.items()),
        "how the thresholds were chosen (tune sets only: worst real-digit set, without and with photos; mean and worst "
        "of the non-digit sets):",
        format_table(["gate threshold", "not sure below", "drawn/typed digits flagged (max)",
                      "photo digits flagged", "real digits flagged (max)", "non-digits flagged (mean)",
                      "non-digits flagged (worst set)"],
                     [[f"{r['gate_threshold']:.2f}", f"{r['unsure_below']:.2f}", pct(r["drawn_digits_flagged_max"]),
                       pct(r["photo_digits_flagged_max"]) if r["photo_digits_flagged_max"] is not None else "-",
                       pct(r["real_digits_flagged_max"]), pct(r["non_digits_flagged_mean"]),
                       pct(r["non_digits_flagged_min"])] for r in sweep]),
        *notes, machine_line(info)])
    emit(report, text, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
