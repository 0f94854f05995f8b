"""Run records: every training and fine-tuning run kept as one JSON file in the per-user runs folder.

A RunRecorder (core/run_recorder.py) collects a run's curve through plain callbacks (no I/O while training) and writes the record once,
when the run ends: completed, stopped or failed. A RunStore lists the records cheaply (newest first, damaged or
foreign files skipped and named), loads one, and deletes one. Records are JSON only: reading one never runs code.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core import jsonout, paths
from core.atomic_files import atomic_write

RECORD_FORMAT = "digit-recognizer-run"
RECORD_VERSION = 1
MAX_CURVE_POINTS = 2000           # a long run's curve is averaged down to this many points (a record stays < ~100 KB)
MAX_RECORD_BYTES = 4 * 2**20      # a larger file in the runs folder is not one of ours
KINDS = ("train", "finetune")
SOURCES = ("gui", "cli")
STATUSES = ("completed", "stopped", "failed")
ID_PATTERN = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{4}")  # local start time and a random tail
CURVE_KEYS = ("samples", "batch", "loss", "accuracy")
INDEX_NAME = ".summaries.json"    # RunStore's cache of the records' summaries (hidden: never listed as a record)
INDEX_FORMAT = "digit-recognizer-run-index-1"
log = logging.getLogger(__name__)


class RunError(Exception):
    """A run record could not be found, read, written or deleted; the message says why in one sentence."""


def runs_dir() -> Path:
    """Where run records live: <per-user data folder>/runs (DIGIT_RECOGNIZER_HOME moves it)."""
    return paths.user_data_dir() / "runs"


@dataclass
class RunRecord:
    """Everything kept about one run; `to_json()` is what the file holds."""

    id: str                  # YYYYmmdd-HHMMSS-xxxx: local start time, random tail; also the file's name
    kind: str                # train | finetune
    source: str              # gui | cli
    status: str              # completed | stopped | failed
    name: str                # what the run made, e.g. "quick-fastnet" or "fine-tuned default_weights.pt"
    started: str             # ISO 8601 local time with its UTC offset
    started_unix: float      # the same instant, for sorting across time zones
    seconds: float           # wall time from start to the record being written (testing and saving included)
    device: str              # what actually ran it: cpu, cuda, mps
    precision: str           # "fp32" or "bf16 autocast", as actually used
    threads: int             # torch intra-op threads
    settings: dict           # TrainSettings as a dict, or the fine-tuning recipe (with its base weights)
    curve: dict              # {"samples", "batch", "loss", "accuracy"}: lists of equal length, <= MAX_CURVE_POINTS
    epochs: list[dict]       # EpochResult fields per completed epoch, plus "samples" seen at its end
    metrics: dict            # test_accuracy, test_loss, per_class_accuracy, val_accuracy (None where unknown), ...
    weights: str | None      # the weights file written, None when nothing was kept
    weights_bytes: int | None
    message: str | None = None  # why a run failed, or a note

    def to_json(self, indent: int | None = None) -> str:
        """The file's text: floats rounded by jsonout's rules, except the settings (a 1e-5 learning rate stays)."""
        data = asdict(self)
        settings = data.pop("settings")
        data = {"format": RECORD_FORMAT, "version": RECORD_VERSION, **jsonout.rounded(data), "settings": settings}
        return json.dumps(data, indent=indent, allow_nan=False, default=str)

    @property
    def test_accuracy(self) -> float | None:
        value = self.metrics.get("test_accuracy")
        return value if isinstance(value, (int, float)) else None


@dataclass
class RunSummary:
    """What the Runs table and `runs` list show, read from a record without keeping its curves."""

    id: str
    kind: str
    source: str
    status: str
    name: str
    started: str
    started_unix: float
    seconds: float
    device: str
    precision: str
    preset: str | None
    arch: str | None
    epochs_done: int
    epochs_planned: int | None
    test_accuracy: float | None
    weights: str | None
    weights_bytes: int | None
    weights_exists: bool
    path: Path = field(compare=False, default=Path())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


@dataclass
class RunListing:
    runs: list[RunSummary]            # newest first
    skipped: list[tuple[Path, str]]   # files in the runs folder that are not readable records, and why


@dataclass
class Deletion:
    record: Path                      # the record file removed
    weights_removed: Path | None      # the weights file removed with it, if asked and allowed
    weights_kept: str | None          # why an asked-for weights file stayed (None when removed or not asked)


# ---------------------------------------------------------------- files
def save_run(record: RunRecord, folder: Path | None = None) -> Path:
    """Write `record` atomically as <runs folder>/<id>.json; RunError if it cannot be written."""
    target = (folder or runs_dir()) / f"{record.id}.json"
    try:
        atomic_write(record.to_json().encode(), target)
    except (OSError, ValueError) as exc:
        raise RunError(f"the run record could not be written to {target} ({getattr(exc, 'strerror', None) or exc})") \
            from exc
    return target


def _read_json(path: Path) -> dict:
    """The record's JSON object, checked to be ours; RunError saying why not."""
    try:
        if not path.is_file():
            raise RunError(f"{path.name} is not a regular file")
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise RunError(f"{path.name} is larger than any run record")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunError(f"{path.name} could not be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RunError(f"{path.name} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise RunError(f"{path.name} is not a run record")
    if not isinstance(data.get("version"), int) or data["version"] > RECORD_VERSION:
        raise RunError(f"{path.name} was written by a newer version of the app")
    checks = [
        (data.get("id") == path.stem and ID_PATTERN.fullmatch(path.stem) is not None, "its id does not match its name"),
        (data.get("kind") in KINDS, "unknown kind"), (data.get("source") in SOURCES, "unknown source"),
        (data.get("status") in STATUSES, "unknown status"),
        (all(isinstance(data.get(k), str) for k in ("name", "started", "device", "precision")), "a text field is not"),
        (all(_is_number(data.get(k)) for k in ("started_unix", "seconds")), "a number is missing"),
        (all(isinstance(data.get(k), dict) for k in ("settings", "metrics", "curve")), "a section is missing"),
        (isinstance(data.get("epochs"), list), "its epochs are missing"),
        (data.get("weights") is None or isinstance(data["weights"], str), "its weights path is not text"),
    ]
    for ok, problem in checks:
        if not ok:
            raise RunError(f"{path.name} is damaged: {problem}")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number_or_none(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _summary(data: dict, path: Path) -> RunSummary:
    settings, metrics = data["settings"], data["metrics"]
    planned = settings.get("epochs") if data["kind"] == "train" else None
    return RunSummary(
        id=data["id"], kind=data["kind"], source=data["source"], status=data["status"], name=data["name"],
        started=data["started"], started_unix=float(data["started_unix"]), seconds=float(data["seconds"]),
        device=data["device"], precision=data["precision"],
        preset=settings.get("preset") if isinstance(settings.get("preset"), str) else None,
        arch=settings.get("arch") if isinstance(settings.get("arch"), str) else None,
        epochs_done=sum(1 for e in data["epochs"] if isinstance(e, dict)),
        epochs_planned=planned if isinstance(planned, int) and not isinstance(planned, bool) else None,
        test_accuracy=_number_or_none(metrics.get("test_accuracy")), weights=data["weights"],
        weights_bytes=data.get("weights_bytes") if isinstance(data.get("weights_bytes"), int) else None,
        weights_exists=False, path=path)


def _record(data: dict, path: Path) -> RunRecord:
    curve = data["curve"]
    lengths = {len(curve.get(k)) if isinstance(curve.get(k), list) else -1 for k in CURVE_KEYS}
    if len(lengths) != 1 or -1 in lengths:
        raise RunError(f"{path.name} is damaged: its curve's lists are missing or of different lengths")
    clean = {k: [_number_or_none(v) for v in curve[k]] for k in CURVE_KEYS}
    for key in ("samples", "batch"):  # counts: whole numbers, as written
        clean[key] = [int(v) if v is not None else None for v in clean[key]]
    names = {f.name for f in fields(RunRecord)}
    values = {k: v for k, v in data.items() if k in names}
    values["curve"] = clean
    return RunRecord(**values)  # a missing field: TypeError, reported as damaged


def _summary_from_index(entry: Any, path: Path) -> RunSummary:
    """A summary kept in the index; TypeError/ValueError when it is not one (the index is then ignored)."""
    data = dict(entry)
    names = {f.name for f in fields(RunSummary)} - {"path"}
    if set(data) != names or not all(isinstance(data[k], str) for k in ("id", "kind", "status", "name", "started")) \
            or not all(_is_number(data[k]) for k in ("started_unix", "seconds")) or data["id"] != path.stem:
        raise ValueError("not a summary")
    return RunSummary(**data, path=path)


class RunStore:
    """The runs folder. Listing reads each record once and remembers its summary by (mtime, size), in memory and in
    an index file beside the records (INDEX_NAME, a cache: any doubt and it is rebuilt), so a refresh -- even the
    first after the app starts -- costs a directory scan and a stat per file, not hundreds of records parsed."""

    def __init__(self, folder: Path | None = None):
        self._folder = folder
        self._cache: dict[Path, tuple[tuple[int, int], RunSummary | str]] = {}
        self._index_read = False

    @property
    def folder(self) -> Path:
        return self._folder or runs_dir()

    def _read_index(self) -> None:
        """Summaries from the index file into the cache (nothing on any problem: the records are the truth)."""
        self._index_read = True
        index = self.folder / INDEX_NAME
        try:
            if not index.is_file() or index.stat().st_size > 16 * MAX_RECORD_BYTES:
                return
            data = json.loads(index.read_text(encoding="utf-8"))
            if data.get("format") != INDEX_FORMAT:
                return
            cache = {}
            for name, entry in data["entries"].items():
                path = self.folder / name
                if path.name != name or not ID_PATTERN.fullmatch(path.stem) or path.suffix != ".json":
                    return
                key = (int(entry["mtime_ns"]), int(entry["size"]))
                cache[path] = (key, _summary_from_index(entry["summary"], path))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return
        self._cache.update(cache)

    def _write_index(self) -> None:
        entries = {path.name: {"mtime_ns": key[0], "size": key[1],
                               "summary": {k: v for k, v in asdict(summary).items() if k != "path"}}
                   for path, (key, summary) in self._cache.items() if isinstance(summary, RunSummary)}
        try:
            text = json.dumps({"format": INDEX_FORMAT, "entries": entries}, allow_nan=False)
            atomic_write(text.encode(), self.folder / INDEX_NAME)
        except (OSError, ValueError) as exc:  # a cache: listing works without it, only slower
            log.info("the runs index could not be written: %s", exc)

    def list(self) -> RunListing:
        """Every readable record, newest first; the other .json files in the folder with the reason each was skipped."""
        runs, skipped, seen, changed = [], [], set(), False
        if not self._index_read:
            self._read_index()
        try:
            entries = sorted(p for p in self.folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except FileNotFoundError:
            entries = []
        except OSError as exc:
            raise RunError(f"the runs folder {self.folder} could not be read ({exc.strerror or exc})") from exc
        for path in entries:
            seen.add(path)
            try:
                stat = path.stat()
            except OSError as exc:
                skipped.append((path, f"{path.name} could not be read ({exc.strerror or exc})"))
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._cache.get(path)
            if cached is None or cached[0] != key:
                try:
                    cached = (key, _summary(_read_json(path), path))
                except RunError as exc:
                    cached = (key, str(exc))
                except (KeyError, TypeError, ValueError) as exc:
                    cached = (key, f"{path.name} is damaged ({type(exc).__name__})")
                self._cache[path] = cached
                changed = True
            if isinstance(cached[1], str):
                skipped.append((path, cached[1]))
            else:
                summary = cached[1]
                summary.weights_exists = summary.weights is not None and os.path.isfile(summary.weights)
                runs.append(summary)
        for gone in set(self._cache) - seen:
            del self._cache[gone]
            changed = True
        if changed and self.folder.is_dir():
            self._write_index()
        runs.sort(key=lambda s: (s.started_unix, s.id), reverse=True)
        return RunListing(runs, skipped)

    def path_of(self, run_id: str) -> Path:
        """The record file of `run_id`, or of the one run whose id starts with it; RunError otherwise."""
        text = run_id.strip()
        if not re.fullmatch(r"[0-9a-f-]{1,20}", text):
            raise RunError(f"{run_id!r:.40} is not a run id (ids look like 20261126-093512-ab12; "
                           "`python main.py runs` lists them)")
        exact = self.folder / f"{text}.json"
        if exact.is_file():
            return exact
        matches = [s.path for s in self.list().runs if s.id.startswith(text)]
        if not matches:
            raise RunError(f"no run {text} in {self.folder}")
        if len(matches) > 1:
            raise RunError(f"{len(matches)} runs start with {text}; give more of the id")
        return matches[0]

    def load(self, run_id: str) -> RunRecord:
        """The whole record, curves included; RunError when it is missing or damaged."""
        path = self.path_of(run_id)
        data = _read_json(path)
        try:
            return _record(data, path)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{path.name} is damaged ({type(exc).__name__}: {exc})") from exc

    def delete(self, run_id: str, with_weights: bool = False) -> Deletion:
        """Remove a run's record; its weights file too when `with_weights`, and only if it lives in the user's weights
        folder and is not the shipped default weights (a file elsewhere may be someone else's)."""
        path = self.path_of(run_id)
        weights = None
        try:
            weights = _read_json(path).get("weights")
        except RunError:
            pass  # a damaged record can still be deleted; its weights then stay
        removed, kept = None, None
        if with_weights:
            removed, kept = _remove_weights(weights)
        try:
            path.unlink()
        except OSError as exc:
            raise RunError(f"the run record {path} could not be deleted ({exc.strerror or exc})") from exc
        self._cache.pop(path, None)
        return Deletion(path, removed, kept)


def _remove_weights(weights: str | None) -> tuple[Path | None, str | None]:
    """(removed file, None) or (None, why it stays)."""
    if not weights:
        return None, "the run kept no weights file"
    path = Path(weights)
    try:
        if not path.is_file():
            return None, f"{path} no longer exists"
        resolved, folder = path.resolve(), paths.user_weights_dir().resolve()
        if resolved == paths.DEFAULT_WEIGHTS.resolve():
            return None, "the shipped default weights are never deleted"
        if folder not in resolved.parents:
            return None, f"{path} is outside the app's weights folder ({folder}), so it is left alone"
        path.unlink()
    except OSError as exc:
        return None, f"{path} could not be deleted ({exc.strerror or exc})"
    return path, None
