"""The 2D map: penultimate features for every architecture, PCA and t-SNE maps, placing a drawing on them."""
import numpy as np
import pytest
import torch
from torch import nn

from core.data import load_mnist, to_float
from core.embedding import (TSNE_EARLY_ITERATIONS, TSNE_ITERATIONS, EmbeddingError, pca_projection,
                            penultimate_features, tsne_projection)
from core.models import ARCHITECTURES, build_model
from core.training import normalize
from core.weights import load_default_weights

TOTAL_ITERATIONS = TSNE_EARLY_ITERATIONS + TSNE_ITERATIONS


def clustered_features(n: int = 300, width: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) features in 10 well-separated clusters, one per digit, and their digits."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (10, width))
    labels = np.arange(n) % 10
    return centres[labels] + rng.normal(0, 1, (n, width)), labels


def neighbour_agreement(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """How often a point's k nearest points on the map have its digit (1.0: every digit is its own island)."""
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_penultimate_features_are_the_heads_input_and_leave_the_model_as_found(arch):
    torch.manual_seed(0)
    model = build_model(arch).train()
    x = torch.randn(6, 1, 28, 28)
    features = penultimate_features(model, x)
    head = model[-1]
    assert isinstance(head, nn.Linear) and features.shape == (6, head.in_features) and features.dtype == np.float32
    assert all(m.training for m in model.modules()) and not any(m._forward_hooks for m in model.modules())
    model.eval()
    with torch.no_grad():
        expected = model[:-1](x).flatten(1)  # everything before the head, in eval mode
        assert torch.allclose(head(torch.from_numpy(features)), model(x), atol=1e-5)
    assert np.allclose(features, expected.numpy(), atol=1e-6)


def test_a_model_without_a_linear_layer_is_refused():
    with pytest.raises(EmbeddingError, match="no Linear layer"):
        penultimate_features(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), torch.zeros(1, 1, 28, 28))


def test_pca_places_each_test_image_exactly_on_its_point():
    features, _ = clustered_features()
    pca = pca_projection(features.astype(np.float32))
    assert pca.method == "pca" and pca.points.shape == (300, 2) and pca.points.dtype == np.float32
    assert np.allclose(pca.place(features), pca.points, atol=1e-5)
    assert np.allclose(pca.place(features[7]), pca.points[7:8], atol=1e-5)  # one drawing: (D,) -> (1, 2)
    assert pca.points[:, 0].var() >= pca.points[:, 1].var() > 0
    assert np.allclose(pca_projection(features).points, pca.points, atol=1e-4)  # the map does not flip
    with pytest.raises(EmbeddingError, match="made from 20"):
        pca.place(np.zeros(21))
    with pytest.raises(EmbeddingError, match="NaN"):
        pca.place(np.full(20, np.nan))


def test_tsne_shows_digits_as_groups_and_places_points_among_their_neighbours():
    features, labels = clustered_features()
    progress = []
    threads = torch.get_num_threads()
    tsne = tsne_projection(features, labels=labels, on_progress=lambda done, total: progress.append((done, total)))
    assert tsne.method == "tsne" and tsne.points.shape == (300, 2) and tsne.points.dtype == np.float32
    assert tsne.fitted.all() and np.isfinite(tsne.points).all()
    assert neighbour_agreement(tsne.points, labels) > 0.95
    assert progress[0] == (0, TOTAL_ITERATIONS) and progress[-1] == (TOTAL_ITERATIONS, TOTAL_ITERATIONS)
    assert all(a[0] < b[0] for a, b in zip(progress, progress[1:])) and torch.get_num_threads() == threads

    assert np.allclose(tsne.place(features[:20]), tsne.points[:20], atol=1e-4)  # a test image lands on itself
    nudged = features[:40] + np.random.default_rng(1).normal(0, 0.3, (40, 20))  # a drawing like test image i
    placed = tsne.place(nudged)
    d = ((placed[:, None, :] - tsne.points[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d, axis=1)[:, :5]
    assert (labels[nearest] == labels[:40, None]).mean() > 0.95


def test_tsne_subsample_is_stratified_and_the_rest_lands_with_its_digit():
    features, labels = clustered_features(n=400)
    tsne = tsne_projection(features, labels=labels, max_points=100)
    assert tsne.points.shape == (400, 2) and tsne.fitted.sum() == 100
    assert np.bincount(labels[tsne.fitted]).tolist() == [10] * 10
    assert neighbour_agreement(tsne.points, labels) > 0.95  # the 300 placed ones too
    assert np.array_equal(tsne_projection(features, labels=labels, max_points=100).points, tsne.points)  # seeded


def test_tsne_stops_promptly():
    features, labels = clustered_features()
    progress = []
    stopped = tsne_projection(features, labels=labels, on_progress=lambda done, total: progress.append(done),
                              should_stop=lambda: len(progress) >= 3)
    assert stopped is None and progress == [0, 10, 20]  # asked after 20 of 750 iterations; stopped at the next check
    assert tsne_projection(features, should_stop=lambda: True) is None
    with pytest.raises(EmbeddingError, match="at least 5"):
        tsne_projection(features[:4])
    with pytest.raises(EmbeddingError, match="10 labels for 300"):
        tsne_projection(features, labels=labels[:10])


@pytest.fixture(scope="module")
def real_features():
    from tests.conftest import REAL_MNIST, real_mnist_available

    if not real_mnist_available():
        pytest.skip(f"real MNIST not found in {REAL_MNIST}")
    weights = load_default_weights()
    data = load_mnist(REAL_MNIST, val_fraction=0.0, download=False)
    x = normalize(to_float(data.test_images[:1000]), weights.normalization)  # (1000, 1, 28, 28)
    return penultimate_features(weights.model, x), data.test_labels[:1000].numpy()


def test_real_mnist_maps_group_the_digits(real_features):
    features, labels = real_features
    assert features.shape == (1000, 128)
    pca = pca_projection(features)
    assert np.allclose(pca.place(features[:50]), pca.points[:50], atol=1e-3)
    tsne = tsne_projection(features, labels=labels, max_points=500)
    assert neighbour_agreement(tsne.points[tsne.fitted], labels[tsne.fitted]) > 0.95
    placed = ~tsne.fitted  # 500 test images placed the way the live drawing is
    d = ((tsne.points[placed][:, None, :] - tsne.points[tsne.fitted][None, :, :]) ** 2).sum(-1)
    assert (labels[tsne.fitted][d.argmin(1)] == labels[placed]).mean() > 0.95
    assert neighbour_agreement(tsne.points, labels) > neighbour_agreement(pca.points, labels)
