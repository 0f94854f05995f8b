"""Starts the desktop app: QApplication and its names (for QSettings), the main window, Ctrl+C, unexpected errors."""
from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication

from gui.background import one_torch_thread_for_the_gui, restore_torch_threads
from gui.main_window import APP_TITLE, MainWindow

QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl+C in the terminal; `kill` and session logout
log = logging.getLogger(__name__)


def run(argv: list[str] | None = None, log_file: str | None = None) -> int:
    """Show the main window and run the event loop; returns the exit status (128 + signal number after Ctrl+C)."""
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setOrganizationName("digit-recognizer")
    app.setApplicationName("digit-recognizer")
    app.setApplicationDisplayName(APP_TITLE)
    one_torch_thread_for_the_gui()  # workers train at full speed (gui/background.py)
    try:
        with _quit_on_signals(app), _errors_logged(log_file) as windows:
            window = MainWindow()
            windows.append(window)
            window.show()  # the model loads in a thread after this first paint
            return app.exec()
    finally:
        restore_torch_threads()


@contextmanager
def _quit_on_signals(app: QApplication) -> Iterator[None]:
    """Ctrl+C and SIGTERM close the window as File > Quit does (settings kept, threads joined) and end the event loop
    with 128 + the signal number, the shell's convention.

    Python runs a signal handler only between bytecodes, and raises KeyboardInterrupt from whichever slot happens to
    run next; so the handler does nothing, and the signal's number, written by Python to a socket (set_wakeup_fd),
    wakes the event loop, which closes the window. A signal during start-up waits for the event loop the same way.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_handlers = {number: signal.signal(number, lambda *_: None) for number in QUIT_SIGNALS}
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def on_notifier_activated() -> None:
        try:
            received = reader.recv(64)
        except OSError:
            return
        numbers = [n for n in received if n in QUIT_SIGNALS]
        if numbers:
            notifier.setEnabled(False)  # a second Ctrl+C while the threads are joined changes nothing
            QApplication.closeAllWindows()
            app.exit(128 + numbers[0])

    notifier.activated.connect(on_notifier_activated)
    try:
        yield
    finally:
        notifier.setEnabled(False)
        signal.set_wakeup_fd(previous_fd)
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
        reader.close()
        writer.close()


@contextmanager
def _errors_logged(log_file: str | None) -> Iterator[list[MainWindow]]:
    """An exception no slot caught goes to the log with its traceback; the user sees one sentence, not a traceback."""
    windows: list[MainWindow] = []
    previous_hook = sys.excepthook
    where = f" The details are in {log_file}." if log_file else ""

    def on_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("uncaught exception in the desktop app", exc_info=(kind, exc, tb))
        sentence = f"Unexpected error: {kind.__name__}: {exc}.{where}"
        print(f"error: {sentence}", file=sys.stderr)
        if windows and windows[0].isVisible():
            windows[0].show_message(f"{sentence} What you were doing may not have finished.")

    sys.excepthook = on_uncaught
    try:
        yield windows
    finally:
        sys.excepthook = previous_hook
