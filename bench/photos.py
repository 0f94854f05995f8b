"""Photo benchmark: accuracy on photo-like digit images (bench/photo_sets.py), ours vs today's drawing-only recipe.

Run from the repository root:  python -m bench.photos [--per-set 300] [--weights PATH] [--json out.json | --json -]

Both rows use the same weights and the same images. "Ours" is the app's Predictor.predict (the photo route and, for
a photo not judged a digit at first, its second readings); "today's recipe" is preprocess(route="drawing") and the
model, the pipeline as it was before photos were handled (flat paper assumed). The tune set was used to tune core/photo.py;
the held-out set never was (other stroke hands and fonts, the other half of optdigits, MNIST test digits).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import numpy as np

from bench._common import SHARED_DATA, emit, format_table, log, machine, machine_line, median
from bench.photo_sets import photo_set
from core.predict import Predictor
from core.preprocess import preprocess


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-set", type=int, default=300, help="photos in each of the tune and held-out sets")
    p.add_argument("--weights", help="weights file (default: the shipped default weights)")
    p.add_argument("--data", default=str(SHARED_DATA) if SHARED_DATA.is_dir() else None,
                   help="MNIST folder: its test digits join the held-out set (default: ../shared/data if present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    return p.parse_args(argv)


def read_ours(predictor: Predictor, image: np.ndarray) -> tuple[int | None, float]:
    """The digit the app reads (None: nothing found) and predict's wall time in ms."""
    started = time.perf_counter()
    digit = predictor.predict(image).digit
    return digit, (time.perf_counter() - started) * 1e3


def read_today(predictor: Predictor, image: np.ndarray) -> int | None:
    """The digit the drawing-only recipe reads (None: nothing found)."""
    prepared = preprocess(image, predictor.weights.normalization, route="drawing")
    return None if prepared.empty else int(predictor.probabilities(prepared.tensor[None]).argmax())


def run_split(predictor: Predictor, split: str, n: int, seed: int, data_dir: str | None) -> dict:
    images, labels, sources = photo_set(split, n, seed, data_dir)
    right = {"ours": [], "today": []}
    times = []
    for image, label in zip(images, labels):
        ours, ms = read_ours(predictor, image)
        today = read_today(predictor, image)
        right["ours"].append(ours == label)
        right["today"].append(today == label)
        times.append(ms)
    by_source = defaultdict(list)
    for ok, source in zip(right["ours"], sources):
        by_source[source].append(ok)
    sizes = [max(im.shape[:2]) for im in images]
    return {"split": split, "n": n, "ours": float(np.mean(right["ours"])), "today": float(np.mean(right["today"])),
            "by_source": {k: {"n": len(v), "ours": float(np.mean(v))} for k, v in sorted(by_source.items())},
            "predict_ms_median": median(times), "predict_ms_max": max(times),
            "long_side_px": [min(sizes), max(sizes)]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    predictor = Predictor.from_file(args.weights)  # None: the shipped default weights
    rows = []
    for split in ("tune", "heldout"):
        log(f"{split}: {args.per_set} photos ...")
        rows.append(run_split(predictor, split, args.per_set, args.seed, args.data))
    info = machine()
    report = {"benchmark": "photos", "machine": info, "weights": predictor.weights.name, "per_set": args.per_set,
              "seconds": round(time.perf_counter() - started, 1), "splits": rows}
    table = format_table(
        ["set", "photos", "ours", "today's recipe (baseline)", "predict ms (median / max)", "long side px"],
        [[r["split"] + (" (tuned on)" if r["split"] == "tune" else " (never tuned on)"), r["n"],
          f"{100 * r['ours']:.1f}%", f"{100 * r['today']:.1f}%",
          f"{r['predict_ms_median']:.0f} / {r['predict_ms_max']:.0f}",
          f"{r['long_side_px'][0]}-{r['long_side_px'][1]}"] for r in rows])
    sources = format_table(["set", *sorted(rows[-1]["by_source"])],
                           [[r["split"], *(f"{100 * r['by_source'][k]['ours']:.1f}% of {r['by_source'][k]['n']}"
                                           if k in r["by_source"] else "-" for k in sorted(rows[-1]["by_source"]))]
                            for r in rows])
    target = all(r["ours"] >= 0.95 for r in rows)
    text = (f"photo-like digits, weights {predictor.weights.name}\n{table}\n\nours by digit shape:\n{sources}\n\n"
            f"target >= 95% on both sets: {'met' if target else 'NOT met'}; {machine_line(info)}")
    emit(report, text, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
