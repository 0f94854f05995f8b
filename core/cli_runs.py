"""The `runs` command: list the kept training and fine-tuning runs, show one, delete one (core/runs.py's records)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import jsonout
from core.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _fail
from core.cli import _percent as cli_percent
from core.cli_progress import clock_duration
from core.runs import RunError, RunStore, runs_dir

def _percent(x: float | None) -> str:
    return "-" if x is None else cli_percent(x)  # a table cell: "-" where a run has no number


def duration(seconds: float) -> str:
    """12.3 s, 4:05, 1:02:03."""
    return f"{seconds:.1f} s" if seconds < 60 else clock_duration(seconds)


def when(started: str) -> str:
    """"2026-11-26 09:35" from the record's ISO local time."""
    return started[:16].replace("T", " ")


def epochs_text(summary) -> str:
    if summary.kind != "train":
        return "-"
    return f"{summary.epochs_done}/{summary.epochs_planned}" if summary.epochs_planned else str(summary.epochs_done)


def weights_text(summary) -> str:
    """The weights file's name, "NAME (missing)" when it is gone, "-" when the run kept none."""
    if summary.weights is None:
        return "-"
    return Path(summary.weights).name if summary.weights_exists else f"{Path(summary.weights).name} (missing)"


def cmd_runs(args: argparse.Namespace) -> int:
    try:
        if args.runs_command == "show":
            return _show(args)
        if args.runs_command == "delete":
            return _delete(args)
        return _list(args)
    except RunError as exc:
        return _fail(str(exc), EXIT_USAGE if "not a run id" in str(exc) else EXIT_FAILED)


def _list(args: argparse.Namespace) -> int:
    listing = RunStore().list()
    if args.json:
        print(jsonout.dumps({"runs": [s.to_dict() for s in listing.runs],
                             "skipped": [{"path": str(p), "reason": why} for p, why in listing.skipped]}))
        return EXIT_OK
    for path, why in listing.skipped:
        print(f"skipped {why}", file=sys.stderr)
    if not listing.runs:
        print("No runs yet: `python main.py train` or the Train tab records each run.")
        return EXIT_OK
    rows = [("ID", "STARTED", "KIND", "NAME", "EPOCHS", "TEST ACC", "TIME", "DEVICE", "STATUS", "WEIGHTS")]
    rows += [(s.id, when(s.started), s.kind, s.name, epochs_text(s), _percent(s.test_accuracy), duration(s.seconds),
              f"{s.device} {s.precision}", s.status, weights_text(s)) for s in listing.runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    record = RunStore().load(args.id)
    if args.json:
        print(record.to_json(indent=None))
        return EXIT_OK
    print(f"run {record.id}: {record.kind} {record.name}, {record.status} ({record.source})")
    print(f"started {when(record.started)}, took {duration(record.seconds)} on {record.device} ({record.precision}, "
          f"{record.threads} threads)")
    shown = {k: v for k, v in record.settings.items() if not isinstance(v, (dict, list)) or k == "arch_args"}
    print("settings: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for e in record.epochs:
        val = "" if e.get("val_accuracy") is None else f", val accuracy {_percent(e['val_accuracy'])}"
        print(f"epoch {e.get('epoch', 0) + 1}: train loss {e.get('train_loss', float('nan')):.4f}, "
              f"train accuracy {_percent(e.get('train_accuracy'))}{val}")
    metrics = record.metrics
    print(f"test accuracy {_percent(metrics.get('test_accuracy'))}"
          + (f", test loss {metrics['test_loss']:.4f}" if isinstance(metrics.get("test_loss"), float) else ""))
    if isinstance(metrics.get("per_class_accuracy"), list):
        print("per digit: " + "  ".join(f"{d}:{100 * a:.1f}" for d, a in enumerate(metrics["per_class_accuracy"])))
    print(f"curve: {len(record.curve['loss'])} points over {record.curve['samples'][-1] if record.curve['samples'] else 0:,}"
          " samples")
    print(f"weights: {record.weights or 'none kept'}")
    if record.message:
        print(f"note: {record.message}")
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    deletion = RunStore().delete(args.id, with_weights=args.with_weights)
    print(f"deleted the record {deletion.record.name}")
    if deletion.weights_removed is not None:
        print(f"deleted its weights {deletion.weights_removed}")
    elif args.with_weights:
        print(f"kept its weights: {deletion.weights_kept}", file=sys.stderr)
    return EXIT_OK


def add_runs_parser(sub) -> None:
    """Register `runs` (list, show, delete) on the main parser's subcommands."""
    r = sub.add_parser("runs", help="the training and fine-tuning runs kept so far: list, show, delete",
                       description=f"Every training and fine-tuning run (window or command line) is kept as one "
                                   f"JSON record in {runs_dir()}. Without a subcommand: the list, newest first.")
    r.add_argument("--json", action="store_true", help="print one JSON object: the runs' summaries, newest first, and "
                   "any files that were skipped")
    actions = r.add_subparsers(dest="runs_command", metavar="ACTION")
    actions.add_parser("list", help="the runs, newest first (the default)").add_argument(
        "--json", action="store_true", help="print one JSON object: the runs' summaries and any skipped files")
    show = actions.add_parser("show", help="one run's settings, epochs and final numbers")
    show.add_argument("id", metavar="ID", help="the run's id, or enough of its start to be unique")
    show.add_argument("--json", action="store_true", help="print the whole record as JSON, curves included")
    delete = actions.add_parser("delete", help="delete a run's record (its weights file stays unless asked)")
    delete.add_argument("id", metavar="ID", help="the run's id, or enough of its start to be unique")
    delete.add_argument("--with-weights", action="store_true",
                        help="also delete the run's weights file, if it is in the app's weights folder and is not "
                             "the shipped default weights")
    r.set_defaults(func=cmd_runs, runs_command=None)

