"""Handwriting-font weak spots: open 4s read as 9, flagged 1s read as 2 or 3, curly 7s read as 9; weights side by side.

Each weak spot is measured on fonts whose glyphs show it. "Tune" fonts were looked at while the training strokes were
designed (core/pen_digits.py); "held-out" fonts never were. The digit model trains on no font at all, so every row is a
font it has never seen. Next to each weak digit, the digits it is confused with are scored in the same fonts, so a fix
that only moves the error shows up.

Run from the repository root:  python -m bench.weak_spots [--weights A.pt --weights B.pt] [--json out.json | --json -]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.ood_sets import _font_files, font_digits
from core.predict import Predictor
from core.weights import WeightsError, load_default_weights, load_weights


@dataclass(frozen=True)
class WeakSpot:
    """One way of writing `digit` that the shipped weights used to misread as one of `confused_with`."""

    name: str
    digit: int
    confused_with: tuple[int, ...]
    tune_fonts: tuple[str, ...]     # looked at while designing the training strokes
    heldout_fonts: tuple[str, ...]  # never looked at for that
    package: str                    # Debian packages that ship the fonts


WEAK_SPOTS = [
    WeakSpot("open 4", 4, (9,), ("Kristi.ttf", "PenguinAttack.ttf"), ("Ecolier-court.ttf", "femkeklaver.ttf"),
             "fonts-kristi fonts-dustin fonts-ecolier-court fonts-femkeklaver"),
    WeakSpot("flagged 1", 1, (2, 3, 7, 9), ("Domestic_Manners.ttf", "PenguinAttack.ttf"),
             ("Joscelyn-Regular.otf", "El_Abogado_Loco.ttf", "femkeklaver.ttf"),
             "fonts-dustin fonts-joscelyn fonts-femkeklaver"),
    WeakSpot("curly 7", 7, (9,), ("PenguinAttack.ttf",), ("femkeklaver.ttf",), "fonts-dustin fonts-femkeklaver"),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", action="append", help="weights file to score; repeat to compare (default: shipped)")
    p.add_argument("--per-font", type=int, default=120, help="images of each scored digit per font (default: 120)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    return p.parse_args(argv)


def spot_sets(spot: WeakSpot, per_font: int, seed: int) -> tuple[dict, list[str]]:
    """{split: (weak digit set, counterpart set)} for the fonts installed here, and notes on missing fonts."""
    files, notes, sets = _font_files(), [], {}
    for split, names in (("tune", spot.tune_fonts), ("held-out", spot.heldout_fonts)):
        fonts = [files[n] for n in names if n in files]
        missing = [n for n in names if n not in files]
        if missing:
            notes.append(f"{spot.name}, {split}: missing {', '.join(missing)} (apt-get install -y {spot.package})")
        if not fonts:
            continue
        stream = "tune" if split == "tune" else "heldout"
        weak = font_digits(f"{spot.name} {split}", fonts, per_font * len(fonts), stream, seed,
                           digits=(spot.digit,), kind="weak-spots")
        others = font_digits(f"{spot.name} {split} counterparts", fonts, per_font * len(fonts), stream, seed + 1,
                             digits=spot.confused_with, kind="weak-spots")
        sets[split] = (weak, others, [p.name for p in fonts])
    return sets, notes


def score(predictor: Predictor, spot: WeakSpot, weak, others) -> dict:
    """Accuracy on the weak digit, how often it is read as a confused digit, accuracy on those digits."""
    read = [p.digit for p in predictor.predict_many(weak.images)]
    read_others = [p.digit for p in predictor.predict_many(others.images)]
    return {"accuracy": float(np.mean([r == spot.digit for r in read])),
            "read_as_confused": float(np.mean([r in spot.confused_with for r in read])),
            "counterpart_accuracy": float(np.mean([r == y for r, y in zip(read_others, others.labels)])),
            "n": len(read), "n_counterparts": len(read_others)}


def format_table(rows: list[dict]) -> str:
    head = (f"{'weak spot':<12}{'split':<10}{'weights':<28}{'right':>8}{'misread as':>16}"
            f"{'counterparts right':>20}   fonts")
    lines = [head, "-" * (len(head) + 30)]
    for r in rows:
        confused = "/".join(map(str, r["confused_with"]))
        lines.append(f"{r['spot']:<12}{r['split']:<10}{r['weights'][:27]:<28}{100 * r['accuracy']:>7.1f}%"
                     f"{100 * r['read_as_confused']:>9.1f}% as {confused:<4}{100 * r['counterpart_accuracy']:>19.1f}%"
                     f"   {', '.join(Path(f).stem for f in r['fonts'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout
    started = time.perf_counter()
    try:
        weights = [load_weights(w) for w in args.weights] if args.weights else [load_default_weights()]
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    predictors = [(w.name, Predictor(w, gate=None)) for w in weights]
    rows, notes = [], []
    with torch.inference_mode():
        for spot in WEAK_SPOTS:
            sets, spot_notes = spot_sets(spot, args.per_font, args.seed)
            notes += spot_notes
            for split, (weak, others, fonts) in sets.items():
                for name, predictor in predictors:
                    rows.append({"spot": spot.name, "split": split, "weights": name, "fonts": fonts,
                                 "confused_with": list(spot.confused_with), **score(predictor, spot, weak, others)})
    print(format_table(rows), file=out)
    for note in notes:
        print(f"note: {note}", file=out)
    report = {"benchmark": "weak_spots", "seed": args.seed, "per_font": args.per_font, "notes": notes,
              "seconds": round(time.perf_counter() - started, 1), "rows": rows}
    print(f"{report['seconds']} s", file=out)
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
