"""Batched augmentation on tensors: random affine, stroke thickness and mild blur, for (N, 1, 28, 28) in [0, 1]."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Ranges at strength 1.0; `strength` scales them all (0 turns augmentation off).
MAX_ROTATION_DEG = 15.0
MAX_SCALE_DELTA = 0.15     # zoom in [1 - d, 1 + d]
MAX_SHIFT_PX = 3.0
MAX_SHEAR = 0.2            # slant, as people write
THICKNESS_SHARE = 0.5      # share of images whose strokes get thicker or thinner
BLUR_SHARE = 0.2


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def random_affine(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate, scale, shear and shift every image by its own random amount (one grid_sample for the batch)."""
    n, dev = x.shape[0], x.device
    angle = _uniform(n, -1, 1, generator, dev) * math.radians(MAX_ROTATION_DEG * strength)
    scale = 1 + _uniform(n, -1, 1, generator, dev) * MAX_SCALE_DELTA * strength
    shear = _uniform(n, -1, 1, generator, dev) * MAX_SHEAR * strength
    # shifts in affine_grid's normalized coordinates: 2 units span 28 px
    shift = _uniform(2 * n, -1, 1, generator, dev).view(n, 2) * (MAX_SHIFT_PX * strength * 2 / 28)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin + shear * cos, shift[:, 0]], dim=1),
        torch.stack([sin, cos + shear * sin, shift[:, 1]], dim=1),
    ], dim=1)  # (N, 2, 3) maps output coords to input coords
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_thickness(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Thicker (dilation) or thinner (erosion) strokes for a random share, blended by a random amount."""
    n, dev = x.shape[0], x.device
    thicker = F.max_pool2d(x, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-x, 3, stride=1, padding=1)
    amount = _uniform(n, -1, 1, generator, dev) * strength             # <0 thinner, >0 thicker
    chosen = (torch.rand(n, generator=generator, device=dev) < THICKNESS_SHARE).float()
    amount = (amount * chosen).view(n, 1, 1, 1)
    target = torch.where(amount > 0, thicker, thinner)
    return x + amount.abs() * (target - x)


def random_blur(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A mild 3x3 Gaussian blur for a random share of the batch."""
    n, dev = x.shape[0], x.device
    kernel = torch.tensor([1.0, 2.0, 1.0], device=dev)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3)
    blurred = F.conv2d(x, kernel, padding=1)
    chosen = (torch.rand(n, generator=generator, device=dev) < BLUR_SHARE * min(strength, 1.0)).float().view(n, 1, 1, 1)
    return x + chosen * (blurred - x)


def augment(x: torch.Tensor, strength: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """All augmentations for a batch (N, 1, 28, 28) in [0, 1]; returns a new tensor in [0, 1]."""
    if strength <= 0:
        return x
    x = random_affine(x, strength, generator)
    x = random_thickness(x, strength, generator)
    x = random_blur(x, strength, generator)
    return x.clamp_(0.0, 1.0)
