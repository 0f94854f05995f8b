"""Shared fixtures: offscreen Qt, a private per-user folder, tiny synthetic MNIST IDX files, the real MNIST path."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # headless Qt for every GUI test

REAL_MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SYNTHETIC_COUNTS = {True: 600, False: 200}  # train, test images in the synthetic files


def real_mnist_available() -> bool:
    return (REAL_MNIST / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


requires_real_mnist = pytest.mark.skipif(not real_mnist_available(), reason=f"real MNIST not found in {REAL_MNIST}")


@pytest.fixture
def real_mnist_dir() -> Path:
    if not real_mnist_available():
        pytest.skip(f"real MNIST not found in {REAL_MNIST}")
    return REAL_MNIST


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own per-user folder, so nothing touches the real one."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DIGIT_RECOGNIZER_HOME", str(home))
    return home


def square_pattern_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) uint8 images where each digit is a learnable pattern: a bright 6x6 square at a digit-specific place."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)  # faint noise
    for i, d in enumerate(labels):
        row, col = 3 + (d // 5) * 12 + rng.integers(-1, 2), 2 + (d % 5) * 5 + rng.integers(-1, 2)
        images[i, row:row + 6, col:col + 4] = 255
    return images, labels.astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 2051 if array.ndim == 3 else 2049
    with open(path, "wb") as f:
        f.write(struct.pack(f">{array.ndim + 1}I", magic, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


@pytest.fixture
def synthetic_mnist(tmp_path, monkeypatch) -> Path:
    """A data folder in torchvision's layout holding tiny synthetic IDX files; the count check expects their sizes."""
    import core.data

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for train, prefix in ((True, "train"), (False, "t10k")):
        images, labels = square_pattern_digits(SYNTHETIC_COUNTS[train], seed=1 if train else 2)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    monkeypatch.setattr(core.data, "EXPECTED_COUNTS", dict(SYNTHETIC_COUNTS))
    return tmp_path / "data"


@pytest.fixture
def tiny_settings(synthetic_mnist):
    """Fast training settings on the synthetic data (the tutorial's model, 2 epochs of 27 batches, CPU)."""
    from core.training import preset

    return preset("quick", data_dir=str(synthetic_mnist), arch="tutorial", arch_args={}, epochs=2, batch_size=20,
                  device="cpu", lr=3e-3, val_fraction=0.1)
