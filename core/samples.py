"""The user's own digit samples: a folder in ImageFolder layout (<root>/<digit>/<timestamp>.png) and loading it for training.

Only numpy and Pillow at import time, so the GUI can list and count samples before torch is loaded; reading images
for training goes through core.preprocess (the one pipeline), imported when needed.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core import paths
from core.atomic_files import atomic_write

if TYPE_CHECKING:
    import torch

DIGITS = tuple(str(d) for d in range(10))
NAME_FORMAT = "%Y%m%d-%H%M%S-%f"   # a sample's file name: when it was saved, to the microsecond (sorts oldest first)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}  # modes Pillow writes to PNG as they are


class SamplesError(Exception):
    """The samples folder or an import/export could not be used; the message says why in one sentence."""


@dataclass(frozen=True)
class Sample:
    path: Path
    digit: int


@dataclass
class DeletedSamples:
    """Samples removed from disk, with their bytes kept in memory so that `SampleStore.restore` can undo it."""

    items: list[tuple[Sample, bytes]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class ImportReport:
    added: int
    skipped: list[tuple[Path, str]]  # each file not imported, and why


@dataclass
class SampleSet:
    """Samples as the model sees them, after core.preprocess.preprocess."""

    images: np.ndarray                 # (N, 28, 28) uint8, ink high, centred like MNIST
    labels: np.ndarray                 # (N,) int64
    paths: list[Path]                  # the file of each image
    skipped: list[tuple[Path, str]]    # files that could not be used, and why
    normalization: tuple[float, float] = (0.0, 1.0)  # the model's (mean, std), used by inputs()

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=10)[:10].tolist()

    def inputs(self) -> torch.Tensor:
        """The images normalized for the model: float (N, 1, 28, 28)."""
        import torch

        mean, std = self.normalization
        return torch.from_numpy(self.images).float().div(255.0).sub(mean).div(std).unsqueeze(1)


# ---------------------------------------------------------------- writing files
def _write_new(data: bytes, target: Path) -> bool:
    """Write `data` to `target` atomically unless `target` exists; False, writing nothing, when the name is taken
    (a hard link never replaces a file, so two writers racing for one name cannot overwrite each other)."""
    try:
        atomic_write(data, target, exclusive=True)
    except FileExistsError:
        return False
    return True


def _write_unique(data: bytes, folder: Path, stem: str, suffix: str) -> Path:
    """Write under `stem + suffix` in `folder`, or `stem-1`, `stem-2`... when taken; never overwrites."""
    for n in range(10_000):
        target = folder / f"{stem}{f'-{n}' if n else ''}{suffix}"
        if not os.path.lexists(target) and _write_new(data, target):
            return target
    raise SamplesError(f"could not find a free file name for {stem}{suffix} in {folder}")


def _png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """The image as drawn, encoded as PNG (its size, colours and transparency kept)."""
    if isinstance(image, np.ndarray):
        image = _array_to_image(image)
    elif not isinstance(image, Image.Image):
        raise SamplesError(f"a sample must be an image or a numpy array, not {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        raise SamplesError("the sample image is empty (0 pixels)")
    if image.mode in ("I", "F"):  # 32-bit or float grey: scale to 8 bits, as core.preprocess.to_gray does
        arr = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        arr = np.clip(arr, 0, None) * (255.0 / max(float(arr.max(initial=0)), 255.0))
        image = Image.fromarray(np.round(arr).astype(np.uint8), "L")
    elif image.mode not in PNG_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _array_to_image(array: np.ndarray) -> Image.Image:
    """(H, W) grey or (H, W, 3/4) colour; uint8, bool, or float in [0, 1] or [0, 255]."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or array.size == 0:
        raise SamplesError(f"a sample array must be (H, W), (H, W, 3) or (H, W, 4), not {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        if array.dtype.kind not in "uif":
            raise SamplesError(f"a sample array must hold numbers, not {array.dtype}")
        values = array.astype(np.float64)
        if not np.isfinite(values).all():
            raise SamplesError("the sample array holds NaN or infinite values")
        if array.dtype.kind == "f" and values.max(initial=0) <= 1.0:
            values = values * 255.0
        array = np.clip(np.round(values), 0, 255).astype(np.uint8)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[2] if array.ndim == 3 else 2]
    return Image.fromarray(np.ascontiguousarray(array), mode)


def _check_digit(digit: object) -> int:
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= int(digit) <= 9:
        raise SamplesError(f"a sample's digit must be a whole number from 0 to 9, not {digit!r}")
    return int(digit)


# ---------------------------------------------------------------- reading folders
def _digit_folders(folder: Path) -> tuple[list[tuple[int, Path]], list[tuple[Path, str]]]:
    """The digit subfolders 0-9 of an ImageFolder folder, and the other entries (with why they are ignored).

    SamplesError when the folder is missing, empty or has no digit subfolder.
    """
    if not folder.exists():
        raise SamplesError(f"{folder} does not exist")
    if not folder.is_dir():
        raise SamplesError(f"{folder} is not a folder")
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise SamplesError(f"{folder} cannot be read ({exc.strerror or exc})") from exc
    if not entries:
        raise SamplesError(f"{folder} is empty; it should hold subfolders 0 to 9 with images of each digit")
    digits, others = [], []
    for entry in entries:
        if entry.name.startswith("."):
            continue  # .DS_Store and the like
        if entry.name in DIGITS and entry.is_dir():
            digits.append((int(entry.name), entry))
        else:
            others.append((entry, "not a digit subfolder 0-9" if entry.is_dir() else "not in a digit subfolder 0-9"))
    if not digits:
        raise SamplesError(f"{folder} has no digit subfolders: expected folders named 0 to 9 holding images "
                           f"(ImageFolder layout, e.g. {folder / '7' / 'a.png'})")
    return digits, others


def _files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise SamplesError(f"{folder} cannot be read ({exc.strerror or exc})") from exc


def _read_sample(path: Path):
    """(PIL image or None, (28, 28) uint8 or None, None) for a usable image file; the reason last when it is not."""
    from core.preprocess import ImageError, load_image, preprocess

    if not path.is_file():  # folders, FIFOs and devices: opening a FIFO would block forever
        return None, None, "not a regular file"
    try:
        image = load_image(path)
    except ImageError as exc:
        return None, None, str(exc)
    prepared = preprocess(image)
    if prepared.empty:
        return image, None, "blank: nothing to recognize (no ink)"
    return image, prepared.image28, None


def load_samples(folder: Path | str, normalization: tuple[float, float] = (0.0, 1.0)) -> SampleSet:
    """Every usable image of an ImageFolder folder, through the shared preprocessing; unusable files in `skipped`."""
    folder = Path(folder).expanduser()
    digits, _ignored = _digit_folders(folder)
    images, labels, used, skipped = [], [], [], []
    for digit, sub in digits:
        for path in _files(sub):
            _image, image28, reason = _read_sample(path)
            if reason:
                skipped.append((path, reason))
                continue
            images.append(image28)
            labels.append(digit)
            used.append(path)
    if not images and not skipped:
        raise SamplesError(f"{folder} holds no images: its digit subfolders are empty")
    if not images:
        raise SamplesError(f"{folder} holds no usable digit image: none of the {len(skipped)} file(s) in its digit "
                           f"subfolders is a readable image with ink (e.g. {skipped[0][0].name}: {skipped[0][1]})")
    return SampleSet(np.stack(images).astype(np.uint8), np.asarray(labels, dtype=np.int64), used, skipped,
                     (float(normalization[0]), float(normalization[1])))


# ---------------------------------------------------------------- the store
class SampleStore:
    """The per-user samples folder: add, list, count, delete with undo, import and export."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root is not None else paths.samples_dir()

    def _folder(self, digit: int, create: bool = False) -> Path:
        folder = self.root / str(digit)
        if create:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SamplesError(f"cannot create the samples folder {folder} ({exc.strerror or exc})") from exc
        return folder

    def add(self, image: Image.Image | np.ndarray, digit: int) -> Path:
        """Save the image as drawn, as a PNG in <root>/<digit>/<timestamp>.png (atomic, never overwriting)."""
        digit = _check_digit(digit)
        data = _png_bytes(image)
        folder = self._folder(digit, create=True)
        moment = datetime.now()
        try:
            for _ in range(10_000):  # same microsecond as another sample: the next free one keeps the order
                target = folder / f"{moment.strftime(NAME_FORMAT)}.png"
                if not os.path.lexists(target) and _write_new(data, target):
                    return target
                moment += timedelta(microseconds=1)
        except OSError as exc:
            raise SamplesError(f"could not save the sample in {folder} ({exc.strerror or exc})") from exc
        raise SamplesError(f"could not find a free file name in {folder}")

    def samples(self, digit: int | None = None) -> list[Sample]:
        """Saved samples, oldest first (by file name, the time it was saved), of one digit or all, digit by digit."""
        digits = range(10) if digit is None else [_check_digit(digit)]
        found = []
        for d in digits:
            folder = self._folder(d)
            if not folder.is_dir():
                continue
            try:
                names = sorted(p for p in folder.iterdir()
                               if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
            except OSError as exc:
                raise SamplesError(f"{folder} cannot be read ({exc.strerror or exc})") from exc
            found.extend(Sample(p, d) for p in names)
        return found

    def counts(self) -> list[int]:
        """How many samples of each digit: 10 ints."""
        counts = [0] * 10
        for sample in self.samples():
            counts[sample.digit] += 1
        return counts

    def _check_own(self, sample: Sample) -> None:
        if sample.path.parent != self._folder(sample.digit):
            raise SamplesError(f"{sample.path} is not a sample of digit {sample.digit} in {self.root}")

    def delete(self, samples: list[Sample]) -> DeletedSamples:
        """Remove these samples' files, keeping their bytes in memory for `restore` (undo)."""
        for sample in samples:  # all checked before any is removed
            self._check_own(sample)
        deleted = DeletedSamples()
        for sample in samples:
            try:
                data = sample.path.read_bytes()
                sample.path.unlink()
            except FileNotFoundError:
                continue  # already gone: nothing to undo
            except OSError as exc:
                raise SamplesError(f"could not delete {sample.path.name} ({exc.strerror or exc})") from exc
            deleted.items.append((sample, data))
        return deleted

    def restore(self, deleted: DeletedSamples) -> int:
        """Put deleted samples back under their names (a taken name gets a suffix); returns how many were written."""
        restored = 0
        for sample, data in deleted.items:
            self._check_own(sample)
            folder = self._folder(sample.digit, create=True)
            try:
                if sample.path.is_file() and sample.path.read_bytes() == data:
                    restored += 1  # already back (restored twice)
                    continue
                _write_unique(data, folder, sample.path.stem, sample.path.suffix)
            except OSError as exc:
                raise SamplesError(f"could not restore {sample.path.name} ({exc.strerror or exc})") from exc
            restored += 1
        return restored

    def import_folder(self, folder: Path | str) -> ImportReport:
        """Copy the readable images of an ImageFolder folder (subfolders 0-9) in; others are named in `skipped`."""
        folder = Path(folder).expanduser()
        digits, ignored = _digit_folders(folder)
        if self.root.exists() and folder.resolve() == self.root.resolve():
            raise SamplesError(f"{folder} is the samples folder itself; choose another folder to import")
        added, skipped = 0, list(ignored)
        for digit, sub in digits:
            for path in _files(sub):
                image, _image28, reason = _read_sample(path)
                if reason:
                    skipped.append((path, reason))
                    continue
                self.add(image, digit)
                added += 1
        if not added:
            first = f" (e.g. {skipped[0][0].name}: {skipped[0][1]})" if skipped else ""
            raise SamplesError(f"nothing was imported from {folder}: none of its {len(skipped)} file(s) is a "
                               f"readable image with ink in a digit subfolder{first}")
        return ImportReport(added, skipped)

    def export_folder(self, folder: Path | str) -> int:
        """Copy every sample to <folder>/<digit>/<name> (ImageFolder layout), never overwriting; returns how many."""
        folder = Path(folder).expanduser()
        if folder.exists() and not folder.is_dir():
            raise SamplesError(f"{folder} is a file, not a folder")
        if self.root.exists() and folder.resolve().is_relative_to(self.root.resolve()):
            raise SamplesError(f"{folder} is inside the samples folder; choose a folder outside {self.root}")
        written = 0
        for sample in self.samples():
            target = folder / str(sample.digit)
            try:
                data = sample.path.read_bytes()
                target.mkdir(parents=True, exist_ok=True)
                _write_unique(data, target, sample.path.stem, sample.path.suffix)
            except FileNotFoundError:
                continue  # deleted meanwhile
            except OSError as exc:
                raise SamplesError(f"could not export to {target} ({exc.strerror or exc})") from exc
            written += 1
        return written
