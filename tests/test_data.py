"""MNIST loading: layouts, download fallback, strict validation, stratified split, batching."""
import gzip
import shutil

import pytest
import torch

import core.data
from core.data import DataError, load_mnist, stratified_split
from tests.conftest import SYNTHETIC_COUNTS, square_pattern_digits, write_idx


def raw(folder):
    return folder / "MNIST" / "raw"


def test_synthetic_folder_loads_with_a_stratified_validation_split(synthetic_mnist):
    data = load_mnist(synthetic_mnist, val_fraction=0.1, seed=0, download=False)
    assert len(data.train_images) + len(data.val_images) == SYNTHETIC_COUNTS[True]
    assert len(data.test_images) == SYNTHETIC_COUNTS[False]
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape[1:] == (28, 28)
    # every digit contributes the same share to validation (60 per digit -> 6 each)
    assert torch.bincount(data.val_labels, minlength=10).tolist() == [6] * 10
    again = load_mnist(synthetic_mnist, val_fraction=0.1, seed=0, download=False)
    assert torch.equal(again.val_labels, data.val_labels) and torch.equal(again.val_images, data.val_images)
    other = load_mnist(synthetic_mnist, val_fraction=0.1, seed=1, download=False)
    assert not torch.equal(other.val_images, data.val_images)


def test_stratified_split_is_disjoint_and_complete():
    labels = torch.arange(1000) % 10
    train_idx, val_idx = stratified_split(labels, 0.2, seed=3)
    assert len(set(train_idx.tolist()) & set(val_idx.tolist())) == 0
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(1000))
    assert torch.bincount(labels[val_idx]).tolist() == [20] * 10
    with pytest.raises(ValueError):
        stratified_split(labels, 1.0, seed=0)


def test_flat_folder_of_gzipped_files_is_accepted(synthetic_mnist, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in raw(synthetic_mnist).iterdir():
        with open(f, "rb") as src, gzip.open(flat / f"{f.name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    data = load_mnist(flat, download=False)
    reference = load_mnist(synthetic_mnist, download=False)
    assert torch.equal(data.test_images, reference.test_images)


def test_missing_files_name_folder_files_and_download_failure(tmp_path, monkeypatch):
    def offline(root, **_):
        raise OSError("network is unreachable")

    monkeypatch.setattr(core.data, "_download", offline)
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path / "empty")
    message = str(err.value)
    assert str(tmp_path / "empty") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "network is unreachable" in message


def test_download_is_tried_for_online_users(tmp_path, monkeypatch):
    """When files are missing, the download is called and its files are then used."""
    def fake_download(root, **_):  # stands in for the network: writes what the mirrors would
        folder = root / "MNIST" / "raw"
        folder.mkdir(parents=True)
        for train, prefix in ((True, "train"), (False, "t10k")):
            images, labels = square_pattern_digits(SYNTHETIC_COUNTS[train], seed=5)
            write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)

    monkeypatch.setattr(core.data, "_download", fake_download)
    monkeypatch.setattr(core.data, "EXPECTED_COUNTS", dict(SYNTHETIC_COUNTS))
    data = load_mnist(tmp_path / "fresh")
    assert len(data.test_images) == SYNTHETIC_COUNTS[False]


def test_truncated_file_is_an_error_not_a_smaller_dataset(synthetic_mnist):
    path = raw(synthetic_mnist) / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_mnist(synthetic_mnist, download=False)


def test_wrong_magic_and_bad_labels_are_errors(synthetic_mnist):
    images = raw(synthetic_mnist) / "t10k-images-idx3-ubyte"
    labels = raw(synthetic_mnist) / "t10k-labels-idx1-ubyte"
    good_images = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    with pytest.raises(DataError, match="not an MNIST image file"):
        load_mnist(synthetic_mnist, download=False)
    images.write_bytes(good_images)
    data = bytearray(labels.read_bytes())
    data[8] = 12
    labels.write_bytes(bytes(data))
    with pytest.raises(DataError, match="label 12"):
        load_mnist(synthetic_mnist, download=False)


def test_count_must_be_mnists(synthetic_mnist, monkeypatch):
    monkeypatch.setattr(core.data, "EXPECTED_COUNTS", {True: 60_000, False: 10_000})
    with pytest.raises(DataError, match="MNIST has 60000"):
        load_mnist(synthetic_mnist, download=False)
