"""The one place that reads and writes weights files: atomic saves, safe checked loads, tutorial export."""
from __future__ import annotations

import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core import paths
from core.models import ARCHITECTURES, NO_NORMALIZATION, build_model

FORMAT_TAG = "digit-recognizer-weights"
FORMAT_VERSION = 1
# The tutorial's bare state_dict: key -> shape (its cnn_mnist.pth).
TUTORIAL_SHAPES = {
    "0.weight": (8, 1, 3, 3), "0.bias": (8,),
    "3.weight": (16, 8, 3, 3), "3.bias": (16,),
    "7.weight": (10, 400), "7.bias": (10,),
}


class WeightsError(Exception):
    """A weights file could not be used; the message says why in plain words."""


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


def save_weights(path: Path | str, model: nn.Module, arch: str, arch_args: dict, normalization: tuple[float, float],
                 settings: dict | None = None, metrics: dict | None = None) -> Path:
    """Write a weights dict atomically: temp file in the same folder, fsync, os.replace; the old file survives failures."""
    path = Path(path)
    payload = {
        "format": FORMAT_TAG, "version": FORMAT_VERSION,
        "arch": arch, "arch_args": dict(arch_args),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "normalization": [float(normalization[0]), float(normalization[1])],
        "settings": dict(settings or {}), "metrics": dict(metrics or {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch_version": str(torch.__version__),
    }
    _atomic_torch_save(payload, path)
    return path


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, _file_mode(path))  # mkstemp makes 0600; a weights file is meant to be shared
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def _file_mode(path: Path) -> int:
    """The replaced file's permissions, or the usual ones for a new file (0666 minus the umask)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _read(path: Path, map_location) -> object:
    if not path.is_file():
        raise WeightsError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise WeightsError(f"{path.name} is empty")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc) and "GLOBAL" not in str(exc):
            raise WeightsError(f"{path.name} is not a PyTorch weights file (unreadable content)") from exc
        raise WeightsError(f"{path.name} holds more than weights (a whole pickled model or other Python objects); "
                           "only state_dicts and this app's weights files are loaded, for safety") from exc
    except Exception as exc:  # any parse failure means a damaged or foreign file, never a traceback
        if head == b"PK\x03\x04":  # torch.save's zip container, cut short or corrupted
            raise WeightsError(f"{path.name} is truncated or damaged; save or download it again") from exc
        raise WeightsError(f"{path.name} is not a PyTorch weights file ({type(exc).__name__})") from exc


def _is_tutorial_state_dict(obj: dict) -> bool:
    return set(obj) == set(TUTORIAL_SHAPES) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _load_state(model: nn.Module, state: dict, arch: str, name: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise WeightsError(f"{name} does not match architecture {arch!r}: "
                           f"missing {missing[:3] or 'none'}, unexpected {unexpected[:3] or 'none'}")
    for key, tensor in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{name}: entry {key} is not a tensor")
        if tuple(value.shape) != tuple(tensor.shape):
            raise WeightsError(f"{name}: shapes don't match for {key}: file has {tuple(value.shape)}, "
                               f"architecture {arch!r} needs {tuple(tensor.shape)}")
    model.load_state_dict(state)


def load_weights(path: Path | str, map_location: str | torch.device = "cpu") -> LoadedWeights:
    """Load our format or the tutorial's bare state_dict, never running code from the file; checks everything."""
    path = Path(path)
    obj = _read(path, map_location)
    if not isinstance(obj, dict):
        raise WeightsError(f"{path.name} is not a weights file (it holds a {type(obj).__name__}, not a dict)")
    if obj.get("format") != FORMAT_TAG:
        if _is_tutorial_state_dict(obj):
            model = build_model("tutorial")
            _load_state(model, obj, "tutorial", path.name)
            return LoadedWeights(model.eval(), "tutorial", {}, NO_NORMALIZATION, path=path,
                                 settings={"preset": "tutorial (bare state_dict)"})
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise WeightsError(f"{path.name} is a bare state_dict that matches no known architecture "
                               f"(keys {', '.join(list(obj)[:4])}...); only the tutorial's can be loaded bare")
        raise WeightsError(f"{path.name} is not a weights file of this app or the tutorial")
    version = obj.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise WeightsError(f"{path.name} was written by a newer version of this app (format {version}); please update")
    arch, args = obj.get("arch"), obj.get("arch_args") or {}
    if arch not in ARCHITECTURES:
        raise WeightsError(f"{path.name} uses unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    try:
        model = build_model(arch, **args)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path.name}: bad arguments for {arch!r}: {exc}") from exc
    state = obj.get("state_dict")
    if not isinstance(state, dict):
        raise WeightsError(f"{path.name} has no state_dict")
    _load_state(model, state, arch, path.name)
    norm = obj.get("normalization") or ARCHITECTURES[arch].normalization
    if len(norm) != 2 or not float(norm[1]) > 0:
        raise WeightsError(f"{path.name} has an invalid normalization {norm!r}")
    return LoadedWeights(model.eval(), arch, dict(args), (float(norm[0]), float(norm[1])),
                         dict(obj.get("settings") or {}), dict(obj.get("metrics") or {}), obj.get("created"), path)


def export_tutorial(weights: LoadedWeights, out: Path | str) -> Path:
    """Write a bare state_dict that the tutorial's inference script loads unchanged (tutorial arch only)."""
    if weights.arch != "tutorial":
        raise WeightsError(f"only the tutorial architecture can be exported for the tutorial's script; "
                           f"these weights are {weights.arch!r}")
    out = Path(out)
    _atomic_torch_save({k: v.detach().cpu().contiguous() for k, v in weights.model.state_dict().items()}, out)
    return out


def load_default_weights() -> LoadedWeights:
    """The weights shipped in resources/ (trained by this project's `train --preset best`)."""
    if not paths.DEFAULT_WEIGHTS.is_file():
        raise WeightsError(f"the shipped default weights are missing ({paths.DEFAULT_WEIGHTS}); reinstall the app")
    return load_weights(paths.DEFAULT_WEIGHTS)
