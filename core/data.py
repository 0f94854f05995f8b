"""MNIST as whole uint8 tensors: find, download, validate, split (stratified) and batch."""
from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from core import paths
from core.mnist_download import TIMEOUT, DownloadCancelled, Progress, download_mnist, mnist_sources

# torchvision's file names; the ".gz" variants are accepted too.
FILE_NAMES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILE_NAMES = FILE_NAMES[True] + FILE_NAMES[False]
# How many images each split must hold (train, test). Tests with tiny synthetic files change it.
EXPECTED_COUNTS = {True: 60_000, False: 10_000}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
MAX_IDX_ITEMS = 1_000_000  # bounds what a header may ask for when no count is expected (MNIST: 60,000)


class DataError(Exception):
    """MNIST could not be found, downloaded or read; the message says what to do."""


@dataclass
class MnistData:
    """The three splits as uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    folder: Path


def _candidate_folders(root: Path) -> list[Path]:
    # torchvision layout first (ROOT/MNIST/raw), then the files directly in ROOT or ROOT/raw.
    return [root / "MNIST" / "raw", root, root / "raw"]


def _find_file(root: Path, name: str) -> Path | None:
    for folder in _candidate_folders(root):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _refuse_special_files(root: Path) -> None:
    """DataError for a folder, FIFO or device where an IDX file belongs: reading or downloading onto it would hang."""
    for folder in _candidate_folders(root):
        for name in ALL_FILE_NAMES:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.exists() and not candidate.is_file():
                    raise DataError(f"{candidate} is not a regular file (a folder, pipe or device); "
                                    "MNIST's files must be ordinary files")


def find_files(root: Path) -> dict[str, Path] | None:
    """The four IDX files under `root` (any accepted layout), or None if any is missing."""
    found = {name: _find_file(root, name) for name in ALL_FILE_NAMES}
    return None if any(p is None for p in found.values()) else found


def _download(root: Path, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
              timeout: float = TIMEOUT) -> None:
    """The missing files into root/MNIST/raw (core.mnist_download: mirrors, MD5, progress, cancel)."""
    missing = [name for name in ALL_FILE_NAMES if _find_file(root, name) is None]
    download_mnist(root / "MNIST" / "raw", missing, progress, should_stop, timeout)


_URLOPEN = re.compile(r"^<urlopen error (.*)>$")
_ERRNO = re.compile(r"^\[Errno -?\d+\] ")


def _failure_reason(exc: BaseException) -> str:
    """Why a download failed, in one line: the deepest exception in the chain that says something (a wrapper's
    reason may sit on later lines: "Error downloading x.gz:\n<urlopen error [Errno -2] Name or ...>")."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for link in reversed(chain):
        reasons: list[str] = []
        for line in str(link).splitlines():
            line = _ERRNO.sub("", _URLOPEN.sub(r"\1", line.strip()))
            if line and not line.endswith(":") and line not in reasons:  # "...:" lines only introduce the next
                reasons.append(line)
        if reasons:
            return "; ".join(reasons[:2])
    first = str(chain[0]).strip().splitlines()
    return f"{type(chain[0]).__name__}: {first[0].rstrip(':')}" if first else type(chain[0]).__name__


def _missing_message(root: Path, reason: str) -> str:
    """One line: where we looked, why nothing was downloaded, which four files to get from where, where to put them."""
    try:
        mirrors = mnist_sources()[0]
    except Exception:  # noqa: BLE001 - torchvision missing or broken: the message still says what to put where
        mirrors = []
    source = f" from {' or '.join(mirrors)}" if mirrors else ""
    raw = root / "MNIST" / "raw"
    return (f"MNIST not found in {root} (looked in {raw} and {root}); {reason}. "
            f"Get the four files {', '.join(f'{n}.gz' for n in ALL_FILE_NAMES)}{source} and put them in {raw} "
            "(as .gz or unpacked), or choose another data folder.")


def _new_folders(root: Path) -> list[Path]:
    """The folders a download into `root` would create (torchvision's ROOT/MNIST/raw and any missing parents),
    deepest first."""
    return [p for p in (root / "MNIST" / "raw", root / "MNIST", root, *root.parents) if not p.exists()]


def locate(root: Path | str | None = None, download: bool = True, *, progress: Progress | None = None,
           should_stop: Callable[[], bool] | None = None, timeout: float = TIMEOUT) -> dict[str, Path]:
    """Find the four files, downloading the missing ones if `download` (online users). `progress(done_bytes,
    total_bytes, file_name)` follows each file; `should_stop()` cancels (DataError, nothing half-written left)."""
    root = Path(root).expanduser() if root else paths.mnist_dir()
    try:
        (root / "MNIST" / "raw" / ALL_FILE_NAMES[0]).exists()  # the longest path looked up below
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise DataError(f"the data folder {root} cannot be used: {exc.strerror or exc}; choose another "
                        "data folder") from exc
    found = find_files(root)
    if found is not None:
        return found
    _refuse_special_files(root)
    reason = "download not attempted"
    if download:
        new_folders = _new_folders(root)
        cancelled = False
        try:
            _download(root, progress=progress, should_stop=should_stop, timeout=timeout)
        except DownloadCancelled:
            cancelled = True
        except Exception as exc:  # network errors come in many types; all mean "not downloaded"
            reason = f"download failed: {_failure_reason(exc)}"
        found = None if cancelled else find_files(root)
        if found is not None:
            return found
        for folder in new_folders:  # only what this attempt made, and only while still empty
            try:
                folder.rmdir()
            except OSError:
                pass
        if cancelled:
            raise DataError(f"the MNIST download into {root} was cancelled")
    raise DataError(_missing_message(root, reason))


def _read_into(f, size: int) -> tuple[bytearray, int]:
    """Up to `size` bytes of `f` in one buffer, and how many there were (gzip hands out a chunk per call)."""
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return buffer, got


def read_idx(path: Path, magic: int, expected_count: int | None) -> torch.Tensor:
    """One IDX file as a uint8 tensor, (N, 28, 28) for images or (N,) for labels; strict checks. The header is checked
    before the body is read, and no more than the header's size + 1 byte is ever read (gzip bombs, sparse files)."""
    dims = 3 if magic == IMAGE_MAGIC else 1
    kind = "image" if dims == 3 else "label"
    header_size = 4 + 4 * dims
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            header = f.read(header_size)
            if len(header) < header_size:
                raise DataError(f"{path.name} is truncated: {len(header)} bytes, not even a header")
            found_magic, *shape = struct.unpack(f">{1 + dims}I", header)
            if found_magic != magic:
                raise DataError(f"{path.name} is not an MNIST {kind} file (magic {found_magic}, expected {magic})")
            if dims == 3 and tuple(shape[1:]) != (28, 28):
                raise DataError(f"{path.name} holds {shape[1]}x{shape[2]} images, expected 28x28")
            count = shape[0]
            if expected_count is not None and count != expected_count:
                raise DataError(f"{path.name} holds {count} items, MNIST has {expected_count}")
            if count > MAX_IDX_ITEMS:
                raise DataError(f"{path.name} is not an MNIST file: its header claims {count:,} {kind}s "
                                f"(at most {MAX_IDX_ITEMS:,} are read)")
            body_size = count * (28 * 28 if dims == 3 else 1)
            promised = header_size + body_size
            if path.suffix != ".gz":  # a plain file's size is known before reading: a sparse 1 TB file costs nothing
                size = os.fstat(f.fileno()).st_size
                if size != promised:
                    raise DataError(f"{path.name} is truncated or corrupt: it is {size:,} bytes, "
                                    f"its header promises {promised:,}")
            body, got = _read_into(f, body_size)
            if got < body_size:
                raise DataError(f"{path.name} is truncated: it ends after {header_size + got:,} bytes, "
                                f"its header promises {promised:,}")
            if f.read(1):
                raise DataError(f"{path.name} holds more than its header promises ({promised:,} bytes); "
                                "it is damaged or not an MNIST file")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not body_size:
        return torch.empty(shape, dtype=torch.uint8)
    return torch.frombuffer(body, dtype=torch.uint8).view(*shape)


def load_split(files: dict[str, Path], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the train or test split."""
    image_name, label_name = FILE_NAMES[train]
    count = EXPECTED_COUNTS[train]
    images = read_idx(files[image_name], IMAGE_MAGIC, count)
    labels = read_idx(files[label_name], LABEL_MAGIC, count)
    if len(images) != len(labels):
        raise DataError(f"{image_name} has {len(images)} images but {label_name} has {len(labels)} labels")
    if labels.numel() and int(labels.max()) > 9:
        raise DataError(f"{label_name} holds label {int(labels.max())}; MNIST labels are 0-9")
    return images, labels.long()


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val): the same share of every digit goes to validation, chosen by `seed`."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"validation share must be in [0, 1), got {val_fraction}")
    generator = torch.Generator().manual_seed(seed)
    train_parts, val_parts = [], []
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_val = round(len(members) * val_fraction)
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return torch.cat(train_parts).sort().values, torch.cat(val_parts).sort().values


def load_mnist(root: Path | str | None = None, val_fraction: float = 0.1, seed: int = 0, download: bool = True) -> MnistData:
    """Read (or download) MNIST once and carve a stratified validation split from the 60k training images."""
    files = locate(root, download)
    train_images, train_labels = load_split(files, train=True)
    test_images, test_labels = load_split(files, train=False)
    train_idx, val_idx = stratified_split(train_labels, val_fraction, seed)
    return MnistData(
        train_images[train_idx], train_labels[train_idx],
        train_images[val_idx], train_labels[val_idx],
        test_images, test_labels,
        folder=files[ALL_FILE_NAMES[0]].parent,
    )


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1], exactly what ToTensor() gives."""
    return images.unsqueeze(1).float().div_(255.0)
