"""Teaching it a writer it misreads: the writer's held-out accuracy and MNIST's before/after, and the time against the
tutorial script's training, interleaved in one run, each in its own process.

Run from the repository root:  python -m bench.finetune [--writers seven-segment,bubble,mirror] [--repeats 3] [--json -]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench._common import SHARED_DATA, child_env, emit, format_table, log, machine, machine_line, median, run_child
from bench.train_speed import TUTORIAL_SCRIPT
from bench.writer_sets import WRITERS

TARGET_HELD_OUT, TARGET_MNIST, TARGET_RATIO = 0.98, 0.994, 1.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--writers", default=",".join(WRITERS), help=f"comma-separated, of {', '.join(WRITERS)}")
    p.add_argument("--repeats", type=int, default=1, help="runs of every row; repeat r uses seed r (medians)")
    p.add_argument("--per-digit", type=int, default=10, help="samples of each digit the user gives (default 10)")
    p.add_argument("--heldout-per-digit", type=int, default=50, help="the writer's unseen digits judged after (50)")
    p.add_argument("--weights", help="base weights (default: the shipped default weights)")
    p.add_argument("--settings", default="{}", help="FinetuneSettings overrides as JSON (tuning only)")
    p.add_argument("--data", default=str(SHARED_DATA), help="MNIST folder (torchvision layout or the raw files)")
    p.add_argument("--no-baseline", action="store_true", help="skip the tutorial script (no ratios)")
    p.add_argument("--json", help="write the results as JSON to this file; '-' prints JSON to stdout")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one fine-tune, printed as one JSON line
    return p.parse_args(argv)


def child(spec: dict) -> int:
    """In the child: the user's samples as files, then load_samples + finetune timed, then the writer's unseen digits."""
    import torch

    from bench.writer_sets import write_image_folder, writer_samples
    from core.finetune import finetune, finetune_settings
    from core.predict import Predictor
    from core.samples import load_samples
    from core.weights import LoadedWeights, load_default_weights, load_weights

    writer = WRITERS[spec["writer"]]
    base = load_weights(spec["weights"]) if spec["weights"] else load_default_weights()
    unseen, labels = writer_samples(writer, spec["heldout_per_digit"], "heldout")
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_image_folder(*writer_samples(writer, spec["per_digit"], "tune", spec["seed"]), Path(tmp))
        started = time.perf_counter()  # what the user waits for: reading the samples folder to the numbers after
        samples = load_samples(folder, base.normalization)
        result = finetune(base, samples, finetune_settings(base.arch, **{**spec["settings"], "seed": spec["seed"]}),
                          data_dir=spec["data"])
        seconds = time.perf_counter() - started

    def accuracy(weights: LoadedWeights) -> float:
        predictions = Predictor(weights).predict_many(unseen)
        return sum(p.digit == y for p, y in zip(predictions, labels)) / len(labels)

    tuned = LoadedWeights(result.model, result.arch, result.arch_args, result.normalization)
    print(json.dumps({
        "seconds": seconds, "finetune_seconds": result.seconds, "timings": result.timings,
        "writer_before": accuracy(base), "writer_after": accuracy(tuned), "held_out": result.held_out,
        "mnist_test": result.mnist_test, "notes": result.notes, "samples": result.samples,
        "trained_on": result.trained_on, "threads": torch.get_num_threads(),
    }))
    return 0


def run_once(row: dict, seed: int, args: argparse.Namespace, script: Path) -> dict:
    if row["kind"] == "script":
        cmd = [sys.executable, str(script), args.data, str(seed), "0"]
    else:
        spec = {"writer": row["writer"], "seed": seed, "per_digit": args.per_digit, "data": args.data,
                "heldout_per_digit": args.heldout_per_digit, "weights": args.weights,
                "settings": json.loads(args.settings)}
        cmd = [sys.executable, "-m", "bench.finetune", "--child", json.dumps(spec)]
    run = run_child(cmd, env=child_env())
    if run.returncode != 0:
        raise RuntimeError(f"{row['name']} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    result = run.last_json()
    result.update(seed=seed, process_wall=run.wall, cpu_seconds=run.cpu, max_rss=run.max_rss)
    return result


def summarize(row: dict, runs: list[dict], base_runs: dict[int, dict] | None, shipped: bool) -> dict:
    """Medians of one row; the MNIST target (>= 99.4% after) is judged for the shipped weights only."""
    if row["kind"] == "script":
        return {"name": row["name"], "n": len(runs), "seconds": median([r["train_seconds"] for r in runs]),
                "time_to_accuracy": median([r["seconds"] for r in runs]),
                "mnist_after": median([r["test_accuracy"] for r in runs])}
    mnist = [r["mnist_test"]["after"] for r in runs if r["mnist_test"]]
    summary = {
        "name": row["name"], "n": len(runs), "seconds": median([r["seconds"] for r in runs]),
        "writer_before": median([r["writer_before"] for r in runs]),
        "writer_after": median([r["writer_after"] for r in runs]), "writer_after_min": min(r["writer_after"] for r in runs),
        "mnist_before": runs[0]["mnist_test"]["before"] if mnist else None,
        "mnist_after": median(mnist) if mnist else None, "mnist_after_min": min(mnist) if mnist else None,
        "phases": {k: median([r["timings"][k] for r in runs]) for k in runs[0]["timings"]},
        "max_rss_mb": max(r["max_rss"] for r in runs) / 2**20,
    }
    if base_runs:  # paired by seed: each run against the script's training time in the same repeat
        summary["ratio"] = median([r["seconds"] / base_runs[r["seed"]]["train_seconds"] for r in runs])
        summary["ratio_to_accuracy"] = median([r["seconds"] / base_runs[r["seed"]]["seconds"] for r in runs])
    summary["met"] = {
        "held_out": summary["writer_after_min"] >= TARGET_HELD_OUT,
        "mnist": (summary["mnist_after_min"] is not None and summary["mnist_after_min"] >= TARGET_MNIST) if shipped
        else None,
        "time": summary["ratio"] <= TARGET_RATIO if "ratio" in summary else None,
    }
    return summary


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def table(summaries: list[dict]) -> str:
    rows = []
    for s in summaries:
        if "writer_after" not in s:
            rows.append([s["name"], s["n"], "-", "-", f"{100 * s['mnist_after']:.2f}% (its own)", f"{s['seconds']:.1f}",
                         "1.00x", "-"])
            continue
        met = s["met"]
        verdict = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in met.items() if v is not None)
        after = _pct(s["writer_after"]) + (f" (min {_pct(s['writer_after_min'])})" if s["n"] > 1 else "")
        mnist = "-" if s["mnist_after"] is None else (
            f"{100 * s['mnist_before']:.2f} -> {100 * s['mnist_after']:.2f}%"
            + (f" (min {100 * s['mnist_after_min']:.2f})" if s["n"] > 1 else ""))
        rows.append([s["name"], s["n"], _pct(s["writer_before"]), after, mnist, f"{s['seconds']:.1f}",
                     f"{s['ratio']:.2f}x" if "ratio" in s else "-", verdict])
    return format_table(["run", "n", "writer before", "writer after", "MNIST test", "time s", "x script training",
                         "targets met"], rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    writers = [w for w in args.writers.split(",") if w]
    unknown = [w for w in writers if w not in WRITERS]
    if unknown:
        raise SystemExit(f"error: unknown writer(s) {', '.join(unknown)}; known: {', '.join(WRITERS)}")
    rows = [] if args.no_baseline else [{"name": "tutorial script training (baseline)", "kind": "script"}]
    rows += [{"name": f"fine-tune: {w}", "kind": "finetune", "writer": w} for w in writers]
    runs: dict[str, list[dict]] = {row["name"]: [] for row in rows}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "tutorial_train.py"
        script.write_text(TUTORIAL_SCRIPT)
        for seed in range(args.repeats):
            order = rows[seed % len(rows):] + rows[:seed % len(rows)]  # rotate so no row always runs first
            for row in order:
                log(f"repeat {seed + 1}/{args.repeats}: {row['name']} ...")
                result = run_once(row, seed, args, script)
                runs[row["name"]].append(result)
                if row["kind"] == "script":
                    log(f"  training {result['train_seconds']:.1f} s, test accuracy {100 * result['test_accuracy']:.2f}%")
                else:
                    mnist = result["mnist_test"]["after"] if result["mnist_test"] else None
                    log(f"  {result['seconds']:.1f} s, writer {_pct(result['writer_before'])} -> "
                        f"{_pct(result['writer_after'])}, MNIST after {_pct(mnist)}")
    base_runs = None if args.no_baseline else {r["seed"]: r for r in runs[rows[0]["name"]]}
    summaries = [summarize(row, runs[row["name"]], base_runs, shipped=not args.weights) for row in rows]
    info = machine()
    report = {"benchmark": "finetune", "machine": info, "repeats": args.repeats, "data": args.data,
              "weights": args.weights or "shipped default weights",
              "per_digit": args.per_digit, "heldout_per_digit": args.heldout_per_digit,
              "settings": json.loads(args.settings), "targets": {"writer_held_out": TARGET_HELD_OUT,
                                                                 "mnist_test": TARGET_MNIST, "ratio": TARGET_RATIO},
              "writers": {w: WRITERS[w].description for w in writers},
              "seconds": round(time.perf_counter() - started, 1), "summary": summaries, "runs": runs}
    text = (table(summaries) + "\n\n" + machine_line(info) + f"; seeds 0-{args.repeats - 1}, medians; "
            f"{args.per_digit} samples per digit given, {args.heldout_per_digit} per digit judged; x script training "
            "= median of per-seed ratios of the fine-tune's time (samples folder read to MNIST after) to the "
            "tutorial script's training time")
    emit(report, text, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
