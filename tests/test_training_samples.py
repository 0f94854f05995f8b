"""Training on "MNIST + my samples": your saved samples, oversampled, are mixed into the training split."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core import paths
from core.preprocess import preprocess
from core.samples import SampleStore
from core.settings import TrainingError
from core.training import train

SHARE = 0.1


def writer(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A writer whose 3s are a fat bar, unlike any synthetic MNIST digit: (112, 112) images, labelled 3.

    (The synthetic digits differ only in where their square sits, and preprocessing centres every drawing, so a
    drawn one becomes a centred block: something the synthetic MNIST never shows.) Flat paper, as drawn on the pad:
    on noisy paper the picture would take the photo route, which reads a solid block as a stain."""
    images = np.zeros((n, 112, 112), np.uint8)  # flat paper, as the pad saves samples
    rng = np.random.default_rng(seed)
    for image in images:
        top, left = rng.integers(10, 40, size=2)
        image[top:top + rng.integers(50, 62), left:left + rng.integers(22, 34)] = 255
    return images, np.full(n, 3)


def read_as(result, images: np.ndarray) -> list[int]:
    batch = torch.stack([preprocess(image, result.normalization).tensor for image in images])  # (N, 1, 28, 28)
    with torch.no_grad():
        return result.model(batch).argmax(1).tolist()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread: tiny models train fastest so, above all while other programs load the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_my_samples_teach_the_trained_model_that_writers_digits(tiny_settings):
    images, labels = writer(20, seed=7)
    store = SampleStore()
    for image, label in zip(images, labels):
        store.add(image, int(label))
    unseen, _ = writer(50, seed=8)  # the same writer's other 3s, never saved
    plain = train(tiny_settings)
    batches = []
    mixed = train(replace(tiny_settings, my_samples_share=SHARE), on_batch=batches.append)
    assert np.mean(np.array(read_as(plain, unseen)) == 3) < 0.5  # MNIST alone: the writer's 3s are misread
    assert np.mean(np.array(read_as(mixed, unseen)) == 3) > 0.8  # with their samples: read as 3s
    assert mixed.test.accuracy >= plain.test.accuracy - 0.05    # ...and MNIST is read as well as before
    assert mixed.settings.my_samples_share == SHARE
    mnist_train = round(600 * (1 - tiny_settings.val_fraction))
    trained_on = batches[-1].batches_per_epoch * tiny_settings.batch_size
    assert trained_on >= mnist_train / (1 - SHARE) * 0.95  # every copy is trained on: about SHARE of the split


def test_without_samples_training_says_so_and_nothing_runs(tiny_settings):
    with pytest.raises(TrainingError, match="could not add your samples") as caught:
        train(replace(tiny_settings, my_samples_share=SHARE))
    assert str(paths.samples_dir()) in str(caught.value)


def test_a_share_outside_0_to_1_is_refused(tiny_settings):
    for share in (-0.1, 1.0):
        with pytest.raises(TrainingError, match="share of your own samples"):
            replace(tiny_settings, my_samples_share=share).validate()
