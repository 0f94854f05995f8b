"""Library calls leave the process as they found it: torch's thread count, the global RNG, the model's train/eval mode."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core import paths
from core.evaluation import evaluate_test_set
from core.finetune import FinetuneSettings, finetune
from core.insight import explain
from core.models import ARCHITECTURES, build_model
from core.predict import Predictor
from core.samples import SampleSet
from core.training import TrainingError, evaluate, train
from core.weights import LoadedWeights
from tests.conftest import square_pattern_digits

CALLER_SEED = 20240611  # a seed no library call uses: the caller's own
CALLER_THREADS = 1      # the calls below ask for 2, so a leaked count shows


@pytest.fixture
def caller_state():
    """The caller's own seed and thread count; the test's process gets its own state back afterwards."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        torch.manual_seed(CALLER_SEED)
        torch.set_num_threads(CALLER_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def process_state() -> tuple[int, int, torch.Tensor]:
    return torch.get_num_threads(), torch.initial_seed(), torch.get_rng_state()


def assert_unchanged(before: tuple[int, int, torch.Tensor]) -> None:
    threads, seed, rng = process_state()
    assert threads == before[0], f"torch thread count left at {threads}, was {before[0]}"
    assert seed == before[1], f"global seed left at {seed}, was {before[1]}"
    assert torch.equal(rng, before[2]), "the global random generator moved on"


def tutorial_weights() -> LoadedWeights:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("tutorial")
    return LoadedWeights(model, "tutorial", {}, ARCHITECTURES["tutorial"].normalization)


def test_train_restores_threads_and_the_global_rng(tiny_settings, caller_state):
    before = process_state()
    result = train(replace(tiny_settings, epochs=1, threads=2))
    assert result.test is not None
    assert_unchanged(before)


def test_train_restores_them_when_it_fails(tiny_settings, caller_state):
    before = process_state()
    with pytest.raises(TrainingError, match="learning rate"):
        train(replace(tiny_settings, optimizer="sgd", schedule="constant", lr=1e12, threads=2))
    assert_unchanged(before)


def test_same_seed_same_weights_whatever_the_callers_rng(tiny_settings, caller_state):
    """The shipped recipe stays reproducible: dropout and init come from the run's seed, not from the caller."""
    settings = replace(tiny_settings, arch="digitnet", arch_args={"width": 4}, epochs=1, batch_size=50,
                       augment=True, synthetic_digits=50)  # dropout, augmentation and pen digits all draw numbers
    first = train(settings).model.state_dict()
    torch.rand(1000)  # the caller draws numbers between the runs
    second = train(settings).model.state_dict()
    other_seed = train(replace(settings, seed=1)).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other_seed[k]) for k in first)


def test_evaluate_leaves_the_model_in_its_mode_and_the_rng_alone(caller_state):
    weights = tutorial_weights()
    images, labels = (torch.from_numpy(a) for a in square_pattern_digits(50, seed=3))
    for training in (True, False):
        weights.model.train(training)
        before = process_state()
        ev = evaluate(weights.model, images, labels.long(), weights.normalization, batch_size=20)
        assert ev.n == 50
        assert all(m.training == training for m in weights.model.modules())
        assert_unchanged(before)


def test_evaluate_test_set_leaves_the_process_alone(synthetic_mnist, caller_state):
    before = process_state()
    report = evaluate_test_set(tutorial_weights(), synthetic_mnist, download=False)
    assert report.evaluation.n == 200
    assert_unchanged(before)


def test_explain_leaves_the_process_alone(caller_state):
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255  # a stroke: something to recognize
    predictor = Predictor(tutorial_weights())
    before = process_state()
    explanation = explain(predictor, image)
    assert explanation is not None and explanation.attribution.shape == (28, 28)
    assert_unchanged(before)


def test_finetune_leaves_the_process_alone(caller_state):
    images, labels = square_pattern_digits(40, seed=4)
    samples = SampleSet(images, labels.astype(np.int64),
                        [paths.samples_dir() / str(d) / f"{i}.png" for i, d in enumerate(labels)], [], (0.0, 1.0))
    before = process_state()
    result = finetune(tutorial_weights(), samples, FinetuneSettings(steps=3, batch_size=16, threads=2, device="cpu"))
    assert result.model is not None
    assert_unchanged(before)
