"""Recording a run as it goes: RunRecorder collects the curve through plain callbacks, then writes one record."""
from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from core.runs import CURVE_KEYS, MAX_CURVE_POINTS, RunError, RunRecord, save_run

log = logging.getLogger(__name__)


def thin_curve(curve: dict, max_points: int = MAX_CURVE_POINTS) -> dict:
    """At most `max_points` points: consecutive batches averaged in equal buckets (loss and accuracy the bucket's
    mean, samples and batch its last), so the shape survives and the last point is the run's last batch."""
    n = len(curve["samples"])
    if n <= max_points:
        return {key: list(curve[key]) for key in CURVE_KEYS}
    out: dict[str, list] = {key: [] for key in CURVE_KEYS}
    for i in range(max_points):
        start, end = i * n // max_points, (i + 1) * n // max_points
        out["samples"].append(curve["samples"][end - 1])
        out["batch"].append(curve["batch"][end - 1])
        for key in ("loss", "accuracy"):
            values = [v for v in curve[key][start:end] if v is not None]
            out[key].append(sum(values) / len(values) if values else None)
    return out


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _device_precision_threads(settings) -> tuple[str, str, int]:
    """What will run a TrainSettings or FinetuneSettings: "cpu"/"cuda"/"mps", "fp32"/"bf16 autocast", threads."""
    import torch

    from core.training import TrainingError, autocast_dtype, select_device

    try:
        device = select_device(settings.device)
        bf16 = autocast_dtype(settings.precision, device) is not None
        # "auto" with native bf16 is settled by a probe in training (TrainResult.precision): until then, "auto"
        precision = "auto" if bf16 and settings.precision == "auto" else "bf16 autocast" if bf16 else "fp32"
        device_name = device.type
    except TrainingError:  # the run will fail with this very message; the record says what was asked
        device_name, precision = settings.device, settings.precision
    return device_name, precision, settings.threads or torch.get_num_threads()


class RunRecorder:
    """One run's record in the making: `add_batch` per batch (appends three numbers), `finish` once at the end.

    Nothing is written until `finish`, so recording never slows training; a record that cannot be written is
    logged and reported by `finish`'s return, never raised into the run."""

    def __init__(self, kind: str, source: str, name: str, settings: dict, device: str, precision: str, threads: int,
                 folder: Path | None = None):
        self.kind, self.source, self.name = kind, source, name
        self.settings, self.device, self.precision, self.threads = settings, device, precision, threads
        self.folder = folder
        self.started = datetime.now().astimezone()
        self._clock = time.perf_counter()
        self.id = f"{self.started:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        self.curve: dict[str, list] = {key: [] for key in CURVE_KEYS}
        self.epochs: list[dict] = []
        self.samples_done = 0
        self.step_samples = 1               # images per fine-tuning step (add_step)
        self.saved: Path | None = None      # where finish() wrote the record
        self.save_error: str | None = None  # why it could not, in one sentence

    @classmethod
    def for_training(cls, settings, source: str, folder: Path | None = None) -> RunRecorder:
        """A recorder for core.training.train(settings): device and precision as train() will choose them."""
        return cls("train", source, f"{settings.preset}-{settings.arch}", settings.to_dict(),
                   *_device_precision_threads(settings), folder)

    @classmethod
    def for_finetune(cls, settings, base_name: str, arch: str, source: str,
                     folder: Path | None = None) -> RunRecorder:
        """A recorder for core.finetune.finetune(base, samples, settings); `add_step` per step."""
        recipe = {"preset": "fine-tuned", "arch": arch, "finetuned_from": base_name, **asdict(settings)}
        recorder = cls("finetune", source, f"fine-tuned {base_name}", recipe, *_device_precision_threads(settings),
                       folder)
        recorder.step_samples = settings.batch_size
        return recorder

    def add_step(self, progress) -> None:
        """core.finetune's FinetuneProgress: each step trains on one batch of `batch_size` images."""
        self.add_batch(progress.step * self.step_samples, progress.loss)

    def ran_with(self, result) -> None:
        """Precision and thread count as a TrainResult or FinetuneResult says they ran ("auto" settles as it goes)."""
        self.precision = "bf16 autocast" if result.precision == "bf16" else "fp32"
        if result.threads:  # None on a GPU: the thread count asked for stays
            self.threads = result.threads

    def add_batch(self, samples_done: int, loss: float, accuracy: float | None = None) -> None:
        """One batch: samples seen so far (all epochs), its loss, the training accuracy so far (None if unknown)."""
        self.samples_done = samples_done
        self.curve["samples"].append(samples_done)
        self.curve["batch"].append(len(self.curve["batch"]) + 1)
        self.curve["loss"].append(_finite_or_none(loss))
        self.curve["accuracy"].append(_finite_or_none(accuracy))

    def add_progress(self, progress) -> None:
        """core.training's BatchProgress, as an on_batch callback would pass it."""
        self.add_batch(progress.samples_done, progress.loss, progress.running_accuracy)

    def add_epoch(self, epoch) -> None:
        """core.training's EpochResult, placed at the samples seen when it ended."""
        self.epochs.append({**asdict(epoch), "samples": self.samples_done, "batch": len(self.curve["batch"])})

    def finish(self, status: str, metrics: dict | None = None, weights: Path | str | None = None,
               message: str | None = None) -> RunRecord:
        """The record of the run as it ended, written to the runs folder (a failed write is logged, see `saved`)."""
        weights_path = Path(weights) if weights is not None else None
        try:
            size = weights_path.stat().st_size if weights_path is not None else None
        except OSError:
            size = None
        record = RunRecord(
            id=self.id, kind=self.kind, source=self.source, status=status, name=self.name,
            started=self.started.isoformat(timespec="seconds"), started_unix=self.started.timestamp(),
            seconds=time.perf_counter() - self._clock, device=self.device, precision=self.precision,
            threads=self.threads, settings=self.settings, curve=thin_curve(self.curve), epochs=self.epochs,
            metrics=dict(metrics or {}), weights=str(weights_path.resolve()) if weights_path else None,
            weights_bytes=size, message=message)
        try:
            self.saved = save_run(record, self.folder)
        except RunError as exc:
            self.save_error = str(exc)
            log.warning("run record %s not written: %s", record.id, exc)
        return record


def training_metrics(result) -> dict:
    """A TrainResult's final numbers for a record (test numbers None when there was no test pass)."""
    test = result.test
    return {"test_accuracy": test.accuracy if test else None, "test_loss": test.loss if test else None,
            "per_class_accuracy": test.per_class_accuracy if test else None, "val_accuracy": result.val_accuracy,
            "epochs_completed": len(result.epochs), "train_seconds": result.seconds}


def finetune_metrics(result) -> dict:
    """A FinetuneResult's numbers: MNIST test and held-out accuracy after (and before) fine-tuning."""
    held, mnist = result.held_out or {}, result.mnist_test or {}
    return {"test_accuracy": mnist.get("after"), "test_accuracy_before": mnist.get("before"),
            "held_out_accuracy": held.get("after"), "held_out_before": held.get("before"),
            "held_out_n": held.get("n"), "samples": result.samples, "steps_done": result.steps_done,
            "train_seconds": result.seconds}
