"""The Train tab: settings form, Train/Stop, progress with ETA, the live chart; training runs in a BackgroundTask."""
from __future__ import annotations

import html
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QFrame, QGroupBox, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QVBoxLayout, QWidget)

from core.cli_progress import clock_duration
from core.settings import label_smoothing_note
from gui.background import BackgroundTask, machine_threads
from gui.loss_chart import LossChart
from gui.mnist_download import ensure_mnist
from gui.stop_question import StopQuestion
from gui.train_form import TrainForm
from gui.train_worker import TrainOutcome, TrainProgress, TrainWorker

if TYPE_CHECKING:
    from core.training import EpochResult
    from core.weights import LoadedWeights


class TrainTab(QWidget):
    """One run at a time; the GUI thread only updates widgets, the worker thread runs every batch."""

    weights_trained = Signal(object)  # core.weights.LoadedWeights of the file just saved (also a stopped run kept)
    training_failed = Signal(str)     # one readable sentence; the previous model stays
    training_stopped = Signal(int)    # batches completed before Stop, discarded: nothing saved
    run_recorded = Signal(str)        # the id of the run record just written (core/runs.py)
    training_ended = Signal()         # after any outcome, once the thread has finished

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.form = TrainForm()
        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop after the current batch: keep the model trained so far (tested and "
                                    "saved) or discard it")
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.stats = QLabel("Choose settings and press Train.")
        self.stats.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long text never widens
        self.epochs_label = QLabel()
        self.epochs_label.setWordWrap(True)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chart = LossChart()

        settings_box = QGroupBox("Settings")
        QVBoxLayout(settings_box).addWidget(self.form)
        # The form scrolls on a short screen (800x600, 1024x640) while Train/Stop below it stay in view.
        self.form_scroll = QScrollArea()
        self.form_scroll.setObjectName("trainFormScroll")
        self.form_scroll.setWidget(settings_box)
        self.form_scroll.setWidgetResizable(True)
        self.form_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # as wide as the form plus a vertical scroll bar, so nothing is cut sideways when it scrolls
        self.form_scroll.setMinimumWidth(settings_box.sizeHint().width()
                                         + self.form_scroll.verticalScrollBar().sizeHint().width())
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.stop_button)
        left = QVBoxLayout()
        left.addWidget(self.form_scroll, 1)
        left.addLayout(buttons)
        left.addWidget(self.epochs_label)
        self.stats.setWordWrap(True)  # on a narrow window the line wraps instead of being cut
        right = QVBoxLayout()
        right.addWidget(self.chart, 1)
        right.addWidget(self.progress)
        right.addWidget(self.stats)
        right.addWidget(self.result)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 0)
        layout.addLayout(right, 1)

        self._task = BackgroundTask("training", parent=self)  # train() sets its own thread count
        self._stop_event: threading.Event | None = None  # the user's Stop (see TrainWorker), not the task's cancel
        self._worker: TrainWorker | None = None
        self._stop_question = StopQuestion(  # "keep or discard?", one box at a time
            self, "Stop training", "Stop training after the current batch?",
            "Keep the model trained so far: it is tested on the 10,000 MNIST test images, saved and used like a "
            "finished run (marked as stopped). Discard it: nothing is saved.",
            "&Keep the model trained so far", "Keep &training", lambda keep: self.stop(keep=keep))
        self._batches_done = 0
        self._label_smoothing = 0.0  # the running settings', for the note beside the result
        self.train_button.clicked.connect(self.on_train_button_clicked)
        self.stop_button.clicked.connect(self.on_stop_button_clicked)
        self._task.progress_changed.connect(self.on_task_progress_changed)
        self._task.succeeded.connect(self.on_task_succeeded)
        self._task.failed.connect(self.on_task_failed)
        self._task.cancelled.connect(self.on_task_cancelled)
        self._task.finished.connect(self.on_task_finished)

    def is_training(self) -> bool:
        return self._task.is_running()

    # ------------------------------------------------------------ start, stop, shut down
    def start_training(self) -> bool:
        """Start a run with the form's settings; False (and a message) when they cannot work."""
        if self._task.is_running():
            return False
        from core import paths
        from core.training import TrainingError

        # As many torch threads as the command line uses: cores - 1 trained 1.6x slower on 2 cores, and the window
        # stays fluid anyway (the chart redraws <= 4/s, predictions use one thread; bench/gui_responsiveness.py).
        settings = replace(self.form.settings(), threads=machine_threads())
        try:
            settings.validate()
        except TrainingError as exc:
            self._show_failure(str(exc))
            return False
        if not ensure_mnist(self, settings.data_dir, self.start_training, settings.download):
            return False  # MNIST is being downloaded (gui/mnist_download.py): training starts when it is there
        self._stop_event = threading.Event()
        worker = self._worker = TrainWorker(settings, paths.user_weights_dir(), self._stop_event)

        self.chart.reset()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._batches_done, self._label_smoothing = 0, settings.label_smoothing
        self.chart.set_loss_note(label_smoothing_note(self._label_smoothing))
        self.stats.setText("Loading MNIST…")
        self.epochs_label.clear()
        self.result.clear()
        self._set_running(True)
        self._task.start(worker.run)
        return True

    def stop_training(self) -> None:
        """Ask what becomes of the model trained so far: keep it, discard it, or keep training. The question is a
        non-modal box (training goes on meanwhile), so nothing blocks quitting; stop_box() gives it to tests."""
        if self._stop_event is None or self._stop_event.is_set():
            return
        self._stop_question.ask()

    def stop_box(self) -> QMessageBox | None:
        return self._stop_question.box

    def stop(self, keep: bool) -> None:
        """Stop before the next batch; `keep`: test the model trained so far, save it and use it (a stopped run)."""
        if self._stop_event is None:
            return
        if self._worker is not None:
            self._worker.keep_when_stopped = keep  # before the event, which the worker thread waits on
        self._stop_event.set()
        self.stats.setText("Stopping, then testing the model trained so far…" if keep else "Stopping…")

    @Slot()
    def shutdown(self) -> None:
        """Stop a run and join its thread (the window is closing): no running thread outlives the window, and the
        model trained so far is discarded without asking."""
        self._stop_question.close()
        self._task.shutdown()

    def _set_running(self, running: bool) -> None:
        self.form.setEnabled(not running)
        self.train_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _show_failure(self, message: str) -> None:
        self.result.setText(f"<b>Training failed.</b> {html.escape(message)}")
        self.training_failed.emit(message)

    # ------------------------------------------------------------ slots
    @Slot()
    def on_train_button_clicked(self) -> None:
        self.start_training()

    @Slot()
    def on_stop_button_clicked(self) -> None:
        self.stop_training()

    @Slot(object)
    def on_task_progress_changed(self, report: TrainProgress | EpochResult) -> None:
        if isinstance(report, TrainProgress):
            self._show_progress(report)
        else:
            self._show_epoch(report)

    def _show_progress(self, p: TrainProgress) -> None:
        self._batches_done = p.batches_done
        self.progress.setRange(0, p.total_batches)
        self.progress.setValue(p.batches_done)
        self.chart.add_losses(p.losses, p.accuracies)
        if self._stop_event is not None and self._stop_event.is_set():
            return  # the stop's own line stays (stop())
        # rate and ETA come from the core's wall clock since the first batch: no guess before there is a rate
        rate = f"{p.samples_per_second:,.0f} samples/s" if p.eta_seconds is not None else "… samples/s"
        eta = clock_duration(p.eta_seconds) if p.eta_seconds is not None else "…"
        self.stats.setText("Testing on the 10,000 test images…" if p.batches_done == p.total_batches else
                           f"Epoch {p.epoch + 1}/{p.epochs} · loss {p.loss:.4f} · "
                           f"training accuracy {100 * p.running_accuracy:.1f}% · {rate} · ETA {eta}")

    def _show_epoch(self, epoch: EpochResult) -> None:
        self.chart.add_epoch(self._batches_done, epoch.val_loss, epoch.val_accuracy)
        line = f"Epoch {epoch.epoch + 1}: train loss {epoch.train_loss:.4f}"
        if epoch.train_accuracy is not None:
            line += f", train accuracy {100 * epoch.train_accuracy:.2f}%"
        if epoch.val_accuracy is not None:
            line += f", validation loss {epoch.val_loss:.4f}, accuracy {100 * epoch.val_accuracy:.2f}%"
        lines = [t for t in self.epochs_label.text().split("\n") if t][-4:]  # the last five epochs
        self.epochs_label.setText("\n".join([*lines, line]))

    @Slot(object)
    def on_task_succeeded(self, outcome: TrainOutcome) -> None:
        if outcome.run_id is not None:
            self.run_recorded.emit(outcome.run_id)
        if outcome.weights is not None and outcome.stopped_after is not None:
            self._show_kept(outcome.weights, outcome.stopped_after)
        elif outcome.weights is not None:
            self._show_trained(outcome.weights)
        elif outcome.stopped_after is not None:
            self._show_stopped(outcome.stopped_after)
        else:
            self.stats.setText("Failed.")
            self._show_failure(outcome.failure or "")

    def _show_trained(self, weights: LoadedWeights) -> None:
        accuracy = weights.test_accuracy
        self.stats.setText("Done.")
        note = label_smoothing_note(self._label_smoothing)
        self.result.setText(f"<b>Test accuracy {100 * accuracy:.2f}%</b> on the 10,000 MNIST test images. "
                            f"Saved as {html.escape(weights.name)} in {html.escape(str(weights.path.parent))}. "
                            "The Draw tab now uses these weights." + (f"<br>{html.escape(note)}" if note else ""))
        self.weights_trained.emit(weights)

    def _show_kept(self, weights: LoadedWeights, batches: int) -> None:
        self.stats.setText("Stopped; the model trained so far is kept.")
        self.result.setText(f"Stopped after {batches:,} of {self.progress.maximum():,} batches. "
                            f"<b>Test accuracy {100 * weights.test_accuracy:.2f}%</b> on the 10,000 MNIST test images. "
                            f"Saved as {html.escape(weights.name)} in {html.escape(str(weights.path.parent))}. "
                            "The Draw tab now uses these weights.")
        self.weights_trained.emit(weights)

    def _show_stopped(self, batches: int) -> None:
        self.stats.setText("Stopped.")
        self.result.setText(f"Stopped after {batches:,} of {self.progress.maximum():,} batches. Nothing was saved; "
                            "the Draw tab keeps its weights.")
        self.training_stopped.emit(batches)

    @Slot(str)
    def on_task_failed(self, message: str) -> None:
        self.stats.setText("Failed.")
        self._show_failure(message)

    @Slot()
    def on_task_cancelled(self) -> None:
        self.stats.setText("Stopped.")  # only shutdown() cancels: the window is closing

    @Slot()
    def on_task_finished(self) -> None:
        self._stop_question.close()  # the run ended before an answer: there is nothing left to stop
        self._stop_event, self._worker = None, None
        self._set_running(False)
        self.training_ended.emit()
