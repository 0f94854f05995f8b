"""MNIST's four .gz files from torchvision's mirrors: chunked with progress, timed out, cancellable, MD5-checked, atomic."""
from __future__ import annotations

import hashlib
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from core.atomic_files import atomic_write

TIMEOUT = 20.0                 # seconds a connection or a single read may stall before the mirror counts as down
CHUNK = 64 * 1024              # bytes per read: progress and Cancel are handled between reads
MAX_FILE_BYTES = 64 * 1024**2  # the largest MNIST file is 9.9 MB; a mirror streaming more is refused
USER_AGENT = "digit-recognizer (pytorch/vision mirrors)"

Progress = Callable[[int, int, str], None]  # (done_bytes, total_bytes or 0 when unknown, file_name), per file


class DownloadError(Exception):
    """No mirror gave a file; the message is the reasons, one per distinct failure."""


class DownloadCancelled(Exception):
    """should_stop() said so; nothing half-written is left."""


def mnist_sources() -> tuple[list[str], list[tuple[str, str]]]:
    """(mirror URLs, [(file name, MD5)]) as torchvision has them, read at run time so they stay in step."""
    from torchvision.datasets import MNIST

    return list(MNIST.mirrors), [(name, md5) for name, md5 in MNIST.resources]


_ERRNO = re.compile(r"^\[Errno -?\d+\] ")


def _reason(exc: BaseException) -> str:
    """One short line for why a mirror failed."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}".strip()
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        if isinstance(exc, urllib.error.URLError):
            return str(exc.reason)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    text = _ERRNO.sub("", getattr(exc, "strerror", None) or str(exc)).strip()
    return text or type(exc).__name__


def _fetch(url: str, name: str, md5: str, timeout: float, progress: Progress | None,
           should_stop: Callable[[], bool] | None) -> bytes:
    """The file's bytes, checked against `md5`; raises DownloadCancelled, or the network's own exception."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # timeout: the connect and every read
        total = int(response.headers.get("Content-Length") or 0)
        if total > MAX_FILE_BYTES:
            raise DownloadError(f"the mirror offers {total:,} bytes for {name}, far more than MNIST's")
        digest, parts, done = hashlib.md5(), [], 0
        if progress is not None:
            progress(0, total, name)
        while True:
            if should_stop is not None and should_stop():
                raise DownloadCancelled(f"the download of {name} was cancelled")
            chunk = response.read(CHUNK)
            if not chunk:
                break
            done += len(chunk)
            if done > MAX_FILE_BYTES:
                raise DownloadError(f"the mirror sent more than {MAX_FILE_BYTES:,} bytes for {name}")
            digest.update(chunk)
            parts.append(chunk)
            if progress is not None:
                progress(done, total, name)
    if total and done != total:
        raise DownloadError(f"the connection ended after {done:,} of {total:,} bytes of {name}")
    if digest.hexdigest() != md5:
        raise DownloadError(f"{name}'s checksum (MD5) does not match: damaged or not MNIST's file")
    return b"".join(parts)


def download_mnist(raw_folder: Path, names: list[str] | None = None, progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None, timeout: float = TIMEOUT) -> list[Path]:
    """Download each .gz file (all four, or those whose names start with one of `names`) into `raw_folder`, trying
    the mirrors in order. A file appears only whole and verified (temp file, MD5, os.replace); the folder is made
    only once a file is ready. Raises DownloadError (the mirrors' reasons) or DownloadCancelled."""
    mirrors, resources = mnist_sources()
    written = []
    for file_name, md5 in resources:
        if names is not None and not any(file_name.startswith(n) for n in names):
            continue
        reasons: list[str] = []
        for mirror in mirrors:
            try:
                data = _fetch(f"{mirror}{file_name}", file_name, md5, timeout, progress, should_stop)
            except DownloadCancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - every network failure means "try the next mirror"
                reason = _reason(exc)
                if reason not in reasons:
                    reasons.append(reason)
                continue
            target = raw_folder / file_name
            atomic_write(data, target)
            written.append(target)
            break
        else:
            raise DownloadError("; ".join(reasons) or "no mirror to try")
    return written
