"""The CNNs by name: the tutorial's exact model, a stronger DigitNet, and a per-layer shape summary."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from core.settings import ARCHITECTURE_DEFAULTS

# MNIST pixel mean/std after ToTensor(); DigitNet is trained on (x - mean) / std.
MNIST_NORMALIZATION = (0.1307, 0.3081)
NO_NORMALIZATION = (0.0, 1.0)


def tutorial() -> nn.Sequential:
    """Exactly the tutorial's model, so state_dicts interchange with its scripts (keys 0.*, 3.*, 7.*)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2, 2),   # (N, 8, 13, 13)
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2),  # (N, 16, 5, 5)
        nn.Flatten(),                                         # (N, 400)
        nn.Linear(16 * 5 * 5, 10),                            # (N, 10) logits
    )


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    # 3x3 "same" conv; bias is redundant before BatchNorm
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def fastnet(width: int = 16) -> nn.Sequential:
    """Three conv+BatchNorm stages, each followed by 2x2 max-pooling, and a linear head: >= 99.2% in 2 epochs."""
    w = width
    return nn.Sequential(
        *_conv_bn(1, w), nn.MaxPool2d(2),               # (N, w, 14, 14)
        *_conv_bn(w, 2 * w), nn.MaxPool2d(2),           # (N, 2w, 7, 7)
        *_conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),       # (N, 4w, 3, 3)
        nn.Flatten(),                                    # (N, 36w)
        nn.Linear(4 * w * 3 * 3, 10),                    # (N, 10) logits
    )


def digitnet(width: int = 32, dropout: float = 0.1) -> nn.Sequential:
    """A small VGG-style CNN with BatchNorm and global pooling: >= 99.6% on MNIST, fast on 2 CPU cores."""
    w = width
    return nn.Sequential(
        *_conv_bn(1, w), *_conv_bn(w, w), nn.MaxPool2d(2),              # (N, w, 14, 14)
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),  # (N, 2w, 7, 7)
        *_conv_bn(2 * w, 4 * w),                                         # (N, 4w, 7, 7)
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),                           # (N, 4w)
        nn.Dropout(dropout),
        nn.Linear(4 * w, 10),                                            # (N, 10) logits
    )


@dataclass(frozen=True)
class Architecture:
    """How to build a model by name, its default arguments and the input normalization it expects (the words
    describing each live in core.settings.ARCHITECTURE_DESCRIPTIONS, which the form reads before torch loads)."""

    build: Callable[..., nn.Module]
    defaults: dict
    normalization: tuple[float, float]


ARCHITECTURES: dict[str, Architecture] = {
    "tutorial": Architecture(tutorial, ARCHITECTURE_DEFAULTS["tutorial"], NO_NORMALIZATION),
    "fastnet": Architecture(fastnet, ARCHITECTURE_DEFAULTS["fastnet"], MNIST_NORMALIZATION),
    "digitnet": Architecture(digitnet, ARCHITECTURE_DEFAULTS["digitnet"], MNIST_NORMALIZATION),
}


def build_model(arch: str, **args) -> nn.Module:
    """A fresh model of the named architecture; `args` override its defaults."""
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    unknown = set(args) - set(spec.defaults)
    if unknown:
        raise TypeError(f"architecture {arch!r} takes no argument(s) {', '.join(sorted(unknown))}")
    return spec.build(**{**spec.defaults, **args})


def arch_args(arch: str, **args) -> dict:
    """The full constructor arguments (defaults filled in), as stored in a weights file."""
    return {**ARCHITECTURES[arch].defaults, **args}


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int


def summary(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[LayerRow]:
    """Every leaf layer's output shape and parameter count, from a dummy input (the tutorial's trick)."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod, _inp, out, name=name):
                rows.append(LayerRow(name, type(mod).__name__, tuple(out.shape), sum(p.numel() for p in mod.parameters())))
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def format_summary(model: nn.Module) -> str:
    """The summary as a text table with a total line."""
    rows = summary(model)
    lines = [f"{'layer':<8}{'type':<20}{'output shape':<22}{'params':>10}"]
    for r in rows:
        lines.append(f"{r.name:<8}{r.kind:<20}{str(r.output_shape):<22}{r.parameters:>10,}")
    total = sum(p.numel() for p in model.parameters())
    lines.append(f"{'total':<50}{total:>10,}")
    return "\n".join(lines)


def pool_before_relu(model: nn.Module) -> nn.Module:
    """For training: the model's own modules with every ReLU that directly precedes a MaxPool2d moved after it.

    The numbers are the same bit for bit (max commutes with ReLU, and the gradient reaches the same pixels), but the
    ReLU and its backward run on a quarter of the pixels: a FastNet step 5.6 -> 4.9 ms on 2 threads. The modules,
    and so the parameters and BatchNorm statistics, are shared with `model`; what is saved, shown and exported
    keeps the model's own order. A model that is not an nn.Sequential is returned as it is."""
    if not isinstance(model, nn.Sequential):
        return model
    layers, moved = list(model), False
    for i in range(len(layers) - 1):
        pool = layers[i + 1]
        if type(layers[i]) is nn.ReLU and isinstance(pool, nn.MaxPool2d) and not pool.return_indices:
            layers[i], layers[i + 1], moved = pool, layers[i], True
    return nn.Sequential(*layers) if moved else model
