""""Teach it my handwriting": fine-tune the weights in use on your samples, in a worker thread, with progress and Stop.

The result is saved as new weights (core.finetune.save_finetuned: never over the shipped defaults or the base file),
and the report gives accuracy before/after on a held-out share of your samples and on the MNIST test set. Stop asks
whether to keep what was learned so far (measured, saved and used, recorded as stopped) or discard it.
"""
from __future__ import annotations

import html
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from gui.background import MACHINE_THREADS, BackgroundTask, TaskControl
from gui.stop_question import StopQuestion

if TYPE_CHECKING:
    from core.finetune import FinetuneProgress, FinetuneResult
    from core.weights import LoadedWeights
    from gui.sample_library import SampleLibrary


class UserStop:
    """The user's Stop, apart from the task's cancel (the window closing). The worker decides once, after the last
    step, whether to save; a Stop asked after that is refused (request() is False) instead of silently ignored."""

    def __init__(self):
        self.event, self.keep = threading.Event(), False
        self._lock, self._decided = threading.Lock(), False

    def request(self, keep: bool) -> bool:
        """The GUI thread: stop before the next step, keeping (True) or discarding what was learned; False when
        the worker had already decided."""
        with self._lock:
            if self._decided:
                return False
            self.keep = keep  # before the event, which the worker thread reads first
            self.event.set()
            return True

    def decide(self) -> tuple[bool, bool]:
        """The worker thread, once: (stop asked, keep asked) as they stand; later requests are refused."""
        with self._lock:
            self._decided = True
            return self.event.is_set(), self.keep


@dataclass
class FinetuneOutcome:
    """What the worker hands back: the core's result and the weights file it saved, loaded."""

    result: FinetuneResult
    weights: LoadedWeights


def run_finetune(base: LoadedWeights, samples_folder: Path, data_dir: str | None, control: TaskControl,
                 user_stop: UserStop | None = None) -> FinetuneOutcome | None:
    """Worker thread: read the samples, fine-tune, save and load the new file back; the run's record (core/runs.py)
    is written at the end: completed, stopped (kept and saved, or nothing saved) or failed once it had begun.
    None when nothing was saved: discarded by the user's Stop, or the window is closing (`control`)."""
    from core.finetune import FinetuneError, finetune, finetune_settings, save_finetuned
    from core.run_recorder import RunRecorder, finetune_metrics
    from core.samples import load_samples
    from core.weights import load_weights

    samples = load_samples(samples_folder, base.normalization)
    settings = finetune_settings(base.arch)  # what finetune() uses without settings, named for the record
    recorder = RunRecorder.for_finetune(settings, base.name, base.arch, "gui")

    def on_progress(progress: FinetuneProgress) -> None:
        recorder.add_step(progress)
        control.report(progress)

    try:
        # download=False: offline users would wait on every mirror; without MNIST the core fine-tunes and says so
        user_stop = user_stop or UserStop()

        def keep() -> bool:  # closing the window never keeps
            return user_stop.keep and not control.should_stop()

        result = finetune(base, samples, settings, data_dir=data_dir, download=False, on_progress=on_progress,
                          should_stop=lambda: user_stop.event.is_set() or control.should_stop(),
                          measure_when_stopped=keep)
        recorder.ran_with(result)  # "auto" became bf16 or fp32
        # the window closing, or Discard (even one clicked as the last step ended): nothing is saved
        asked, keep_asked = user_stop.decide()
        if control.should_stop() or (asked and not keep_asked) or \
                (result.stopped and not result.kept):  # Keep before the first step: nothing was learned
            recorder.finish("stopped", finetune_metrics(result), message="stopped; nothing was saved")
            return None
        stopped = result.stopped  # Keep before the last step: measured, saved and used, recorded as stopped
        try:
            path = save_finetuned(result, base)
        except OSError as exc:
            raise FinetuneError(f"the fine-tuned weights could not be saved ({exc.strerror or exc}"
                                f"{': ' + str(exc.filename) if exc.filename else ''})") from exc
    except Exception as exc:
        if recorder.samples_done:  # it had begun: kept as a failed run with its message
            recorder.finish("failed", message=str(exc))
        raise
    recorder.finish("stopped" if stopped else "completed", finetune_metrics(result), path,
                    message="; ".join(result.notes) or None)
    return FinetuneOutcome(result, load_weights(path))


def percent(value: float | None) -> str:
    return "unknown" if value is None else f"{100 * value:.1f}%"


def describe_outcome(result: FinetuneResult, weights: LoadedWeights) -> str:
    """The before/after report as rich text: held-out share of your samples, MNIST test, the core's notes."""
    lines = []
    held, mnist = result.held_out, result.mnist_test
    if held:  # when None, the core's notes say why nothing was held out
        lines.append(f"<b>Your held-out samples ({held['n']}), never trained on: {percent(held['before'])} "
                     f"\u2192 {percent(held['after'])}</b> read right.")
    lines.append("MNIST test images: unknown." if not mnist else
                 f"MNIST test images: {percent(mnist['before'])} \u2192 {percent(mnist['after'])}.")
    lines += [html.escape(note[:1].upper() + note[1:] + ("" if note.endswith(".") else ".")) for note in result.notes]
    lines.append(f"Saved as {html.escape(weights.name)} in {html.escape(str(weights.path.parent))} "
                 f"({result.samples} samples, {result.seconds:.0f} s); the app now uses it.")
    return "<br>".join(lines)


class FinetunePanel(QWidget):
    """The library's samples folder is trained on; current_weights() gives the base; data_folder() the MNIST folder
    ("" = the default), as the Train tab's."""

    weights_finetuned = Signal(object)     # core.weights.LoadedWeights of the file just saved
    previous_weights_requested = Signal()  # "Use previous weights"
    finetune_ended = Signal()              # after any outcome, once the thread has finished

    def __init__(self, library: SampleLibrary, current_weights: Callable[[], LoadedWeights | None],
                 data_folder: Callable[[], str], parent: QWidget | None = None):
        super().__init__(parent)
        self._library = library
        self._current_weights = current_weights
        self._data_folder = data_folder
        self._task: BackgroundTask | None = None  # made at the first run, when torch is loaded
        self._finetuned: LoadedWeights | None = None
        self._user_stop: UserStop | None = None  # this run's Stop (the task's cancel is the window closing)
        self._stop_refused = False               # a Stop came after the worker had decided to save
        self._stop_question = StopQuestion(      # "keep or discard?", one box at a time
            self, "Stop fine-tuning", "Stop fine-tuning after the current step?",
            "Keep what it learned so far: it is measured on your held-out samples and the MNIST test images, saved "
            "as new weights and used (recorded as stopped). Discard it: nothing is saved, the model in use stays.",
            "&Keep what it learned", "Keep &fine-tuning", self.stop_now)
        self.start_button = QPushButton("Teach it my handwriting")
        self.start_button.setObjectName("finetuneButton")
        self.start_button.setToolTip("Fine-tune the weights in use on your samples (augmented, mixed with MNIST so "
                                     "it does not forget), save them as new weights and use them")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("finetuneStop")
        self.stop_button.setToolTip("Stop after the current step: keep what it learned so far (measured, saved and "
                                    "used, recorded as stopped) or discard it")
        self.stop_button.setEnabled(False)
        self.back_button = QPushButton("Use previous weights")
        self.back_button.setObjectName("finetuneBack")
        self.back_button.hide()
        self.progress = QProgressBar()
        self.progress.setObjectName("finetuneProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m steps")
        self.progress.setTextVisible(False)  # until the first step: "0 / 1 steps" would mean nothing
        self.status = QLabel()
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.result = QLabel()
        self.result.setObjectName("finetuneResult")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.back_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.result)
        self.start_button.clicked.connect(self.on_start_button_clicked)
        self.stop_button.clicked.connect(self.on_stop_button_clicked)
        self.back_button.clicked.connect(self.on_back_button_clicked)

    def is_running(self) -> bool:
        return self._task is not None and self._task.is_running()

    def start(self) -> bool:
        """Fine-tune the weights in use on the samples; False (and why) when it cannot start."""
        base = self._current_weights()
        if self.is_running():
            return False
        if base is None:
            self.result.setText("No model is loaded to start from.")
            return False
        self._library.reload()  # files may have been added outside the app
        if not self._library.samples():
            self.result.setText("No samples yet. Save some first: draw a digit in the Draw tab and press its number "
                                "(or use \u201cTeach me\u201d), or import a folder.")
            return False
        if self._task is None:
            # As many threads as training uses (the Train tab, the CLI): predictions in the window use one
            self._task = BackgroundTask("fine-tuning", threads=MACHINE_THREADS, parent=self)
            self._task.progress_changed.connect(self.on_task_progress_changed)
            self._task.succeeded.connect(self.on_task_succeeded)
            self._task.failed.connect(self.on_task_failed)
            self._task.cancelled.connect(self.on_task_cancelled)
            self._task.finished.connect(self.on_task_finished)
        folder, data_dir = self._library.root, self._data_folder() or None
        user_stop, self._stop_refused = UserStop(), False
        self._user_stop = user_stop
        self._task.start(lambda control: run_finetune(base, folder, data_dir, control, user_stop))
        self.progress.setRange(0, 0)  # busy until the first step: reading samples and MNIST
        self.status.setText("Reading your samples and MNIST\u2026")
        self.result.clear()
        self._set_running(True)
        return True

    def stop(self) -> None:
        """Ask what becomes of what was learned so far: keep it, discard it, or keep fine-tuning (a non-modal box:
        the steps go on meanwhile); stop_box() gives it to tests."""
        if not self.is_running() or self._user_stop is None or self._user_stop.event.is_set():
            return
        self._stop_question.ask()

    def stop_box(self):
        return self._stop_question.box

    def stop_now(self, keep: bool) -> None:
        """Stop before the next step; `keep`: measure, save and use the model fine-tuned so far."""
        if not self.is_running() or self._user_stop is None:
            return
        if not self._user_stop.request(keep):  # it had finished and is being saved: say so, rather than ignore it
            self._stop_refused = True
            self.status.setText("Too late to stop: it had finished and is being saved (\u201cUse previous "
                                "weights\u201d goes back).")
            return
        self.status.setText("Stopping, then measuring what it learned\u2026" if keep else "Stopping\u2026")

    def shutdown(self) -> None:
        self._stop_question.close()
        if self._task is not None:
            self._task.shutdown()

    def set_weights_in_use(self, weights: LoadedWeights | None) -> None:
        """The way back is offered while the weights just fine-tuned are the ones in use."""
        self.back_button.setVisible(weights is not None and weights is self._finetuned)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    # ------------------------------------------------------------ slots
    @Slot()
    def on_start_button_clicked(self) -> None:
        self.start()

    @Slot()
    def on_stop_button_clicked(self) -> None:
        self.stop()

    @Slot()
    def on_back_button_clicked(self) -> None:
        self.previous_weights_requested.emit()

    @Slot(object)
    def on_task_progress_changed(self, progress: FinetuneProgress) -> None:
        self.progress.setTextVisible(True)
        self.progress.setRange(0, progress.total)
        self.progress.setValue(progress.step)
        if self._user_stop is not None and self._user_stop.event.is_set():
            return  # the stop's own line stays (stop_now())
        self.status.setText(f"Step {progress.step}/{progress.total} \u00b7 loss {progress.loss:.4f}")

    @Slot(object)
    def on_task_succeeded(self, outcome: FinetuneOutcome | None) -> None:
        if outcome is None:  # stopped just as it finished: nothing was saved
            self.on_task_cancelled()
            return
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status.setText("Stopped; what it learned is kept." if outcome.result.stopped else
                            "Done: it had finished before the Stop." if self._stop_refused else "Done.")
        self.result.setText(describe_outcome(outcome.result, outcome.weights))
        self._finetuned = outcome.weights
        self.weights_finetuned.emit(outcome.weights)

    @Slot(str)
    def on_task_failed(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.status.setText("Failed.")
        self.result.setText(f"<b>Fine-tuning failed.</b> {html.escape(message)} The model in use is unchanged.")

    @Slot()
    def on_task_cancelled(self) -> None:
        self.progress.setRange(0, 1)
        self.status.setText("Stopped.")
        self.result.setText("Stopped. Nothing was saved; the model in use is unchanged.")

    @Slot()
    def on_task_finished(self) -> None:
        self._stop_question.close()  # the run ended before an answer: the question has nothing left to stop
        self._set_running(False)
        self.finetune_ended.emit()
