"""Atomic file writes (no torch, so the samples store stays cheap): temp file beside the target, fsync, then rename
or hard link, so a failed write never destroys the last good file and "create if absent" never replaces one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(data: bytes, target: Path, exclusive: bool = False) -> None:
    """Temp file beside `target`, fsync, then os.replace (or, if `exclusive`, a hard link that fails with
    FileExistsError rather than replace anything). The temp file goes on any failure, even Ctrl+C."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, file_mode(target))  # mkstemp makes 0600; our files are meant to be shared
        if not exclusive:
            os.replace(tmp_name, target)
            return
        try:
            os.link(tmp_name, target)  # atomic "create if absent"
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            if os.path.lexists(target):
                raise FileExistsError(target) from None
            os.replace(tmp_name, target)
            return
        os.unlink(tmp_name)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def file_mode(path: Path) -> int:
    """The replaced file's permissions, or the usual ones for a new file (0666 minus the umask)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
