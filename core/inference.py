"""Scoring a model without training it: its inference copy (BatchNorm folded, channels-last on CPUs) and accuracy,
loss, per-digit accuracy and confusion over a split."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx.experimental.optimization import fuse as fuse_conv_bn

from core.data import to_float


@dataclass
class Evaluation:
    """What evaluate() measured over a split."""

    accuracy: float
    loss: float
    per_class_accuracy: list[float]
    confusion: list[list[int]]          # confusion[true][predicted]
    misclassified: list[int]            # indices into the evaluated images
    misclassified_predictions: list[int]
    n: int


def normalize(x: torch.Tensor, normalization: tuple[float, float]) -> torch.Tensor:
    mean, std = normalization
    return x if (mean, std) == (0.0, 1.0) else (x - mean) / std


def inference_model(model: nn.Module) -> nn.Module:
    """The model in eval mode with each BatchNorm folded into the conv before it (same outputs, ~40% less time); on
    a CPU that copy is channels-last (FastNet's 10k test images 0.44 -> 0.17 s, DigitNet's 1.8 -> 1.3 s)."""
    model.eval()
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    try:
        folded = fuse_conv_bn(model)  # a traced copy; `model` itself is untouched
    except Exception:  # a model torch.fx cannot trace is evaluated as it is
        return model
    return channels_last_on_cpu(folded)


def channels_last_on_cpu(model: nn.Module) -> nn.Module:
    """`model` itself, moved to channels-last memory format when it lives on a CPU (convolutions and pooling about
    twice as fast there); a model on another device is left as it is."""
    if all(p.device.type == "cpu" for p in model.parameters()):
        return model.to(memory_format=torch.channels_last)
    return model


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalization: tuple[float, float],
             device: torch.device | str = "cpu", batch_size: int = 250,
             on_batch: Callable[[int, torch.Tensor], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> Evaluation | None:
    """Accuracy, mean loss, per-class accuracy, 10x10 confusion and misclassified indices on uint8 images.

    `on_batch(images_done, logits)` sees each batch's logits (B, 10); `should_stop()` is checked before each
    batch, and only a stop makes the result None. The model is left in the train/eval mode it came in.
    """
    modes = {module: module.training for module in model.modules()}
    try:
        return _evaluate(inference_model(model), images, labels, normalization, torch.device(device), batch_size,
                         on_batch, should_stop)
    finally:
        for module, training in modes.items():  # inference_model() switched it to eval mode
            module.training = training


def _evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalization: tuple[float, float],
              device: torch.device, batch_size: int, on_batch: Callable[[int, torch.Tensor], None] | None,
              should_stop: Callable[[], bool] | None) -> Evaluation | None:
    predictions, total_loss = [], 0.0
    for start in range(0, len(images), batch_size):
        if should_stop is not None and should_stop():
            return None
        x = normalize(to_float(images[start:start + batch_size]), normalization).to(device)
        y = labels[start:start + batch_size].to(device)
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        predictions.append(logits.argmax(1).cpu())
        if on_batch is not None:
            on_batch(start + len(x), logits)
    predicted = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
    labels = labels.cpu()
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    wrong = torch.nonzero(predicted != labels).flatten()
    n = len(labels)
    return Evaluation(
        accuracy=float((predicted == labels).float().mean()) if n else 0.0,
        loss=total_loss / max(n, 1), per_class_accuracy=per_class, confusion=confusion.tolist(),
        misclassified=wrong.tolist(), misclassified_predictions=predicted[wrong].tolist(), n=n,
    )
