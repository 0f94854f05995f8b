"""The per-user log file (beside the data folders, rotating): unexpected errors keep their traceback for bug reports."""
from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core import paths

LOG_NAME = "digit-recognizer.log"
MAX_BYTES = 1_000_000  # per file; with BACKUPS, the log never takes more than ~4 MB
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"


class _LogFile(logging.handlers.RotatingFileHandler):
    """A rotating log file that never disturbs the user: a record it cannot write (disk full) is dropped quietly."""

    def handleError(self, record: logging.LogRecord) -> None:  # the default prints a traceback on stderr
        pass

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)  # made by the first record, not before
        return super()._open()


def log_path() -> Path:
    """Where this user's log file is (DIGIT_RECOGNIZER_HOME moves it, like every per-user folder)."""
    return paths.user_data_dir() / "log" / LOG_NAME


@contextmanager
def logging_to_file(level: int = logging.INFO) -> Iterator[Path | None]:
    """Send log records of `level` and above to the log file while inside; the root logger is left as found after.

    Yields the file's path, or None when something other than a regular file is there (a FIFO would block the first
    write). The file and its folder are made by the first record; a record that cannot be written is dropped.
    """
    root = logging.getLogger()
    path = log_path()
    handler: logging.Handler | None = None
    try:
        if not path.exists() or (path.is_file() and not path.is_symlink()):
            handler = _LogFile(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    except OSError:
        handler = None
    previous_level = root.level
    if handler is not None:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.setLevel(level)
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)
    try:
        yield path if handler is not None else None
    finally:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
            root.setLevel(previous_level)
