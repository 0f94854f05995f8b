"""The training work for the Train tab's BackgroundTask: core.training.train, then the save and the run's record;
throttled progress."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.training import BatchProgress, EpochResult, TrainSettings
    from core.weights import LoadedWeights
    from gui.background import TaskControl

MIN_INTERVAL = 0.1  # seconds between progress signals: <= 10 updates/s however fast the batches are


@dataclass
class TrainProgress:
    """One throttled report; `losses` holds every batch loss since the previous report, in order."""

    epoch: int               # 0-based
    epochs: int
    batches_done: int        # over all epochs
    total_batches: int
    loss: float              # the latest batch's
    running_accuracy: float  # training accuracy over the epoch so far
    samples_per_second: float  # samples done over the wall time since training began
    eta_seconds: float | None  # None until there is a rate to estimate from
    losses: list[float]
    accuracies: list[float]  # every batch's training accuracy, in step with `losses`


@dataclass
class TrainOutcome:
    """How a run ended, when it ended as planned (anything unforeseen is raised to the BackgroundTask)."""

    weights: LoadedWeights | None = None  # saved, then read back from the file
    stopped_after: int | None = None      # batches completed before Stop; weights only if kept
    failure: str | None = None            # one readable sentence; nothing saved
    run_id: str | None = None             # the run record written (core/runs.py), None if none was


class TrainWorker:
    """Runs in a BackgroundTask's thread (see TrainTab): reports go through TaskControl, the outcome is returned."""

    def __init__(self, settings: TrainSettings, weights_dir: Path, stop_event: threading.Event,
                 min_interval: float = MIN_INTERVAL):
        self._settings = settings
        self._weights_dir = Path(weights_dir)
        # Stop is not the task's cancel(): a run stopped by the user still returns how far it got, and a Stop
        # pressed while the file is being written cannot hide a saved file
        self._stop_event = stop_event
        self._min_interval = min_interval
        self._control: TaskControl | None = None
        self._pending: list[float] = []     # batch losses not yet reported
        self._accuracies: list[float] = []  # their batches' accuracies
        self._latest: BatchProgress | None = None
        self._last_emit = 0.0
        self._batches_done = 0
        # set by the GUI thread before it sets the stop event (which orders the two): test and save what was trained
        self.keep_when_stopped = False
        self._recorder = None

    def run(self, control: TaskControl) -> TrainOutcome:
        """The BackgroundTask's function: TrainProgress and EpochResult reports, in order, then the outcome."""
        self._control = control
        try:
            return self._train_and_save()
        except MemoryError:
            return self._failed("Training ran out of memory: try a smaller batch size or a narrower network.")

    def _should_stop(self) -> bool:
        return self._stop_event.is_set() or (self._control is not None and self._control.should_stop())

    def _train_and_save(self) -> TrainOutcome:
        from core.data import DataError
        from core.run_recorder import RunRecorder, training_metrics
        from core.training import TrainingError, train
        from core.weights import WeightsError, load_weights, save_training_result

        recorder = self._recorder = RunRecorder.for_training(self._settings, "gui")
        try:
            result = train(self._settings, on_batch=self._on_batch, on_epoch=self._on_epoch,
                           should_stop=self._should_stop)
        except (DataError, TrainingError) as exc:
            self._flush()
            return self._failed(str(exc))
        self._flush()
        recorder.ran_with(result)  # the precision and threads training settled on
        metrics, stem = training_metrics(result), f"{self._settings.preset}-{self._settings.arch}"
        if result.stopped:
            metrics["stopped"] = True
            if not (self.keep_when_stopped and self._test_stopped_model(result, metrics)):
                return self._outcome(recorder.finish("stopped", metrics), stopped_after=self._batches_done)
            stem += "-stopped"
        file_metrics = result.metrics if not result.stopped else \
            {**result.metrics, "test_accuracy": metrics["test_accuracy"], "stopped": True}
        try:  # a new file in the weights folder, never over another one
            saved = save_training_result(result.model, self._settings.arch, result.arch_args, result.normalization,
                                         self._settings.to_dict(), file_metrics, stem=stem, folder=self._weights_dir)
        except WeightsError as exc:
            done = "Stopped" if result.stopped else "Training finished"
            return self._failed(f"{done} (test accuracy {100 * metrics['test_accuracy']:.2f}%), but {exc}.", metrics)
        record = recorder.finish("stopped" if result.stopped else "completed", metrics, saved.path)
        try:
            weights = load_weights(saved.path)  # the Draw tab gets exactly what the file holds
        except WeightsError as exc:
            return self._outcome(record, failure=f"The weights were saved to {saved.path} but could not be read "
                                                 f"back: {exc}")
        return self._outcome(record, weights=weights, stopped_after=self._batches_done if result.stopped else None)

    def _test_stopped_model(self, result, metrics: dict) -> bool:
        """The model trained so far, on the MNIST test set (into `metrics`); False when the window is closing."""
        from core.data import DataError, load_mnist
        from core.inference import evaluate
        from core.training import torch_threads

        cancelled = self._control.should_stop if self._control is not None else None
        if cancelled is not None and cancelled():
            return False
        s = self._settings
        try:
            with torch_threads(s.threads):  # as many as training used
                data = load_mnist(s.data_dir, val_fraction=0.0, download=False)  # train() has just read it
                test = evaluate(result.model, data.test_images, data.test_labels, result.normalization,
                                should_stop=cancelled)
        except DataError:  # the files went away meanwhile: kept as a stopped run without weights
            return False
        if test is None:
            return False
        metrics.update(test_accuracy=test.accuracy, test_loss=test.loss, per_class_accuracy=test.per_class_accuracy)
        return True

    def _failed(self, message: str, metrics: dict | None = None) -> TrainOutcome:
        """A run that had begun is kept as failed with its message; one that never trained a batch is no run."""
        record = None
        if self._recorder is not None and self._recorder.samples_done:
            record = self._recorder.finish("failed", metrics or {"epochs_completed": len(self._recorder.epochs)},
                                           message=message)
        return self._outcome(record, failure=message)

    def _outcome(self, record, **fields) -> TrainOutcome:
        saved = record is not None and self._recorder is not None and self._recorder.saved is not None
        return TrainOutcome(run_id=record.id if saved else None, **fields)

    # ------------------------------------------------------------ core callbacks (worker thread)
    def _on_batch(self, progress: BatchProgress) -> None:
        self._recorder.add_progress(progress)
        self._pending.append(progress.loss)
        self._accuracies.append(progress.accuracy)
        self._latest = progress
        self._batches_done = progress.batches_done
        now = time.monotonic()
        if now - self._last_emit >= self._min_interval or self._batches_done == progress.total_batches:
            self._flush(now)

    def _on_epoch(self, result: EpochResult) -> None:
        self._recorder.add_epoch(result)
        self._flush()  # the chart places the epoch's point after all of its batches
        self._control.report(result, force=True)

    def _flush(self, now: float | None = None) -> None:
        """Report the latest values and every loss since the last report (nothing if there is none)."""
        if not self._pending or self._latest is None:
            return
        p = self._latest
        # forced: this class throttles, and must know a report went out before it drops the losses it holds
        rated = p.elapsed > 0
        self._control.report(TrainProgress(p.epoch, self._settings.epochs, self._batches_done, p.total_batches,
                                           p.loss, p.running_accuracy, p.samples_per_second if rated else 0.0,
                                           p.eta_seconds if rated else None, self._pending, self._accuracies),
                             force=True)
        self._pending, self._accuracies = [], []
        self._last_emit = time.monotonic() if now is None else now
