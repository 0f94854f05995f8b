"""Out-of-distribution benchmark: accuracy on digits typed, drawn and written off MNIST, ours vs the tutorial's pipeline.

Run from the repository root:  python -m bench.drawn_digits --weights PATH [--json out.json | --json -]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from bench.ood_sets import FONTS, DigitSet, benchmark_sets, find_fonts
from core.predict import Predictor
from core.weights import LoadedWeights, WeightsError, load_default_weights, load_weights

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
HELDOUT_SETS = ("fonts-heldout", "strokes-heldout", "optdigits")  # never used for training or tuning


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="weights file to test (default: the shipped default weights)")
    p.add_argument("--baseline-weights", help="tutorial state_dict or our file for the baseline rows "
                                              "(default: train the tutorial preset now, ~10-20 s)")
    p.add_argument("--data", default=str(SHARED_DATA) if SHARED_DATA.is_dir() else None,
                   help="MNIST folder for training the baseline (default: ../shared/data if present)")
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated sets")
    p.add_argument("--per-set", type=int, help="images per set (default: 1000 tune, 1500 held-out, all optdigits)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    return p.parse_args(argv)


def tutorial_transform() -> Callable[[Image.Image], torch.Tensor]:
    """The tutorial's inference transform, verbatim: Grayscale, Resize((28,28)), ToTensor on the raw image."""
    from torchvision import transforms

    return transforms.Compose([transforms.Grayscale(num_output_channels=1), transforms.Resize((28, 28)),
                               transforms.ToTensor()])


def score(predicted: list[int | None], labels: list[int]) -> dict:
    """Accuracy (a blank result counts as wrong), blanks and per-digit accuracy."""
    right = [p == y for p, y in zip(predicted, labels)]
    per_class = [float(np.mean([r for r, y in zip(right, labels) if y == d])) if d in labels else None
                 for d in range(10)]
    return {"accuracy": float(np.mean(right)) if right else 0.0, "n": len(labels),
            "blank": sum(p is None for p in predicted), "per_class": per_class}


def run_ours(weights: LoadedWeights, digits: DigitSet) -> dict:
    """Our Predictor: our preprocessing, the weights' own normalization."""
    return score([p.digit for p in Predictor(weights).predict_many(digits.images)], digits.labels)


@torch.no_grad()
def run_tutorial(weights: LoadedWeights, digits: DigitSet) -> dict:
    """The tutorial's transform on the raw image, then argmax of the logits."""
    transform = tutorial_transform()
    batch = torch.stack([transform(Image.fromarray(img)) for img in digits.images])  # (N, 1, 28, 28) in [0, 1]
    mean, std = weights.normalization  # (0, 1) for the tutorial model
    predicted = weights.model.eval()((batch - mean) / std).argmax(1).tolist()
    return score(predicted, digits.labels)


def baseline(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[LoadedWeights, str]:
    """The tutorial model: loaded from --baseline-weights, or trained now with the tutorial preset."""
    if args.baseline_weights:
        return load_weights(args.baseline_weights), f"loaded from {args.baseline_weights}"
    from core.training import preset, train

    log(f"training the tutorial baseline (tutorial preset, 1 epoch) on MNIST in {args.data or 'the default folder'} ...")
    result = train(preset("tutorial", data_dir=args.data, threads=args.threads))
    accuracy = result.metrics["test_accuracy"]
    weights = LoadedWeights(result.model, "tutorial", result.arch_args, result.normalization,
                            result.settings.to_dict(), result.metrics)
    return weights, f"trained now with the tutorial preset in {result.seconds:.0f} s, MNIST test accuracy {accuracy:.4f}"


def format_table(rows: list[dict], names: list[str]) -> str:
    """Rows = model/pipeline, columns = sets (accuracy in %), and the mean over the held-out sets."""
    head = f"{'model + pipeline':<52}" + "".join(f"{n:>17}" for n in names) + f"{'held-out mean':>15}"
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = "".join(f"{100 * row['sets'][n]['accuracy']:>16.1f}%" for n in names)
        lines.append(f"{row['row']:<52}{cells}{100 * row['heldout_mean']:>14.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout  # keep stdout pure JSON with --json -
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        ours = load_weights(args.weights) if args.weights else load_default_weights()
    except WeightsError as exc:
        log(f"error: {exc}" + ("" if args.weights else "\npass a weights file with --weights PATH"))
        return 2
    base, base_note = baseline(args, log)
    log(base_note)

    log("generating the sets ...")
    sizes = {n: args.per_set for n in ("fonts-tune", "strokes-tune", "fonts-heldout", "strokes-heldout",
                                        "optdigits")} if args.per_set else None
    sets, notes = benchmark_sets(sizes, args.seed)
    for note in notes:
        log(f"note: {note}")
    names = [s.name for s in sets]
    pipelines = [
        (f"ours: {ours.name} ({ours.arch}) + our preprocessing", ours, run_ours),
        ("tutorial model + our preprocessing", base, run_ours),
        ("tutorial model + tutorial transform (baseline)", base, run_tutorial),
    ]
    rows = []
    for label, weights, run in pipelines:
        log(f"scoring: {label}")
        results = {s.name: run(weights, s) for s in sets}
        held = [results[n]["accuracy"] for n in names if n in HELDOUT_SETS]
        rows.append({"row": label, "sets": results, "heldout_mean": float(np.mean(held)) if held else 0.0})

    used = {heldout: [p.name for p in find_fonts(heldout)[0]] for heldout in (False, True)}
    report = {
        "benchmark": "drawn_digits", "seed": args.seed, "seconds": round(time.perf_counter() - started, 1),
        "weights": str(ours.path) if ours.path else ours.name, "weights_metrics": ours.metrics,
        "baseline": base_note,
        "sets": [{"name": s.name, "n": len(s.labels), "heldout": s.name in HELDOUT_SETS,
                  "description": s.description} for s in sets],
        "fonts": {"tune": used[False], "heldout": used[True],
                  "missing": [f.file for f in FONTS if f.file not in used[f.heldout]]},
        "notes": notes, "rows": rows,
    }
    print(format_table(rows, names), file=out)
    print(f"\nheld-out sets (never used for training): {', '.join(n for n in names if n in HELDOUT_SETS)}; "
          f"fonts used: {len(used[False])} tune, {len(used[True])} held-out; {report['seconds']} s", file=out)
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
