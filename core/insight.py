"""Look inside a CNN for one drawing: every conv layer's feature maps, the first layer's filters, attribution maps."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core.preprocess import to_gray

if TYPE_CHECKING:
    from core.predict import Predictor

ATTRIBUTION_METHODS: dict[str, str] = {
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "Occlusion",
    "gradcam": "Grad-CAM",
}
ATTRIBUTION_DESCRIPTIONS: dict[str, str] = {
    "integrated_gradients": "how much each pixel, faded in from a blank page, raised or lowered the digit's score "
                            "(the scores of all pixels add up to the score's change from a blank page)",
    "occlusion": "how much the digit's score drops when a 4x4-pixel square of the drawing is erased",
    "gradcam": "where the last convolution layer's maps, weighted by how much they raise the digit's score, "
               "light up (coarse: that layer's resolution, enlarged to 28x28)",
}
# Gauss-Legendre points on the blank -> drawing path: 7% (median relative L2) from a 512-point integral, ~22 ms for
# DigitNet on 1 thread; 16 points: 15%; 64: 3% at twice the time (bench/insight_latency.py).
IG_STEPS = 32
IG_BATCH = 32  # path points per forward/backward: bounds memory for larger step counts (no speed difference)
# Erased squares: 4x4 px side by side (a stroke is ~2 px wide). Overlapping ones (stride 2) look smoother but cost
# ~4x (~100 ms for DigitNet on 1 thread) and were no more faithful: erasing the top 10% of ink they mark lowered
# the score by 2.66 (median of 20 drawn digits) against 2.71 for side-by-side squares.
OCCLUSION_PATCH = 4
OCCLUSION_STRIDE = 4

# Layers that belong to the conv layer before them: its output is shown after them (conv -> BatchNorm -> ReLU).
_CONV_FOLLOWERS = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU,
                   nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.Tanh, nn.Sigmoid)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.LPPool2d)
_FOLLOWER_NAMES = {nn.BatchNorm2d: "BatchNorm", nn.GroupNorm: "GroupNorm", nn.InstanceNorm2d: "InstanceNorm"}


@dataclass
class LayerMaps:
    """One layer's activations for a single input, with a title in plain words."""

    name: str          # the module's name as core.models.summary reports it ("1" = the tutorial's first ReLU)
    title: str         # e.g. "Conv 1 + ReLU: 8 maps, 26×26"
    kind: str          # type of the layer whose output this is ("ReLU", "MaxPool2d", ...)
    maps: np.ndarray   # (C, H, W) float32
    pooled: bool       # True for the output of a pooling layer


@dataclass
class Explanation:
    """What the network made of one image: answer, what it saw, every layer's maps and why (attribution)."""

    digit: int                    # top digit, as Predictor.predict gives it
    probabilities: list[float]    # identical to Predictor.predict(image).probabilities
    image28: np.ndarray           # (28, 28) uint8, what the network saw (ink high)
    layers: list[LayerMaps]       # forward order: conv outputs after activation, pooling outputs
    attribution: np.ndarray       # (28, 28) float32, > 0 evidence for `target`, < 0 evidence against
    target: int                   # the digit the attribution explains
    method: str                   # key of ATTRIBUTION_METHODS


# ---------------------------------------------------------------- walking a Sequential without hooks
def _leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The leaf layers of (nested) nn.Sequential models in forward order, named as named_modules() names them.

    Walking the layers by hand, rather than with forward hooks, leaves the model untouched, so a Predictor can
    use the same model from another thread meanwhile."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"looking inside needs an nn.Sequential model (every architecture here is one), "
                        f"not {type(model).__name__}")
    out = []
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        out += _leaves(child, f"{full}.") if isinstance(child, nn.Sequential) else [(full, child)]
    return out


@dataclass
class _Shown:
    """A leaf layer whose output is shown: its index among the leaves and how to title it."""

    index: int
    label: str     # "Conv 1 + ReLU", "Max-pool 1"
    pooled: bool


def _shown_layers(leaves: list[tuple[str, nn.Module]]) -> list[_Shown]:
    """Each conv layer's block end (after its BatchNorm/activation) and each pooling layer, in forward order."""
    shown, convs, pools = [], 0, {}
    for i, (_, module) in enumerate(leaves):
        if isinstance(module, nn.Conv2d):
            convs += 1
            end, parts = i, [f"Conv {convs}"]
            while end + 1 < len(leaves) and isinstance(leaves[end + 1][1], _CONV_FOLLOWERS):
                end += 1
                follower = type(leaves[end][1])
                parts.append(_FOLLOWER_NAMES.get(follower, follower.__name__))
            shown.append(_Shown(end, " + ".join(parts), False))
        elif isinstance(module, _POOLS):
            word = "Max-pool" if isinstance(module, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) else "Average-pool"
            if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and module.output_size in (1, (1, 1)):
                word = "Global " + word.lower().replace("-pool", " pool")
            pools[word] = pools.get(word, 0) + 1
            shown.append(_Shown(i, word if word.startswith("Global") else f"{word} {pools[word]}", True))
    return shown


def _title(label: str, maps: torch.Tensor) -> str:
    c, h, w = maps.shape
    if h == w == 1:
        return f"{label}: {c} numbers, one per map"
    return f"{label}: {c} map{'s' if c != 1 else ''}, {h}×{w}"


class _EvalMode:
    """Puts a model in eval mode for a block and back afterwards; a model already in eval mode is not touched."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self) -> nn.Module:
        if self.was_training:
            self.model.eval()
        return self.model

    def __exit__(self, *exc) -> None:
        if self.was_training:
            self.model.train(True)


def _forward_with_maps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[LayerMaps]]:
    """Logits (1, 10) and the shown layers' maps for one normalized input x (1, 1, 28, 28)."""
    leaves = _leaves(model)
    shown = {s.index: s for s in _shown_layers(leaves)}
    layers = []
    out = x
    with torch.no_grad(), _EvalMode(model):
        for i, (name, module) in enumerate(leaves):
            out = module(out)
            if i in shown and out.dim() == 4:
                maps = out[0].detach().clone().float()  # (C, H, W); later in-place layers must not change it
                layers.append(LayerMaps(name, _title(shown[i].label, maps), type(module).__name__,
                                        maps.cpu().numpy(), shown[i].pooled))
    return out, layers


def feature_maps(model: nn.Module, x: torch.Tensor) -> list[LayerMaps]:
    """Every conv layer's output after its activation and every pooling layer's output, for x (1, 1, 28, 28)."""
    _check_input(x)
    return _forward_with_maps(model, x)[1]


def first_layer_filters(model: nn.Module) -> np.ndarray:
    """The first Conv2d's learned kernels, (C_out, k, k) float32."""
    for _, module in _leaves(model):
        if isinstance(module, nn.Conv2d):
            weight = module.weight.detach()  # (C_out, C_in, k, k)
            if weight.shape[1] != 1:
                raise ValueError(f"the first conv layer reads {weight.shape[1]} channels; filters are shown "
                                 "only for one-channel (greyscale) inputs")
            return weight[:, 0].float().cpu().numpy().copy()
    raise ValueError("this model has no convolution layer")


# ---------------------------------------------------------------- attribution
def _check_input(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 1:
        raise ValueError(f"expected one image as a (1, 1, H, W) tensor, got shape {tuple(x.shape)}")


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: int, blank: float,
                         steps: int = IG_STEPS) -> torch.Tensor:
    """IG of the target's logit from the blank image to x: (x - blank) * mean gradient on the straight path.

    The path integral uses Gauss-Legendre points and weights (Captum's default); the points go through the
    network in batches of IG_BATCH. (1, 1, H, W) -> (H, W)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)   # (S, 1, 1, 1) in (0, 1)
    step_weights = torch.tensor(weights / 2, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)  # sum to 1
    baseline = torch.full_like(x, blank)
    mean_grad = torch.zeros_like(x)                                           # (1, 1, H, W)
    for start in range(0, steps, IG_BATCH):
        path = (baseline + alphas[start:start + IG_BATCH] * (x - baseline)).requires_grad_(True)  # (B, 1, H, W)
        (grads,) = torch.autograd.grad(model(path)[:, target].sum(), path)  # (B, 1, H, W)
        mean_grad += (grads * step_weights[start:start + IG_BATCH]).sum(0, keepdim=True)
    return ((x - baseline) * mean_grad)[0, 0].detach()


def occlusion(model: nn.Module, x: torch.Tensor, target: int, blank: float,
              patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE) -> torch.Tensor:
    """Drop of the target's logit when a patch x patch square is set blank, averaged over the squares covering
    each pixel. Squares over blank paper change nothing, so only squares touching ink are run. -> (H, W)"""
    _, _, h, w = x.shape
    inked = (x[0, 0] - blank).abs() > 1e-4  # (H, W); not ==: float32 normalization rounds differently than Python
    squares = [(r, c) for r in _starts(h, patch, stride) for c in _starts(w, patch, stride)]
    corners = [(r, c) for r, c in squares if inked[r:r + patch, c:c + patch].any()]
    total = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    covered = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    for r, c in squares:
        covered[r:r + patch, c:c + patch] += 1
    if not corners:
        return total
    batch = x.repeat(len(corners), 1, 1, 1)                                   # (P, 1, H, W)
    for k, (r, c) in enumerate(corners):
        batch[k, 0, r:r + patch, c:c + patch] = blank
    with torch.no_grad():
        drops = model(x)[0, target] - model(batch)[:, target]                 # (P,)
    for drop, (r, c) in zip(drops.tolist(), corners):
        total[r:r + patch, c:c + patch] += drop
    return total / covered.clamp(min=1)


def _starts(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, size - patch + 1, stride))
    return starts if starts[-1] == size - patch else starts + [size - patch]  # the last row/column is covered too


def gradcam(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Signed Grad-CAM on the last conv layer's (activated) output: its maps weighted by the spatial mean of the
    target logit's gradient, summed, enlarged bilinearly to the input's size (Captum's LayerGradCam without the
    ReLU, so evidence against shows too). -> (H, W)"""
    leaves = _leaves(model)
    convs = [s.index for s in _shown_layers(leaves) if not s.pooled]
    if not convs:
        raise ValueError("Grad-CAM needs a convolution layer")
    out, kept = x.detach().requires_grad_(True), None
    for i, (_, module) in enumerate(leaves):
        out = module(out)
        if i == convs[-1]:
            kept = out                                                        # (1, C, h, w)
            if isinstance(leaves[i][1], nn.ReLU) and leaves[i][1].inplace and i + 1 < len(leaves):
                out = out.clone()  # nothing later may overwrite the activations we differentiate against
    (grads,) = torch.autograd.grad(out[0, target], kept)                     # (1, C, h, w)
    cam = (grads.mean(dim=(2, 3), keepdim=True) * kept).sum(1, keepdim=True)  # (1, 1, h, w)
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0].detach()


def attribution(model: nn.Module, x: torch.Tensor, target: int, method: str = "integrated_gradients",
                blank: float | None = None) -> np.ndarray:
    """Signed (28, 28) float32 map for x (1, 1, 28, 28): > 0 evidence for `target`, < 0 evidence against.

    `blank` is the input value of an empty pixel (0 ink after the model's normalization); None takes x's smallest
    value, which is the paper in every preprocessed image. The model is left as found (mode, grads, no hooks)."""
    _check_input(x)
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(ATTRIBUTION_METHODS)}")
    if not 0 <= int(target) < 10:
        raise ValueError(f"target must be a digit 0-9, not {target!r}")
    x = x.detach().float()
    blank = float(x.min()) if blank is None else float(blank)
    with torch.enable_grad(), _EvalMode(model):
        if method == "integrated_gradients":
            result = integrated_gradients(model, x, int(target), blank)
        elif method == "occlusion":
            result = occlusion(model, x, int(target), blank)
        else:
            result = gradcam(model, x, int(target))
    return result.cpu().numpy().astype(np.float32)


def explain(predictor: Predictor, image: Image.Image | np.ndarray, target: int | None = None,
            method: str = "integrated_gradients") -> Explanation | None:
    """Everything the Insight view shows for one image; None when there is nothing to recognize (blank)."""
    if target is not None and not (isinstance(target, (int, np.integer)) and 0 <= target < 10):
        raise ValueError(f"target must be a digit 0-9, not {target!r}")
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(ATTRIBUTION_METHODS)}")
    mean, std = predictor.weights.normalization
    judged = predictor.read_many([to_gray(image)])[0]         # the very reading and probabilities predict gives
    prepared, probabilities = judged.prepared, judged.probabilities
    if prepared.empty:
        return None
    x = torch.stack([prepared.tensor])                        # (1, 1, 28, 28), as Predictor.predict_many batches it
    digit = int(np.argmax(probabilities))
    target = digit if target is None else int(target)
    layers = feature_maps(predictor.model, x)
    blank = float(torch.zeros(()).sub(mean).div(std))       # paper, rounded exactly as preprocess rounds it
    heat = attribution(predictor.model, x, target, method, blank=blank)
    return Explanation(digit, probabilities, prepared.image28, layers, heat, target, method)
