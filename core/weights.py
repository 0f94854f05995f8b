"""The one place that reads and writes weights files: checked atomic saves, safe checked loads (.pt, .pth and
.safetensors), tutorial export."""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core import paths
from core.atomic_files import atomic_write
from core.models import ARCHITECTURES, NO_NORMALIZATION, build_model
from core.weights_checks import (  # noqa: F401 (WeightsError is part of this module's interface)
    WeightsError, check_arch_args, check_metadata, check_state)

FORMAT_TAG = "digit-recognizer-weights"
FORMAT_VERSION = 1
# The tutorial's bare state_dict: key -> shape (its cnn_mnist.pth).
TUTORIAL_SHAPES = {
    "0.weight": (8, 1, 3, 3), "0.bias": (8,),
    "3.weight": (16, 8, 3, 3), "3.bias": (16,),
    "7.weight": (10, 400), "7.bias": (10,),
}
# Bounds on what a file may ask for. The widest allowed DigitNet (width 512) is a ~140 MB file.
MAX_FILE_BYTES = 512 * 2**20      # on disk, and unpacked (a zip's members added up)
ZIP_MAGIC = b"PK\x03\x04"         # torch.save's container
# A .safetensors file's metadata: these fields of a weights file, each as JSON text (safetensors holds only texts).
SAFETENSORS_FIELDS = ("format", "version", "arch", "arch_args", "normalization", "settings", "metrics", "created")


@dataclass
class LoadedWeights:
    """A ready model (CPU, eval mode) and what its file says about it."""

    model: nn.Module
    arch: str
    arch_args: dict
    normalization: tuple[float, float]
    settings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    created: str | None = None
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.path else "(unsaved)"

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")


@dataclass
class SavedWeights:
    """Where a training result was written; `requested` and `reason` are set when the wanted file was not possible."""

    path: Path
    requested: Path | None = None  # the --out / chosen file that could not be written
    reason: str | None = None      # why not, in plain words

    @property
    def fell_back(self) -> bool:
        return self.requested is not None


# ---------------------------------------------------------------- saving
def check_save_target(path: Path | str) -> Path:
    """The file a save to `path` writes (a symlink's target); WeightsError unless it is a writable regular file or a
    new name in a writable folder, and not the shipped default weights. Nothing is written."""
    path = Path(path).expanduser()
    target = Path(os.path.realpath(path))  # a symlink is followed, never replaced
    try:
        info = os.stat(target) if os.path.lexists(target) else None
    except OSError as exc:  # a symlink loop, a folder we may not enter
        raise WeightsError(f"{path} cannot be used ({exc.strerror})") from exc
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise WeightsError(f"{path} is a folder; give a file name inside it")
        if not stat.S_ISREG(info.st_mode):
            raise WeightsError(f"{path} is not a regular file (a pipe, device or socket); choose a file to save to")
        if _same_file(target, paths.DEFAULT_WEIGHTS):
            raise WeightsError(f"{path} is the shipped default weights; they are never overwritten, choose another file")
        if not info.st_mode & 0o222 or not _may(target, os.W_OK):
            raise WeightsError(f"{path} is write-protected; choose another file")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folders below it will be created
    if not folder.is_dir():
        raise WeightsError(f"{folder} is not a folder, so {path.name} cannot be saved there")
    if not _may(folder, os.W_OK | os.X_OK):
        raise WeightsError(f"the folder {folder} is read-only; choose another place to save {path.name}")
    return target


def save_weights(path: Path | str, model: nn.Module, arch: str, arch_args: dict, normalization: tuple[float, float],
                 settings: dict | None = None, metrics: dict | None = None) -> Path:
    """Write a weights file atomically onto `path` (see check_save_target: WeightsError for a refused target,
    OSError if writing fails, and then the old file is untouched). Returns the file written."""
    target = check_save_target(path)
    atomic_write(_serialize(_payload(model, arch, arch_args, normalization, settings, metrics)), target)
    return Path(path).expanduser()


def new_weights_path(stem: str, folder: Path | None = None) -> Path:
    """A name no file has yet: <folder>/<stem>-YYYYmmdd-HHMMSS.pt, then -2, -3... (default folder: the user's)."""
    folder = paths.user_weights_dir() if folder is None else Path(folder)
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 10_000):
        candidate = folder / f"{base}{f'-{n}' if n > 1 else ''}.pt"
        if not os.path.lexists(candidate):
            return candidate
    raise WeightsError(f"could not find a free file name in {folder}")


def save_training_result(model: nn.Module, arch: str, arch_args: dict, normalization: tuple[float, float],
                         settings: dict, metrics: dict, out: Path | str | None = None, stem: str = "weights",
                         folder: Path | None = None) -> SavedWeights:
    """Save a freshly trained model: to `out` if given, else (or if `out` fails) as a new file in the user's weights
    folder, never over an existing file there. WeightsError only if nothing could be saved."""
    data = _serialize(_payload(model, arch, arch_args, normalization, settings, metrics))
    requested, reason = None, None
    if out is not None:
        try:
            target = check_save_target(out)
            atomic_write(data, target)
            return SavedWeights(Path(out).expanduser())
        except (WeightsError, OSError) as exc:
            requested, reason = Path(out), _reason(exc)
    folder = paths.user_weights_dir() if folder is None else Path(folder)
    try:
        check_save_target(folder / f"{stem}.pt")
        for _ in range(100):  # another process may take a name between the choice and the write
            path = new_weights_path(stem, folder)
            try:
                atomic_write(data, path, exclusive=True)
                return SavedWeights(path, requested, reason)
            except FileExistsError:
                continue
        raise WeightsError(f"could not find a free file name in {folder}")
    except (WeightsError, OSError) as exc:
        first = f"to {requested} ({reason}), nor " if requested else ""
        raise WeightsError(f"the weights could not be saved {first}in {folder} ({_reason(exc)})") from exc


def _may(path: Path, mode: int) -> bool:
    """os.access for the effective user (the one whose rights the write will use), where the platform can tell."""
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _payload(model: nn.Module, arch: str, arch_args: dict, normalization: tuple[float, float],
             settings: dict | None, metrics: dict | None) -> dict:
    return {
        "format": FORMAT_TAG, "version": FORMAT_VERSION,
        "arch": arch, "arch_args": dict(arch_args),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "normalization": [float(normalization[0]), float(normalization[1])],
        "settings": dict(settings or {}), "metrics": dict(metrics or {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch_version": str(torch.__version__),
    }


def _serialize(obj) -> bytes:
    # in memory first, so a full disk reports the OSError itself, not torch's zip writer's own message
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _same_file(a: Path | str | None, b: Path | str | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


# ---------------------------------------------------------------- reading
def _read(path: Path, map_location) -> object:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise WeightsError(f"{path} does not exist") from None
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise WeightsError(f"{path} is not a file")
    if info.st_size == 0:
        raise WeightsError(f"{path.name} is empty")
    if info.st_size > MAX_FILE_BYTES:
        raise WeightsError(f"{path.name} is {info.st_size / 2**20:.0f} MB, too large for weights of this app "
                           f"(at most {MAX_FILE_BYTES // 2**20} MB)")
    try:
        f = open(path, "rb")  # noqa: SIM115 - the `with f` below closes it; only open's own failure is caught here
    except OSError as exc:  # no permission
        raise WeightsError(f"{path.name} cannot be read ({exc.strerror})") from exc
    with f:
        head = f.read(9)
        f.seek(0)
        if len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= info.st_size:
            return _read_safetensors(f.read(), path.name, map_location)  # an 8-byte header length, then its JSON
        head = head[:4]
        if head == ZIP_MAGIC:
            _check_archive(f, path.name)
            f.seek(0)
        try:
            return torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise WeightsError(_unpickling_message(str(exc), path.name, head == ZIP_MAGIC)) from exc
        except MemoryError as exc:
            raise WeightsError(f"{path.name} needs more memory than there is; it is not weights of this app") from exc
        except Exception as exc:  # any parse failure means a damaged or foreign file, never a traceback
            if head == ZIP_MAGIC:
                raise WeightsError(f"{path.name} is truncated or damaged; save or download it again") from exc
            raise WeightsError(f"{path.name} is not a PyTorch weights file ({type(exc).__name__})") from exc


def _read_safetensors(data: bytes, name: str, map_location) -> dict:
    """A .safetensors file as the dict a .pt file holds: this app's metadata fields (if its format field says so) and
    the tensors as state_dict, else the bare tensors; load_weights then checks it exactly like a .pt file."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)  # tensors only, never code
        metadata = json.loads(data[8:8 + int.from_bytes(data[:8], "little")]).get("__metadata__") or {}
    except (SafetensorError, ValueError, RecursionError, AttributeError) as exc:
        raise WeightsError(f"{name} is a damaged safetensors file; save or download it again") from exc
    except MemoryError as exc:
        raise WeightsError(f"{name} needs more memory than there is; it is not weights of this app") from exc
    tensors = {key: value.to(map_location) for key, value in tensors.items()}
    if not isinstance(metadata, dict) or not _is_json_of(metadata.get("format"), FORMAT_TAG):
        return tensors  # a bare state_dict (the tutorial's, or one load_weights names as unknown)
    obj: dict = {"state_dict": tensors}
    for key in SAFETENSORS_FIELDS:
        if key in metadata:
            try:
                obj[key] = json.loads(metadata[key])
            except (ValueError, TypeError, RecursionError) as exc:
                raise WeightsError(f"{name}: its metadata field {key!r} is not JSON text") from exc
    return obj


def _is_json_of(text: object, expected: object) -> bool:
    try:
        return isinstance(text, str) and json.loads(text) == expected
    except (ValueError, RecursionError):
        return False


def _check_archive(f, name: str) -> None:
    """Sizes from the zip's directory before anything is unpacked; a TorchScript archive named as such."""
    try:
        with zipfile.ZipFile(f) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise WeightsError(f"{name} is truncated or damaged; save or download it again") from exc
    if any(m.filename.endswith("/constants.pkl") or "/code/" in m.filename for m in members):
        raise WeightsError(f"{name} is a TorchScript model (torch.jit.save), not weights; in your script, save "
                           "model.state_dict() with torch.save and load that file instead")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_FILE_BYTES:
        raise WeightsError(f"{name} would unpack to {unpacked / 2**20:.0f} MB, too large for weights of this app "
                           f"(at most {MAX_FILE_BYTES // 2**20} MB)")


def _unpickling_message(text: str, name: str, is_zip: bool) -> str:
    found = re.search(r"Unsupported global: GLOBAL ([A-Za-z_][\w.]*) was not an allowed global", text)
    if found:  # a well-formed reference to a Python object: the file holds more than tensors and numbers
        return (f"{name} holds more than weights (a whole pickled model or other Python objects, here "
                f"{found.group(1)}); only state_dicts and this app's weights files are loaded, for safety")
    if is_zip:
        return f"{name} is damaged (its contents do not decode); save or download it again"
    return f"{name} is not a PyTorch weights file (unreadable content)"


def load_weights(path: Path | str, map_location: str | torch.device = "cpu") -> LoadedWeights:
    """Load our format or the tutorial's bare state_dict, never running code from the file; every field is checked
    before anything is built, and any problem is one WeightsError sentence."""
    path = Path(path)
    obj = _read(path, map_location)
    if not isinstance(obj, dict):
        raise WeightsError(f"{path.name} is not a weights file (it holds a {type(obj).__name__}, not a dict)")
    if obj.get("format") != FORMAT_TAG:
        if set(obj) == set(TUTORIAL_SHAPES):
            check_state(obj, "tutorial", {}, path.name)
            model = build_model("tutorial")
            model.load_state_dict(obj)
            return LoadedWeights(model.eval(), "tutorial", {}, NO_NORMALIZATION, path=path,
                                 settings={"preset": "tutorial (bare state_dict)"})
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise WeightsError(f"{path.name} is a bare state_dict that matches no known architecture "
                               f"(keys {', '.join(str(k)[:40] for k in list(obj)[:4])}...); "
                               "only the tutorial's can be loaded bare")
        raise WeightsError(f"{path.name} is not a weights file of this app or the tutorial")
    version = obj.get("version")
    if type(version) is not int or version < 1:
        what = "no format version" if version is None else f"an invalid format version ({version!r:.40})"
        raise WeightsError(f"{path.name} has {what}; it is damaged or was not written by this app")
    if version > FORMAT_VERSION:
        raise WeightsError(f"{path.name} was written by a newer version of this app (format {version}); please update")
    arch = obj.get("arch")
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise WeightsError(f"{path.name} uses unknown architecture {arch!r:.40} (known: {', '.join(ARCHITECTURES)})")
    args = check_arch_args(arch, obj.get("arch_args"), path.name)
    check_state(obj.get("state_dict"), arch, args, path.name)  # before anything of that size is built
    normalization, settings, metrics, created = check_metadata(obj, arch, path.name)
    model = build_model(arch, **args)
    try:
        model.load_state_dict(obj["state_dict"])
    except (RuntimeError, ValueError, TypeError) as exc:  # what the checks above did not foresee
        raise WeightsError(f"{path.name}: its weights do not fit architecture {arch!r}") from exc
    return LoadedWeights(model.eval(), arch, args, normalization, settings, metrics, created, path)


def export_tutorial(weights: LoadedWeights, out: Path | str) -> Path:
    """Write a bare state_dict that the tutorial's inference script loads unchanged (tutorial arch only); never onto
    the file the weights came from."""
    if weights.arch != "tutorial":
        raise WeightsError(f"only the tutorial architecture can be exported for the tutorial's script; "
                           f"these weights are {weights.arch!r}")
    target = check_save_target(out)
    if _same_file(target, weights.path):
        raise WeightsError(f"{out} is the weights file being exported; choose another file, so the original stays")
    state = {k: v.detach().cpu().contiguous() for k, v in weights.model.state_dict().items()}
    atomic_write(_serialize(state), target)
    return Path(out)


def load_default_weights() -> LoadedWeights:
    """The weights shipped in resources/ (trained by this project's `train --preset best`)."""
    if not paths.DEFAULT_WEIGHTS.is_file():
        raise WeightsError(f"the shipped default weights are missing ({paths.DEFAULT_WEIGHTS}); reinstall the app")
    return load_weights(paths.DEFAULT_WEIGHTS)
