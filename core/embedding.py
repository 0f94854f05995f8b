"""The test set as a 2D map: penultimate-layer features, an exact PCA projection and a background t-SNE."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

TSNE_POINTS = 3000      # t-SNE optimizes at most this many points (stratified): ~5 s on 2 cores, see bench/README.md
TSNE_NEIGHBOURS = 10    # feature-space neighbours whose map positions place a new point
TSNE_PERPLEXITY = 30.0  # the usual t-SNE perplexity; lowered for tiny sets (it must stay below N / 3)
TSNE_EARLY_ITERATIONS, TSNE_ITERATIONS = 250, 500  # openTSNE's defaults: exaggerated phase, then the normal one
TSNE_CHECK_EVERY = 10   # iterations between progress reports and stop checks
# openTSNE's OpenMP threads spin-wait: on 2 busy cores 2 threads took 48 s where 1 took 13 s (bench/README.md).
TSNE_THREADS = 1


class EmbeddingError(ValueError):
    """Features that cannot be mapped (too few, wrong width, not finite); the message says which."""


# ---------------------------------------------------------------- features
def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last nn.Linear (its classifier head); its input is the penultimate feature vector."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise EmbeddingError(f"{type(model).__name__} has no Linear layer, so it has no penultimate features")
    return linears[-1]


@contextmanager
def capturing_features(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """While open, each forward pass of `model` in this thread appends the input of its last Linear, (B, D)."""
    captured: list[torch.Tensor] = []
    thread = threading.get_ident()  # another thread may run the same model meanwhile (the Draw tab's predictions)

    def keep_input(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        if threading.get_ident() == thread:
            captured.append(inputs[0].detach().reshape(len(inputs[0]), -1))

    handle = last_linear(model).register_forward_hook(keep_input)
    try:
        yield captured
    finally:
        handle.remove()


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Normalized inputs (N, 1, 28, 28) -> (N, D) float32, the input of the last Linear, computed in eval mode."""
    modes = {module: module.training for module in model.modules()}
    model.eval()  # dropout off, BatchNorm on its running statistics: the features the prediction uses
    try:
        with capturing_features(model) as captured:
            model(x)
    finally:
        for module, training in modes.items():
            module.training = training
    return torch.cat(captured).float().cpu().numpy()  # (N, D)


def _as_matrix(features: np.ndarray, width: int | None = None) -> np.ndarray:
    """(D,) or (M, D) or (M, ...) -> (M, D) float64, checked to be finite and of the map's width."""
    f = np.asarray(features, dtype=np.float64)
    f = f.reshape(1, -1) if f.ndim == 1 else f.reshape(len(f), -1)
    if width is not None and f.shape[1] != width:
        raise EmbeddingError(f"features have {f.shape[1]} values each, but this map was made from {width}")
    if not np.isfinite(f).all():
        raise EmbeddingError("features contain NaN or infinite values")
    return f


# ---------------------------------------------------------------- projections
@dataclass
class Projection:
    """A 2D map of the test set and how to place new feature vectors (the live drawing) on it."""

    method: str                  # "pca" or "tsne"
    points: np.ndarray           # (N, 2) float32, one per test image, same order as the features given
    fitted: np.ndarray           # (N,) bool: optimized by the method itself (t-SNE's subsample); the rest placed
    mean: np.ndarray | None = field(default=None, repr=False)                # (D,) PCA: the features' mean
    components: np.ndarray | None = field(default=None, repr=False)          # (2, D) PCA: the two axes
    reference_features: np.ndarray | None = field(default=None, repr=False)  # (K, D) t-SNE: fitted points' features
    reference_points: np.ndarray | None = field(default=None, repr=False)    # (K, 2) t-SNE: their map positions
    neighbours: int = TSNE_NEIGHBOURS

    @property
    def width(self) -> int:
        """D, the length of the feature vectors this map takes."""
        return int((self.components if self.components is not None else self.reference_features).shape[1])

    def place(self, features: np.ndarray) -> np.ndarray:
        """(D,) or (M, D) features -> (M, 2) float32 map positions."""
        f = _as_matrix(features, self.width)
        if self.components is not None:
            return ((f - self.mean) @ self.components.T).astype(np.float32)  # the same linear map as the points
        return _interpolate(f, self.reference_features, self.reference_points, self.neighbours)


def pca_projection(features: np.ndarray) -> Projection:
    """The exact projection onto the two directions of largest variance (eigenvectors of the covariance)."""
    f = _as_matrix(features)
    if len(f) < 2:
        raise EmbeddingError(f"a map needs at least 2 points, got {len(f)}")
    mean = f.mean(axis=0)
    centred = f - mean                                   # (N, D)
    _, vectors = np.linalg.eigh(centred.T @ centred)     # ascending eigenvalues; (D, D)
    components = vectors[:, ::-1][:, :2].T.copy()        # (2, D), largest variance first
    if components.shape[0] < 2:                          # one-dimensional features: the second axis is 0
        components = np.vstack([components, np.zeros_like(components)])
    # An eigenvector's sign is arbitrary: fix it (largest loading positive) so the map does not flip between runs.
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    points = (centred @ components.T).astype(np.float32)
    return Projection("pca", points, np.ones(len(f), dtype=bool), mean=mean, components=components)


def stratified_subsample(n: int, count: int, labels: np.ndarray | None, seed: int) -> np.ndarray:
    """Sorted indices of `count` of `n` points, the same share of every label (uniform without labels)."""
    rng = np.random.default_rng(seed)
    if count >= n:
        return np.arange(n)
    if labels is None:
        return np.sort(rng.choice(n, count, replace=False))
    labels = np.asarray(labels)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = max(1, round(len(members) * count / n))
        chosen.append(rng.choice(members, min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def _interpolate(queries: np.ndarray, reference: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    """Inverse-distance-weighted mean of the map positions of each query's k nearest reference features.

    t-SNE has no formula for new points; its neighbours in feature space are where the network "thinks" it
    belongs, so it lands among them (on a reference point's own position when the features are identical).
    """
    k = min(k, len(reference))
    placed = np.empty((len(queries), 2), dtype=np.float32)
    squared_norms = (reference ** 2).sum(axis=1)                      # (K,)
    for start in range(0, len(queries), 1024):                        # bounded memory: (1024, K) distances
        q = queries[start:start + 1024]
        d2 = (q ** 2).sum(axis=1)[:, None] + squared_norms[None, :] - 2 * q @ reference.T
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]           # (B, k)
        distances = np.sqrt(np.maximum(np.take_along_axis(d2, nearest, axis=1), 0.0))
        weights = 1.0 / np.maximum(distances, 1e-12)
        weights /= weights.sum(axis=1, keepdims=True)
        placed[start:start + len(q)] = (weights[:, :, None] * positions[nearest]).sum(axis=1)
    return placed


def tsne_projection(features: np.ndarray, seed: int = 0, should_stop: Callable[[], bool] | None = None,
                    on_progress: Callable[[int, int], None] | None = None, *, labels: np.ndarray | None = None,
                    max_points: int = TSNE_POINTS, threads: int | None = None) -> Projection | None:
    """t-SNE (openTSNE, Barnes-Hut) of about `max_points` points, the others placed among their neighbours.

    `labels` make the subsample stratified; `threads` (default TSNE_THREADS) are openTSNE's.
    `on_progress(iterations done, total)` every few iterations; `should_stop()` is checked as often, and a
    stop returns None.
    """
    f = _as_matrix(features)
    n = len(f)
    if min(n, max_points) < 5:
        raise EmbeddingError(f"t-SNE needs at least 5 points, got {min(n, max_points)}")
    if labels is not None and len(labels) != n:
        raise EmbeddingError(f"{len(labels)} labels for {n} feature vectors")
    total = TSNE_EARLY_ITERATIONS + TSNE_ITERATIONS
    if should_stop is not None and should_stop():
        return None
    if on_progress is not None:
        on_progress(0, total)
    import openTSNE  # 1 s to import; only the background map needs it

    fitted = stratified_subsample(n, max_points, labels, seed)
    done = 0

    def check(_iteration: int, _error: float, _embedding: np.ndarray) -> bool:
        nonlocal done
        done = min(done + TSNE_CHECK_EVERY, total)
        if on_progress is not None:
            on_progress(done, total)
        return should_stop is not None and should_stop()  # True interrupts openTSNE's optimization

    tsne = openTSNE.TSNE(perplexity=min(TSNE_PERPLEXITY, (len(fitted) - 1) / 3), n_jobs=threads or TSNE_THREADS,
                         random_state=seed, negative_gradient_method="bh",  # BH beats FFT below ~10k points
                         early_exaggeration_iter=TSNE_EARLY_ITERATIONS, n_iter=TSNE_ITERATIONS,
                         callbacks=check, callbacks_every_iters=TSNE_CHECK_EVERY, verbose=False)
    embedding = np.asarray(tsne.fit(f[fitted]), dtype=np.float64)  # (K, 2)
    if should_stop is not None and should_stop():
        return None
    points = np.empty((n, 2), dtype=np.float32)
    points[fitted] = embedding
    mask = np.zeros(n, dtype=bool)
    mask[fitted] = True
    if not mask.all():
        points[~mask] = _interpolate(f[~mask], f[fitted], embedding, TSNE_NEIGHBOURS)
    return Projection("tsne", points, mask, reference_features=f[fitted], reference_points=embedding)
