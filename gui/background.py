"""The one helper for long work off the GUI thread: a plain function runs in a worker thread, results come back as signals.

The function knows nothing of Qt: it receives a TaskControl to report progress and to ask whether to stop
(Orange3's `concurrent` pattern). The GUI side, BackgroundTask, emits exactly one outcome per run, and only after
the thread has been joined, so an outcome's slot may start the next run at once.

The worker is a Python thread, not a QThread: QThread.wait() waits for the OS thread to exit, and that exit runs
native thread-local clean-up (OpenMP's thread pool of a thread that ran torch) which, rarely, never returned:
the window hung in wait(). Joining a Python thread waits only for its function and Python's own clean-up.
"""
from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

MIN_INTERVAL = 0.1  # seconds between progress signals: <= 10 a second, however often the function reports
GC_INTERVAL_MS = 500  # how often the GUI thread does the collector's work while worker threads run
log = logging.getLogger(__name__)
MACHINE_THREADS = "machine"  # a BackgroundTask's `threads`: torch's default count for this machine, as the CLI uses
_machine_threads: int | None = None  # torch's default count, recorded when the GUI thread took one
_gui_wants_one_thread = False


def one_torch_thread_for_the_gui() -> None:
    """Ask for the GUI thread's torch to run on one thread, from the moment torch is loaded (gui.app.run calls this
    at start; importing torch here would delay the window's first paint by seconds, so MainWindow applies it with
    apply_gui_torch_threads() once its model has loaded, before the GUI thread's first torch op).

    Why: libgomp gives every thread that starts parallel regions its own pool of OpenMP threads, and once the
    process holds more of them than there are cores, it stops spin-waiting between regions and sleeps instead: a
    2-thread training in a worker took 4.4 s instead of 1.9 s when the GUI thread had a pool of its own
    (bench/README.md, GUI section). The GUI thread's torch work is one image at a time, where one thread is as fast.
    """
    global _gui_wants_one_thread
    _gui_wants_one_thread = True
    if "torch" in sys.modules:
        apply_gui_torch_threads()


def apply_gui_torch_threads() -> None:
    """On the GUI thread, before its first torch op: one torch thread there, if one_torch_thread_for_the_gui asked."""
    global _machine_threads
    if not _gui_wants_one_thread or _machine_threads is not None:
        return
    import torch

    _machine_threads = torch.get_num_threads()
    torch.set_num_threads(1)


def restore_torch_threads() -> None:
    """Undo one_torch_thread_for_the_gui (the window has closed): torch's default count again on this thread."""
    global _machine_threads, _gui_wants_one_thread
    _gui_wants_one_thread = False
    if _machine_threads is not None:
        import torch

        torch.set_num_threads(_machine_threads)
        _machine_threads = None


def machine_threads() -> int:
    """How many torch threads heavy work in a worker uses: the machine's default (the command line's count)."""
    import torch

    return torch.get_num_threads() if _machine_threads is None else _machine_threads


class _GuiThreadCollector:
    """Python's cyclic garbage collector runs in whichever thread happens to allocate. In a worker thread it frees
    windows, timers and tasks of the GUI thread caught in reference cycles (lambdas, pyqtgraph), destroying Qt
    objects from the wrong thread: a rare hang (the worker holds the GIL and waits for a Qt lock the GUI thread holds
    while it waits for the GIL). So while any worker runs, automatic collection is off and a GUI-thread timer does
    what it would have done (pyqtgraph's GarbageCollector pattern); the previous state comes back after the last."""

    def __init__(self):
        self._running = 0
        self._was_enabled = True
        self._timer: QTimer | None = None

    def worker_started(self) -> None:  # GUI thread
        if self._running == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
            if self._timer is None:
                self._timer = QTimer()
                self._timer.setInterval(GC_INTERVAL_MS)
                self._timer.timeout.connect(self.collect)
            self._timer.start()
        self._running += 1

    def worker_ended(self) -> None:  # GUI thread, once per worker_started
        self._running -= 1
        if self._running == 0:
            self._timer.stop()
            if self._was_enabled:
                gc.enable()

    @staticmethod
    def collect() -> None:
        """A generation's collection when its count passed its threshold, as the automatic collector does."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return


_collector = _GuiThreadCollector()


class TaskControl:
    """What the function running in the worker thread gets: throttled progress reports and a stop flag."""

    def __init__(self, stop_event: threading.Event, emit: Callable[[Any], None], min_interval: float):
        self._stop_event = stop_event
        self._emit = emit
        self._min_interval = min_interval
        self._last = 0.0

    def should_stop(self) -> bool:
        return self._stop_event.is_set()

    def report(self, progress: Any, force: bool = False) -> None:
        """Send `progress` to the GUI unless one was sent less than MIN_INTERVAL ago (`force`: always)."""
        now = time.monotonic()
        if force or now - self._last >= self._min_interval:
            self._last = now
            self._emit(progress)


def failure_message(exc: BaseException) -> str:
    """Our own errors already read as one plain sentence; anything else is named, and its traceback logged."""
    if type(exc).__module__.startswith("core."):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "It ran out of memory."
    log.error("unexpected error in a background task", exc_info=exc)
    return f"Unexpected error: {type(exc).__name__}: {exc}"


class _Worker(QObject):
    """Lives in the GUI thread; `run` is called in the worker thread, so every signal reaches the GUI queued."""

    progress_changed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()  # always last: the thread's function has returned

    def __init__(self, function: Callable[[TaskControl], Any], stop_event: threading.Event,
                 threads: int | str | None, min_interval: float):
        super().__init__()
        self._function = function
        self._control = TaskControl(stop_event, self.progress_changed.emit, min_interval)
        self._threads = threads

    def run(self) -> None:
        previous = None
        try:
            if self._threads is not None:
                import torch  # only tasks that ask for a thread count use torch

                previous = torch.get_num_threads()
                torch.set_num_threads(machine_threads() if self._threads == MACHINE_THREADS else self._threads)
            self.succeeded.emit(self._function(self._control))
        except BaseException as exc:  # noqa: BLE001 - every failure ends as one message, never a dead thread
            self.failed.emit(failure_message(exc))
        finally:
            if previous is not None:
                import torch

                torch.set_num_threads(previous)  # new threads take the last count set: leave it as found
            self.finished.emit()


class BackgroundTask(QObject):
    """Runs one function at a time in its own thread; owned by a widget, shut down from its window's closeEvent."""

    progress_changed = Signal(object)  # whatever the function reported
    succeeded = Signal(object)         # the function's return value (stop was not asked for)
    cancelled = Signal()               # cancel() was called before the function returned
    failed = Signal(str)               # one readable sentence
    finished = Signal()                # after any of the three, once the thread has ended

    def __init__(self, name: str, threads: int | str | None = None, min_interval: float = MIN_INTERVAL,
                 parent: QObject | None = None):
        super().__init__(parent)
        self._name = name
        # torch intra-op threads in the worker: a count, MACHINE_THREADS, or None (leave torch's setting alone)
        self._threads = threads
        self._min_interval = min_interval
        self._thread: threading.Thread | None = None
        self._worker: _Worker | None = None
        self._stop_event: threading.Event | None = None
        self._outcome: tuple[str, Any] | None = None
        self._collecting_elsewhere = False  # this run holds the automatic collector off (_GuiThreadCollector)

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, function: Callable[[TaskControl], Any]) -> bool:
        """Run `function(control)` in a new thread; False when a run is still going."""
        if self._thread is not None:
            return False
        self._stop_event = threading.Event()
        self._outcome = None
        self._worker = _Worker(function, self._stop_event, self._threads, self._min_interval)
        # daemon: a thread still running when the app exits (it never should) cannot keep the process alive
        self._thread = threading.Thread(target=self._worker.run, name=self._name, daemon=True)
        self._worker.progress_changed.connect(self.on_worker_progress_changed)
        self._worker.succeeded.connect(self.on_worker_succeeded)
        self._worker.failed.connect(self.on_worker_failed)
        self._worker.finished.connect(self.on_thread_finished)
        _collector.worker_started()
        self._collecting_elsewhere = True
        self._thread.start()
        return True

    def _thread_joined(self) -> None:
        """The worker thread has ended: garbage may be collected automatically again (once per run)."""
        if self._collecting_elsewhere:
            self._collecting_elsewhere = False
            _collector.worker_ended()

    def cancel(self) -> None:
        """Ask the function to stop (it checks control.should_stop()); the outcome is then `cancelled`."""
        if self._stop_event is not None:
            self._stop_event.set()

    def shutdown(self) -> None:
        """Cancel and join the thread (the window is closing): no running thread outlives its owner."""
        if self._thread is None:
            return
        self.cancel()
        self._thread.join()
        self._thread_joined()  # on_thread_finished may never run: the window is going

    # ------------------------------------------------------------ worker signals (GUI thread)
    @Slot(object)
    def on_worker_progress_changed(self, progress: Any) -> None:
        if self._stop_event is not None and not self._stop_event.is_set():
            self.progress_changed.emit(progress)

    @Slot(object)
    def on_worker_succeeded(self, result: Any) -> None:
        self._outcome = ("succeeded", result)

    @Slot(str)
    def on_worker_failed(self, message: str) -> None:
        self._outcome = ("failed", message)

    @Slot()
    def on_thread_finished(self) -> None:
        if self._thread is not None:
            self._thread.join()  # its function has returned: this waits at most for Python's thread clean-up
        self._thread_joined()
        stopped = self._stop_event is not None and self._stop_event.is_set()
        outcome = self._outcome
        self._thread = self._worker = self._stop_event = None
        self._outcome = None
        if stopped:
            self.cancelled.emit()
        elif outcome is None:  # the worker's last signals were lost: only when its thread was torn down
            self.failed.emit("The task ended without a result.")
        elif outcome[0] == "succeeded":
            self.succeeded.emit(outcome[1])
        else:
            self.failed.emit(outcome[1])
        self.finished.emit()
