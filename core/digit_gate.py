"""The "is this one digit?" gate: a small CNN, separate from the digit classifier, that scores the 28x28 input as a
digit or as one kind of non-digit; shipped as a .safetensors file (tensors and JSON text only, never code)."""
from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.atomic_files import atomic_write
from core.not_digits import KINDS

FORMAT_TAG = "digit-recognizer-gate"
FORMAT_VERSION = 2         # 2: one or more members, keys "member{i}.<key>"; 1 (read too): one model, plain keys
DEFAULT_GATE = Path(__file__).resolve().parent.parent / "resources" / "digit_gate.safetensors"
MAX_GATE_BYTES = 4 * 2**20   # the shipped gate is ~0.75 MB (three members); nothing larger is read
MAX_MEMBERS = 8
DEFAULT_THRESHOLD = 0.7      # P(not one digit) at or above this: "not a digit" (the file's own value wins)


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
    """A loaded gate in eval mode: one or more members (gate_net models trained with different seeds or lengths)
    whose probabilities are averaged; `threshold` is the P(not one digit) from which an input is a non-digit.

    Why members: single gates trained alike differ in which real digits and which letters they get wrong, and the
    average of three flagged fewer of both on bench/not_digits.py's tune sets than any one of them (bench/README.md).
    """

    def __init__(self, members: nn.Module | Sequence[nn.Module], threshold: float = DEFAULT_THRESHOLD,
                 info: dict | None = None):
        self.members = [m.eval() for m in ([members] if isinstance(members, nn.Module) else members)]
        self.threshold = threshold
        self.info = dict(info or {})

    @torch.no_grad()
    def scores(self, images28: torch.Tensor) -> list[GateScore]:
        """uint8 (N, 28, 28) ink-high images (what the classifier sees, before its normalization) -> N scores."""
        x = images28.float().div(255.0).unsqueeze(1)  # (N, 1, 28, 28)
        probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)  # (N, kinds)
        kinds = probs[:, 1:].argmax(1) + 1
        return [GateScore(float(1.0 - p[0]), KINDS[int(k)]) for p, k in zip(probs, kinds)]


def save_gate(path: Path | str, members: nn.Module | Sequence[nn.Module], width: int, threshold: float,
              info: dict) -> None:
    """Write the gate atomically as .safetensors: its members' tensors plus format, width, member count, threshold
    and info as JSON text."""
    from safetensors.torch import save

    members = [members] if isinstance(members, nn.Module) else list(members)
    metadata = {"format": FORMAT_TAG, "version": str(FORMAT_VERSION), "width": str(width),
                "members": str(len(members)), "threshold": repr(float(threshold)), "kinds": json.dumps(KINDS),
                "info": json.dumps(info)}
    state = {f"member{i}.{k}": v.detach().cpu().contiguous()
             for i, model in enumerate(members) for k, v in model.state_dict().items()}
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
        count = int(meta.get("members", "1"))
        kinds, extra = json.loads(meta.get("kinds", "null")), json.loads(meta.get("info", "{}"))
    except (SafetensorError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise GateError(f"the digit gate {path.name} is damaged; reinstall the app") from exc
    version = meta.get("version")
    if meta.get("format") != FORMAT_TAG or version not in ("1", str(FORMAT_VERSION)):
        raise GateError(f"{path.name} is not a digit gate of this version of the app")
    if list(kinds or []) != list(KINDS) or not 1 <= width <= 64 or not (math.isfinite(threshold) and 0 < threshold < 1) \
            or not 1 <= count <= MAX_MEMBERS or (version == "1" and count != 1):
        raise GateError(f"the digit gate {path.name} does not fit this version of the app "
                        "(kinds, width, members or threshold)")
    with torch.device("meta"):
        one = gate_net(width).state_dict()
    prefixes = [""] if version == "1" else [f"member{i}." for i in range(count)]
    expected = {prefix + k: v for prefix in prefixes for k, v in one.items()}
    if set(tensors) != set(expected) or any(tuple(tensors[k].shape) != tuple(v.shape) for k, v in expected.items()):
        raise GateError(f"the digit gate {path.name} does not match its architecture")
    for key, want in expected.items():
        value = tensors[key]
        if value.is_floating_point() != want.is_floating_point() or (
                value.is_floating_point() and not bool(torch.isfinite(value).all())):
            raise GateError(f"the digit gate {path.name} holds wrong or non-finite numbers in {key}")
    members = []
    for prefix in prefixes:
        model = gate_net(width)
        state = {k: tensors[prefix + k] for k in one}
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        members.append(model)
    return DigitGate(members, threshold, extra if isinstance(extra, dict) else {})
