"""The training worker: a QObject in a QThread running core.training.train; callbacks become throttled signals."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

if TYPE_CHECKING:
    from core.training import BatchProgress, EpochResult, TrainSettings

MIN_INTERVAL = 0.1  # seconds between progress signals: <= 10 updates/s however fast the batches are


@dataclass
class TrainProgress:
    """One throttled report; `losses` holds every batch loss since the previous report, in order."""

    epoch: int               # 0-based
    epochs: int
    batches_done: int        # over all epochs
    total_batches: int
    loss: float              # the latest batch's
    samples_per_second: float
    losses: list[float]


def new_weights_path(folder: Path, settings: TrainSettings) -> Path:
    """A fresh file name in `folder`, e.g. quick-digitnet-20250101-120000.pt (never an existing file)."""
    stem = f"{settings.preset}-{settings.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / f"{stem}.pt", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.pt"
    return path


class TrainWorker(QObject):
    """Lives in a worker thread; the GUI talks to it only through its signals and the thread-safe stop()."""

    progress_changed = Signal(object)   # TrainProgress
    epoch_finished = Signal(object)     # core.training.EpochResult
    training_finished = Signal(object)  # core.weights.LoadedWeights, read back from the saved file
    training_stopped = Signal(int)      # batches completed before Stop; nothing was saved
    training_failed = Signal(str)       # one readable sentence; nothing was saved
    finished = Signal()                 # always the last signal: the thread may quit

    def __init__(self, settings: TrainSettings, weights_dir: Path, min_interval: float = MIN_INTERVAL):
        super().__init__()
        self._settings = settings
        self._weights_dir = Path(weights_dir)
        self._min_interval = min_interval
        self.stop_event = threading.Event()  # set by the GUI thread (even after this object is gone); read per batch
        self._pending: list[float] = []    # batch losses not yet reported
        self._rates: list[float] = []      # their samples/s, averaged per report (single batches are noisy)
        self._latest: BatchProgress | None = None
        self._last_emit = 0.0
        self._batches_done = 0

    def stop(self) -> None:
        """Ask the training to stop before its next batch (thread-safe)."""
        self.stop_event.set()

    @Slot()
    def run(self) -> None:
        try:
            self._train_and_save()
        except MemoryError:
            self.training_failed.emit("Training ran out of memory: try a smaller batch size or a narrower network.")
        except Exception as exc:  # anything the core did not foresee still ends as one message, never a dead thread
            self.training_failed.emit(f"Training failed unexpectedly: {type(exc).__name__}: {exc}")
        finally:
            self.finished.emit()

    def _train_and_save(self) -> None:
        from core.data import DataError
        from core.training import TrainingError, train
        from core.weights import WeightsError, load_weights, save_weights

        try:
            result = train(self._settings, on_batch=self._on_batch, on_epoch=self._on_epoch,
                           should_stop=self.stop_event.is_set)
        except (DataError, TrainingError) as exc:
            self._flush()
            self.training_failed.emit(str(exc))
            return
        self._flush()
        if result.stopped:
            self.training_stopped.emit(self._batches_done)
            return
        path = new_weights_path(self._weights_dir, self._settings)
        try:
            save_weights(path, result.model, self._settings.arch, result.arch_args, result.normalization,
                         self._settings.to_dict(), result.metrics)
            weights = load_weights(path)  # the Draw tab gets exactly what the file holds
        except OSError as exc:
            self.training_failed.emit(f"Training finished (test accuracy {100 * result.test.accuracy:.2f}%), but the "
                                      f"weights could not be saved to {path}: {exc.strerror or exc}.")
            return
        except WeightsError as exc:
            self.training_failed.emit(f"The weights were saved but could not be read back: {exc}")
            return
        self.training_finished.emit(weights)

    # ------------------------------------------------------------ core callbacks (worker thread)
    def _on_batch(self, progress: BatchProgress) -> None:
        self._pending.append(progress.loss)
        self._rates.append(progress.samples_per_second)
        self._latest = progress
        self._batches_done = progress.epoch * progress.batches_per_epoch + progress.batch + 1
        now = time.monotonic()
        if now - self._last_emit >= self._min_interval or self._batches_done == progress.total_batches:
            self._flush(now)

    def _on_epoch(self, result: EpochResult) -> None:
        self._flush()  # the chart places the epoch's point after all of its batches
        self.epoch_finished.emit(result)

    def _flush(self, now: float | None = None) -> None:
        """Emit the latest values and every loss since the last report (nothing if there is none)."""
        if not self._pending or self._latest is None:
            return
        p = self._latest
        self.progress_changed.emit(TrainProgress(p.epoch, self._settings.epochs, self._batches_done, p.total_batches,
                                                 p.loss, sum(self._rates) / len(self._rates), self._pending))
        self._pending, self._rates = [], []
        self._last_emit = time.monotonic() if now is None else now
