"""The real thing: MNIST from ../shared/data, the tutorial's recipe in one epoch, the shipped weights' accuracy."""
import json

import numpy as np
import pytest
import torch

from core.cli import main
from core.data import load_mnist
from core.predict import Predictor
from core.training import evaluate, preset, train
from core.weights import load_default_weights


@pytest.fixture(scope="module")
def mnist():
    from tests.conftest import REAL_MNIST, real_mnist_available

    if not real_mnist_available():
        pytest.skip(f"real MNIST not found in {REAL_MNIST}")
    return load_mnist(REAL_MNIST, val_fraction=0.1, seed=0, download=False)


def test_real_mnist_counts_and_stratified_split(mnist):
    assert len(mnist.train_images) + len(mnist.val_images) == 60_000 and len(mnist.test_images) == 10_000
    train_share = torch.bincount(mnist.train_labels, minlength=10).float() / len(mnist.train_labels)
    val_share = torch.bincount(mnist.val_labels, minlength=10).float() / len(mnist.val_labels)
    assert (train_share - val_share).abs().max() < 0.002  # every digit equally represented in both


def test_tutorial_recipe_reaches_97_percent_in_one_epoch(real_mnist_dir):
    result = train(preset("tutorial", data_dir=str(real_mnist_dir), device="cpu"))
    assert len(result.epochs) == 1 and result.test.accuracy >= 0.97


def test_shipped_default_weights_score_99_6_on_the_test_set(mnist):
    weights = load_default_weights()
    ev = evaluate(weights.model, mnist.test_images, mnist.test_labels, weights.normalization)
    assert ev.accuracy >= 0.996 and min(ev.per_class_accuracy) >= 0.99


def test_prediction_path_on_mnist_test_images_agrees(mnist):
    """MNIST digits sent through the full preprocessing (as image files would be) are still read correctly."""
    predictor = Predictor(load_default_weights())
    images = [mnist.test_images[i].numpy() for i in range(1000)]
    predicted = [p.digit for p in predictor.predict_many(images)]
    accuracy = np.mean(np.array(predicted) == mnist.test_labels[:1000].numpy())
    assert accuracy >= 0.99


def test_evaluate_command_on_real_mnist(real_mnist_dir, capsys):
    assert main(["evaluate", "--data", str(real_mnist_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 10_000 and report["test_accuracy"] >= 0.996
