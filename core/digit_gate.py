"""The "is this one digit?" gate: a small CNN, separate from the digit classifier, that scores the 28x28 input as a
digit or as one kind of non-digit; shipped as a .safetensors file (tensors and JSON text only, never code)."""
from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.atomic_files import atomic_write
from core.not_digits import KINDS

FORMAT_TAG = "digit-recognizer-gate"
FORMAT_VERSION = 1
DEFAULT_GATE = Path(__file__).resolve().parent.parent / "resources" / "digit_gate.safetensors"
MAX_GATE_BYTES = 4 * 2**20   # the shipped gate is ~0.1 MB; nothing larger is read
DEFAULT_THRESHOLD = 0.6      # P(not one digit) at or above this: "not a digit" (the file's own value wins)


class GateError(Exception):
    """A gate file could not be used; the message says why in plain words."""


def gate_net(width: int = 16) -> nn.Sequential:
    """Three conv stages and a small head: (N, 1, 28, 28) in [0, 1] -> (N, len(KINDS)) logits."""
    def stage(c_in: int, c_out: int) -> list[nn.Module]:  # BatchNorm: trains in a few epochs on a CPU
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]

    w = width
    return nn.Sequential(
        *stage(1, w),            # (N, w, 14, 14)
        *stage(w, 2 * w),        # (N, 2w, 7, 7)
        *stage(2 * w, 4 * w),    # (N, 4w, 3, 3)
        nn.Flatten(), nn.Linear(4 * w * 9, 4 * w), nn.ReLU(),                    # (N, 4w)
        nn.Linear(4 * w, len(KINDS)),                                            # (N, kinds) logits
    )


@dataclass
class GateScore:
    """P(not one digit) and the most likely kind of non-digit (a key of core.not_digits.DESCRIPTIONS)."""

    not_digit: float
    kind: str


class DigitGate:
    """A loaded gate in eval mode; `threshold` is the P(not one digit) from which an input is called a non-digit."""

    def __init__(self, model: nn.Module, threshold: float = DEFAULT_THRESHOLD, info: dict | None = None):
        self.model = model.eval()
        self.threshold = threshold
        self.info = dict(info or {})

    @torch.no_grad()
    def scores(self, images28: torch.Tensor) -> list[GateScore]:
        """uint8 (N, 28, 28) ink-high images (what the classifier sees, before its normalization) -> N scores."""
        probs = torch.softmax(self.model(images28.float().div(255.0).unsqueeze(1)), dim=1)  # (N, kinds)
        kinds = probs[:, 1:].argmax(1) + 1
        return [GateScore(float(1.0 - p[0]), KINDS[int(k)]) for p, k in zip(probs, kinds)]


def save_gate(path: Path | str, model: nn.Module, width: int, threshold: float, info: dict) -> None:
    """Write the gate atomically as .safetensors: its tensors plus format, width, threshold and info as JSON text."""
    from safetensors.torch import save

    metadata = {"format": FORMAT_TAG, "version": str(FORMAT_VERSION), "width": str(width),
                "threshold": repr(float(threshold)), "kinds": json.dumps(KINDS), "info": json.dumps(info)}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(save(state, metadata=metadata), Path(path))


def load_gate(path: Path | str = DEFAULT_GATE) -> DigitGate:
    """Read a gate file: size bounded, tensors only, every key and shape checked against a model built on the meta
    device before anything is loaded; any problem is one GateError sentence."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise GateError(f"the digit gate {path} cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= MAX_GATE_BYTES:
        raise GateError(f"the digit gate {path.name} is not a file of at most {MAX_GATE_BYTES // 2**20} MB")
    data = path.read_bytes()
    try:
        tensors = load(data)
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
        meta = header.get("__metadata__") or {}
        width, threshold = int(meta.get("width", "")), float(meta.get("threshold", ""))
        kinds, extra = json.loads(meta.get("kinds", "null")), json.loads(meta.get("info", "{}"))
    except (SafetensorError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise GateError(f"the digit gate {path.name} is damaged; reinstall the app") from exc
    if meta.get("format") != FORMAT_TAG or meta.get("version") != str(FORMAT_VERSION):
        raise GateError(f"{path.name} is not a digit gate of this version of the app")
    if list(kinds or []) != list(KINDS) or not 1 <= width <= 64 or not (math.isfinite(threshold) and 0 < threshold < 1):
        raise GateError(f"the digit gate {path.name} does not fit this version of the app (kinds, width or threshold)")
    with torch.device("meta"):
        expected = gate_net(width).state_dict()
    if set(tensors) != set(expected) or any(tuple(tensors[k].shape) != tuple(v.shape) for k, v in expected.items()):
        raise GateError(f"the digit gate {path.name} does not match its architecture")
    for key, want in expected.items():
        value = tensors[key]
        if value.is_floating_point() != want.is_floating_point() or (
                value.is_floating_point() and not bool(torch.isfinite(value).all())):
            raise GateError(f"the digit gate {path.name} holds wrong or non-finite numbers in {key}")
    model = gate_net(width)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    return DigitGate(model, threshold, extra if isinstance(extra, dict) else {})
