"""The shared worker-thread helper: one outcome per run, after the thread ended; cancel; failures as one sentence."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from gui.background import BackgroundTask  # noqa: E402

TIMEOUT = 10_000


def test_result_arrives_after_the_thread_ended_with_progress(qtbot):
    task = BackgroundTask("test", min_interval=0.0)
    reports, threads = [], []
    task.progress_changed.connect(reports.append)

    def work(control):
        threads.append(threading.current_thread())
        for i in range(5):
            control.report(i)
        return "done"

    with qtbot.waitSignal(task.succeeded, timeout=TIMEOUT) as outcome:
        assert task.start(work)
        assert not task.start(work)  # one run at a time
    assert outcome.args == ["done"] and not task.is_running()
    assert reports == [0, 1, 2, 3, 4]
    assert threads[0] is not threading.main_thread()


def test_cancel_stops_the_function_and_reports_cancelled(qtbot):
    task = BackgroundTask("test")
    started = threading.Event()

    def work(control):
        started.set()
        while not control.should_stop():
            started.wait(0.001)
        return "too late"

    succeeded = []
    task.succeeded.connect(succeeded.append)
    task.start(work)
    assert started.wait(5)
    with qtbot.waitSignal(task.cancelled, timeout=TIMEOUT):
        task.cancel()
    qtbot.waitUntil(lambda: not task.is_running(), timeout=TIMEOUT)
    assert succeeded == []


def test_failures_are_one_sentence_and_the_next_run_can_start_from_the_slot(qtbot):
    from core.data import DataError

    task = BackgroundTask("test")
    messages = []

    def fail(control):
        raise DataError("MNIST not found in /nowhere")

    def restart(message):
        messages.append(message)
        if len(messages) == 1:
            assert task.start(lambda control: 1 / 0)  # allowed: the thread has ended by now

    task.failed.connect(restart)
    task.start(fail)
    qtbot.waitUntil(lambda: len(messages) == 2 and not task.is_running(), timeout=TIMEOUT)
    assert messages[0] == "MNIST not found in /nowhere"
    assert messages[1].startswith("Unexpected error: ZeroDivisionError")


def test_shutdown_joins_a_running_thread(qtbot):
    task = BackgroundTask("test")
    started, returned = threading.Event(), threading.Event()

    def work(control):
        started.set()
        while not control.should_stop():
            started.wait(0.001)
        returned.set()

    task.start(work)
    assert started.wait(5)
    task.shutdown()
    assert returned.is_set()  # shutdown() came back only after the function had ended and its thread was joined


def test_garbage_is_collected_on_the_gui_thread_never_in_a_worker(qtbot):
    """Qt objects in reference cycles must not be destroyed from a worker thread (the rare GUI-test hang): while a
    worker allocates heavily, no collection runs in it, the GUI thread's timer collects instead, and the
    collector's state comes back afterwards."""
    import gc
    import weakref

    from PySide6.QtCore import QObject

    collections: list[threading.Thread] = []

    def on_gc(phase, info):
        if phase == "start":
            collections.append(threading.current_thread())

    class Holder(QObject):
        pass

    cyclic = Holder()
    cyclic.me = cyclic  # a GUI-thread QObject only the cyclic collector can free
    gone = weakref.ref(cyclic)
    del cyclic
    task = BackgroundTask("allocating")
    enabled_before = gc.isenabled()
    gc.callbacks.append(on_gc)
    try:
        def work(control):
            junk = []
            while not control.should_stop():
                junk.append([[] for _ in range(1000)])  # ~1000 container objects a pass: gen-0 thresholds pass often
                junk = junk[-50:]
            return len(junk)

        with qtbot.waitSignal(task.cancelled, timeout=TIMEOUT):
            assert task.start(work)
            assert not gc.isenabled()
            qtbot.waitUntil(lambda: gone() is None, timeout=TIMEOUT)  # freed by the GUI thread's timer
            task.cancel()
    finally:
        gc.callbacks.remove(on_gc)
    assert collections and all(t is threading.main_thread() for t in collections)
    assert gc.isenabled() == enabled_before


def test_gui_thread_takes_one_torch_thread_and_workers_keep_the_machine_count(qtbot):
    """As gui.app.run sets it up: predictions on the GUI thread use one thread, training in a worker all of them (a
    GUI thread with a 2-thread OpenMP pool of its own made a worker's training 2.3x slower; bench/README.md)."""
    torch = pytest.importorskip("torch")
    from gui.background import (MACHINE_THREADS, apply_gui_torch_threads, machine_threads,
                                one_torch_thread_for_the_gui, restore_torch_threads)

    default = torch.get_num_threads()
    one_torch_thread_for_the_gui()  # torch is loaded in this process: it applies at once
    try:
        apply_gui_torch_threads()  # a second call (MainWindow's, once the model loaded) changes nothing
        assert torch.get_num_threads() == 1
        assert machine_threads() == default
        seen = {}

        def work(control):
            seen["count"] = torch.get_num_threads()
            return torch.nn.functional.conv2d(torch.ones(2, 1, 8, 8), torch.ones(3, 1, 3, 3)).sum().item()

        task = BackgroundTask("test", threads=MACHINE_THREADS)
        with qtbot.waitSignal(task.succeeded, timeout=TIMEOUT) as outcome:
            task.start(work)
        assert outcome.args == [2 * 3 * 6 * 6 * 9.0] and seen["count"] == default
        assert torch.get_num_threads() == 1  # the worker's count never reached this thread
    finally:
        restore_torch_threads()
    assert torch.get_num_threads() == default and machine_threads() == default
