"""Your saved samples as the GUI sees them: the store on disk, thumbnails and the current model's predictions.

One instance is shared by the Draw tab (saving, counts, "Teach me") and the My digits tab (grid, accuracy). Reading
and predicting many sample files runs in a BackgroundTask on one torch thread, so the window never freezes; results
arrive in chunks and are tagged with the model they belong to, so a result for a model no longer in use is dropped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from gui.background import BackgroundTask, TaskControl

if TYPE_CHECKING:
    from core.predict import Predictor
    from core.samples import DeletedSamples, Sample, SampleStore

THUMBNAIL_SIDE = 64     # px; the grid shows the drawing as it was saved, scaled down
CHUNK = 32              # sample files read and predicted per forward pass
REPORT_INTERVAL = 0.3   # seconds between partial results sent to the GUI


@dataclass(frozen=True)
class SamplePrediction:
    """What a model read in one sample file: `digit` None when nothing was recognized or the file is unreadable."""

    digit: int | None
    probabilities: tuple[float, ...] | None
    error: str | None = None  # why the file could not be read


@dataclass
class SampleReadings:
    """A chunk of work done in the worker thread, for the model of `generation` (None: thumbnails only)."""

    generation: int
    thumbnails: dict[Path, np.ndarray] = field(default_factory=dict)    # (h, w) uint8, longer side THUMBNAIL_SIDE
    predictions: dict[Path, SamplePrediction] = field(default_factory=dict)


def make_thumbnail(gray: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> the same picture with its longer side THUMBNAIL_SIDE px (anti-aliased)."""
    from PIL import Image

    h, w = gray.shape
    scale = THUMBNAIL_SIDE / max(h, w, 1)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def read_samples(paths: list[Path], predictor: Predictor | None, generation: int,
                 control: TaskControl) -> SampleReadings:
    """Worker thread: thumbnail and (with a predictor) predict each file; partial results go out via control."""
    from core.preprocess import ImageError, load_image, to_gray

    pending, last = SampleReadings(generation), time.monotonic()
    for start in range(0, len(paths), CHUNK):
        if control.should_stop():
            break
        readable, images = [], []
        for path in paths[start:start + CHUNK]:
            try:
                gray = np.clip(to_gray(load_image(path)), 0, 255).astype(np.uint8)  # (H, W)
            except ImageError as exc:
                pending.predictions[path] = SamplePrediction(None, None, str(exc))
                continue
            pending.thumbnails[path] = make_thumbnail(gray)
            readable.append(path)
            images.append(gray)
        if predictor is not None and images:
            for path, prediction in zip(readable, predictor.predict_many(images)):
                probabilities = None if prediction.empty else tuple(prediction.probabilities)
                pending.predictions[path] = SamplePrediction(prediction.digit, probabilities)
        if time.monotonic() - last >= REPORT_INTERVAL and start + CHUNK < len(paths):
            control.report(pending, force=True)  # our own throttle: a dropped report would lose results
            pending, last = SampleReadings(generation), time.monotonic()
    return pending


class SampleLibrary(QObject):
    """The list of samples is read from disk lazily and after every change made through this object; the files
    themselves (thumbnails, predictions) once set_predictor() was called: after the model loaded, or failed to."""

    samples_changed = Signal()      # samples added, deleted, restored or imported
    predictions_changed = Signal()  # thumbnails or predictions arrived, or the model changed

    def __init__(self, root: Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._root = root
        self._store: SampleStore | None = None
        self._samples: list[Sample] | None = None       # oldest first; None until first read
        self.error: str | None = None                   # why the folder could not be listed, if it could not
        self._predictor: Predictor | None = None
        self._generation = 0                            # bumped whenever the model changes
        self._thumbnails: dict[Path, np.ndarray] = {}
        self._predictions: dict[Path, SamplePrediction] = {}
        self._again = False                             # more to read once the running task ends
        self._shut_down = False
        self._reading = False                           # files are read once a model (or none) is set
        self._task = BackgroundTask("reading samples", threads=1, parent=self)  # one thread: the GUI keeps a core
        self._task.progress_changed.connect(self.on_task_progress_changed)
        self._task.succeeded.connect(self.on_task_succeeded)
        self._task.finished.connect(self.on_task_finished)

    # ------------------------------------------------------------ the store and its samples
    @property
    def store(self) -> SampleStore:
        if self._store is None:
            from core.samples import SampleStore

            self._store = SampleStore(self._root)
        return self._store

    @property
    def root(self) -> Path:
        return self.store.root

    def samples(self, digit: int | None = None) -> list[Sample]:
        if self._samples is None:
            self._samples = self._list()
            self._schedule()
        return [s for s in self._samples if digit is None or s.digit == digit]

    def _list(self) -> list[Sample]:
        from core.samples import SamplesError

        try:
            self.error = None
            return self.store.samples()
        except SamplesError as exc:  # an unreadable folder: shown as no samples, with the reason kept
            self.error = str(exc)
            return []

    def counts(self) -> list[int]:
        counts = [0] * 10
        for sample in self.samples():
            counts[sample.digit] += 1
        return counts

    def reload(self) -> None:
        """Read the folder again (after changes made outside this object)."""
        self._samples = self._list()
        self._schedule()
        self.samples_changed.emit()

    def add(self, image: np.ndarray, digit: int, probabilities: list[float] | None = None) -> Path:
        """Save (H, W) uint8 as a sample of `digit`; `probabilities`: what the current model said, if known.
        Raises SamplesError or OSError, and then nothing changed."""
        from core.samples import Sample

        self.samples()  # read the list first, so the new sample is not counted twice
        path = self.store.add(image, digit)
        self._samples.append(Sample(path, digit))
        self._thumbnails[path] = make_thumbnail(np.asarray(image, dtype=np.uint8))
        if probabilities is not None and self._predictor is not None:
            self._predictions[path] = SamplePrediction(int(np.argmax(probabilities)), tuple(probabilities))
        else:
            self._schedule()
        self.samples_changed.emit()
        return path

    def delete(self, samples: list[Sample]) -> DeletedSamples:
        deleted = self.store.delete(samples)
        self.reload()
        return deleted

    def restore(self, deleted: DeletedSamples) -> int:
        restored = self.store.restore(deleted)
        self.reload()
        return restored

    # ------------------------------------------------------------ what the model reads in them
    def set_predictor(self, predictor: Predictor | None) -> None:
        """Predictions are for this model from now on; the old ones are dropped and new ones computed."""
        self._predictor = predictor
        self._reading = True
        self._generation += 1
        self._predictions = {p: r for p, r in self._predictions.items() if r.error}  # unreadable stays unreadable
        self._task.cancel()
        if self._samples is None:
            self._samples = self._list()
        self._schedule()
        self.predictions_changed.emit()

    def predictor(self) -> Predictor | None:
        return self._predictor

    def thumbnail(self, sample: Sample) -> np.ndarray | None:
        return self._thumbnails.get(sample.path)

    def prediction(self, sample: Sample) -> SamplePrediction | None:
        """None while not yet known (being computed, or no model)."""
        return self._predictions.get(sample.path)

    def is_busy(self) -> bool:
        """Still reading or predicting sample files."""
        return self._task.is_running() or (self._reading and bool(self._missing()))

    def accuracy_by_digit(self) -> list[tuple[int, int]]:
        """(read right, predicted so far) per digit, for the current model."""
        tally = [[0, 0] for _ in range(10)]
        for sample in self.samples():
            prediction = self._predictions.get(sample.path)
            if prediction is not None:
                tally[sample.digit][1] += 1
                tally[sample.digit][0] += prediction.digit == sample.digit
        return [(right, total) for right, total in tally]

    def mean_true_probability(self) -> list[float | None]:
        """Per digit, the mean probability the current model gives your samples' true digit (None: unknown)."""
        sums, ns = [0.0] * 10, [0] * 10
        for sample in self.samples():
            prediction = self._predictions.get(sample.path)
            if prediction is not None and prediction.error is None:
                sums[sample.digit] += prediction.probabilities[sample.digit] if prediction.probabilities else 0.0
                ns[sample.digit] += 1
        return [s / n if n else None for s, n in zip(sums, ns)]

    def shutdown(self) -> None:
        """Stop reading and join the thread (the window is closing); nothing starts afterwards."""
        self._shut_down = True
        self._task.shutdown()

    # ------------------------------------------------------------ background reading
    def _missing(self) -> list[Path]:
        if self._samples is None:
            return []
        return [s.path for s in self._samples if s.path not in self._thumbnails and s.path not in self._predictions
                or (self._predictor is not None and s.path not in self._predictions)]

    def _schedule(self) -> None:
        if self._shut_down or not self._reading:
            return
        if self._task.is_running():
            self._again = True  # the running task may miss new samples or be for the old model
            return
        missing = self._missing()
        if missing:
            predictor, generation = self._predictor, self._generation
            self._task.start(lambda control: read_samples(missing, predictor, generation, control))

    def _merge(self, readings: SampleReadings) -> None:
        self._thumbnails.update(readings.thumbnails)
        if readings.generation == self._generation:
            self._predictions.update(readings.predictions)
        else:  # for a model no longer in use; only the unreadable files stay marked as such
            self._predictions.update({p: r for p, r in readings.predictions.items() if r.error})
        self.predictions_changed.emit()

    @Slot(object)
    def on_task_progress_changed(self, readings: SampleReadings) -> None:
        self._merge(readings)

    @Slot(object)
    def on_task_succeeded(self, readings: SampleReadings) -> None:
        self._merge(readings)

    @Slot()
    def on_task_finished(self) -> None:
        again, self._again = self._again, False
        if again or self._missing():
            self._schedule()
        if not self._task.is_running():
            self.predictions_changed.emit()  # "busy" ended
