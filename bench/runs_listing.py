"""Listing run records: the Runs tab's refresh with hundreds of long runs, vs reading every record whole.

Run from the repository root:  python -m bench.runs_listing [--runs 500] [--repeats 5] [--json -]

Writes --runs records, each a long run whose curve was thinned to the full 2,000 points (the largest a record gets),
into a temporary per-user folder, then times (median of --repeats): the baseline, json.loads of every file (what a
list without a cache costs); RunStore().list() with no index file (the very first listing); from a fresh store that
finds the index (the first refresh after the app starts); the same store again (every later refresh: a directory
scan and a stat per file); and loading one record with its curves (a click in the table).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench._common import emit, format_table, log, machine, machine_line, median


def write_records(count: int) -> None:
    from core.run_recorder import RunRecorder

    for i in range(count):
        recorder = RunRecorder("train", "cli", f"quick-fastnet-{i}", {"preset": "quick", "arch": "fastnet",
                                                                      "epochs": 12}, "cpu", "fp32", 2)
        recorder.id = f"20260101-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}-{i % 65536:04x}"
        for b in range(5000):  # thinned to MAX_CURVE_POINTS when written
            recorder.add_batch(64 * (b + 1), 2.3 / (1 + b / 50), min(1.0, b / 5000 + 0.1))
        recorder.finish("completed", {"test_accuracy": 0.99, "per_class_accuracy": [0.99] * 10})


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="records to list (default 500)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per case; the median is shown (default 5)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON ('-': stdout)")
    args = parser.parse_args()
    os.environ["DIGIT_RECOGNIZER_HOME"] = tempfile.mkdtemp(prefix="bench-runs-")
    from core.runs import INDEX_NAME, RunStore, runs_dir

    log(f"writing {args.runs} records…")
    write_records(args.runs)
    files = sorted(runs_dir().glob("*.json"))
    size = sum(p.stat().st_size for p in files)

    def read_all() -> None:
        for path in files:
            json.loads(Path(path).read_text())

    index = runs_dir() / INDEX_NAME

    def list_without_index() -> None:
        index.unlink(missing_ok=True)
        RunStore().list()  # parses every record, then writes the index

    store = RunStore()
    store.list()
    newest = store.list().runs[0].id
    cases = {
        "baseline: json.loads of every record": timed(read_all, args.repeats),
        "list, no index yet (the very first time)": timed(list_without_index, args.repeats),
        "list, fresh store with the index (app start)": timed(lambda: RunStore().list(), args.repeats),
        "list, same store (later refreshes)": timed(store.list, args.repeats),
        "load one record with its curves": timed(lambda: store.load(newest), args.repeats),
    }
    info = machine()
    rows = [[name, f"{1000 * seconds:.1f}"] for name, seconds in cases.items()]
    text = "\n".join([f"{args.runs} run records, {size / len(files) / 1000:.0f} KB each on average",
                      machine_line(info), format_table(["case", "median ms"], rows)])
    emit({"runs": args.runs, "mean_record_bytes": size / len(files), "machine": info,
          "median_ms": {name: 1000 * seconds for name, seconds in cases.items()}}, text, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
