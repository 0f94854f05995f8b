"""Entry point: `python main.py` opens the desktop app; `python main.py COMMAND ...` runs headless (core/cli.py)."""
from __future__ import annotations

import signal
import sys

INTERRUPTED = 130  # 128 + SIGINT, the shell's status for Ctrl+C


def main(argv: list[str] | None = None) -> int:
    """Run a command or the app with the per-user log file; Ctrl+C gives status 130 and no traceback, at any moment."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        from core.allocator import keep_freed_memory
        from core.logs import logging_to_file

        keep_freed_memory()  # the program's own choice for its whole process: training steps reuse freed memory

        with logging_to_file() as log_file:
            try:
                return _command(argv) if argv else _app(str(log_file) if log_file else None)
            except Exception as exc:  # a bug: its traceback goes to the log, the user reads one line
                import logging

                logging.getLogger("main").error("unexpected error", exc_info=exc)
                where = f"; the details are in {log_file}" if log_file else ""
                print(f"error: unexpected {type(exc).__name__}: {exc}{where}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:  # during start-up, before a command's or the window's own handling of Ctrl+C
        if argv:
            print("error: interrupted", file=sys.stderr)
        return INTERRUPTED


def _command(argv: list[str]) -> int:
    from core.cli import main as cli_main

    return cli_main(argv)


def _app(log_file: str | None) -> int:
    try:
        from gui.app import run
    except ImportError as exc:
        print(f"error: the desktop app needs PySide6 and pyqtgraph ({exc}); "
              "install them with: pip install -e .", file=sys.stderr)
        return 2
    return run(log_file=log_file)


_late_ctrl_c: list[bool] = []  # a Ctrl+C that landed in a clean-up callback (see _remember_late_ctrl_c)


def _remember_late_ctrl_c(unraisable) -> None:
    """sys.unraisablehook: a Ctrl+C that lands while a clean-up callback runs (a weakref's, a __del__) cannot be
    raised there; Python would print it as "Exception ignored in ... KeyboardInterrupt" with a traceback and go on.
    It is remembered instead, and the program ends with status 130 when its work is done. Anything else goes to
    Python's own hook."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        _late_ctrl_c.append(True)
        return
    sys.__unraisablehook__(unraisable)


def _main_then_ignore_ctrl_c() -> int:
    sys.unraisablehook = _remember_late_ctrl_c
    try:
        try:
            status = main()
        finally:
            # the work is done and its status decided: a Ctrl+C while the interpreter cleans up (torch and Qt take
            # a while) would only print a traceback from that clean-up
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:  # one that came as main() returned, just before it could be ignored
        return INTERRUPTED
    return INTERRUPTED if _late_ctrl_c and status == 0 else status


if __name__ == "__main__":
    sys.exit(_main_then_ignore_ctrl_c())
