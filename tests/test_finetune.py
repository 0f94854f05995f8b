"""Fine-tuning on a synthetic writer: learns the writer, keeps the (tiny synthetic) MNIST, reports before/after; offline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core import paths
from core.data import MnistData
from core.finetune import (
    FinetuneError,
    FinetuneProgress,
    FinetuneSettings,
    finetune,
    held_out_split,
    save_finetuned,
)
from core.samples import SampleSet
from core.training import evaluate, preset, train
from core.weights import LoadedWeights, load_weights
from tests.conftest import square_pattern_digits

# The tiny tutorial net learns fast; the synthetic patterns say the digit by position, which augmentation's shifts blur.
FAST = FinetuneSettings(steps=60, lr=3e-3, batch_size=64, augment_strength=0.0, threads=1)


def writer_images(n_per_digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A writer the synthetic-MNIST model has never seen: a horizontal bar whose height on the page says the digit."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_digit)
    images = rng.integers(0, 40, size=(len(labels), 28, 28)).astype(np.uint8)
    for i, d in enumerate(labels):
        row, col = 1 + int(d) * 2 + rng.integers(0, 2), 4 + rng.integers(-2, 3)
        images[i, row:row + 2, col:col + 20] = 255
    return images, labels.astype(np.int64)


def sample_set(n_per_digit: int, seed: int, normalization=(0.0, 1.0)) -> SampleSet:
    images, labels = writer_images(n_per_digit, seed)
    return SampleSet(images, labels, [paths.samples_dir() / str(d) / f"{i}.png" for i, d in enumerate(labels)], [],
                     normalization)


def synthetic_data() -> MnistData:
    train_x, train_y = square_pattern_digits(600, seed=1)
    test_x, test_y = square_pattern_digits(200, seed=2)
    t = torch.from_numpy
    return MnistData(t(train_x), t(train_y).long(), t(train_x[:0]), t(train_y[:0]).long(), t(test_x), t(test_y).long(),
                     folder=paths.mnist_dir())


def base_weights(arch: str) -> LoadedWeights:
    settings = preset("quick", arch=arch, arch_args={"width": 8} if arch == "fastnet" else {}, epochs=3, batch_size=20,
                      lr=3e-3, device="cpu", val_fraction=0.0, precision="fp32", threads=1)
    result = train(settings, data=synthetic_data())
    assert result.test.accuracy > 0.95  # the base reads its own (synthetic) MNIST
    return LoadedWeights(result.model, arch, result.arch_args, result.normalization)


@pytest.fixture(scope="module")
def tutorial_base() -> LoadedWeights:
    return base_weights("tutorial")


def accuracy(model, samples: SampleSet, normalization) -> float:
    return evaluate(model, torch.from_numpy(samples.images), torch.from_numpy(samples.labels), normalization).accuracy


def test_finetune_learns_the_writer_and_keeps_mnist(tutorial_base, synthetic_mnist):
    samples, unseen = sample_set(10, seed=3), sample_set(20, seed=4)
    state = {k: v.clone() for k, v in tutorial_base.model.state_dict().items()}
    rng_state, threads = torch.get_rng_state(), torch.get_num_threads()
    progress: list[FinetuneProgress] = []
    result = finetune(tutorial_base, samples, FAST, data_dir=synthetic_mnist, on_progress=progress.append)

    assert result.held_out["n"] == 20 and result.trained_on == 80 and result.samples == 100
    assert result.held_out["before"] < 0.5 and result.held_out["after"] >= 0.9
    assert accuracy(tutorial_base.model, unseen, (0.0, 1.0)) < 0.5
    assert accuracy(result.model, unseen, (0.0, 1.0)) >= 0.9
    assert result.mnist_test["after"] >= result.mnist_test["before"] - 0.02 and result.mnist_test["after"] > 0.95
    assert result.notes == [] and not result.stopped and result.steps_done == 60
    assert [p.step for p in progress] == list(range(1, 61)) and all(p.total == 60 for p in progress)
    # the base is untouched, and so is the process: global RNG and thread count
    assert all(torch.equal(v, tutorial_base.model.state_dict()[k]) for k, v in state.items())
    assert torch.equal(torch.get_rng_state(), rng_state) and torch.get_num_threads() == threads
    assert not result.model.training and result.model is not tutorial_base.model


def test_offline_it_still_learns_and_says_it_could_not_guard_against_forgetting(tutorial_base, tmp_path):
    result = finetune(tutorial_base, sample_set(10, seed=3), FAST, data_dir=tmp_path / "no-mnist")
    assert result.mnist_test is None
    assert any("could not guard against forgetting" in note and "MNIST not found" in note for note in result.notes)
    assert result.held_out["after"] >= 0.9


def test_batchnorm_nets_keep_their_running_statistics(synthetic_mnist):
    base = base_weights("fastnet")
    stats = {k: v.clone() for k, v in base.model.state_dict().items() if "running" in k}
    result = finetune(base, sample_set(10, seed=3, normalization=base.normalization),
                      FinetuneSettings(steps=30, lr=3e-3, batch_size=32, augment_strength=0.0, threads=1), data_dir=synthetic_mnist)
    after = result.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in stats.items())  # a few samples must not skew BatchNorm
    assert result.held_out["after"] > result.held_out["before"]
    assert result.mnist_test["after"] >= result.mnist_test["before"] - 0.03


def test_too_few_samples_are_all_trained_on_and_the_notes_say_so(tutorial_base, synthetic_mnist):
    result = finetune(tutorial_base, sample_set(1, seed=3), FinetuneSettings(steps=3, threads=1),
                      data_dir=synthetic_mnist)
    assert result.held_out is None and result.trained_on == 10
    assert any("none held out" in note and "at least 20" in note for note in result.notes)


def test_held_out_split_takes_the_same_share_of_every_digit():
    labels = torch.tensor([d for d in range(10) for _ in range(10)] + [3] * 5)
    train_idx, held, note = held_out_split(labels, 0.2, 20, seed=0)
    assert note is None
    assert torch.bincount(labels[held], minlength=10).tolist() == [2, 2, 2, 3, 2, 2, 2, 2, 2, 2]
    assert sorted(train_idx.tolist() + held.tolist()) == list(range(len(labels)))
    lone = torch.tensor([0] * 30 + [1])  # a digit with one sample keeps it for training
    _, held, _ = held_out_split(lone, 0.2, 20, seed=0)
    assert 30 not in held.tolist()


def test_stop_ends_early_and_nothing_is_saved(tutorial_base, synthetic_mnist):
    calls = []
    result = finetune(tutorial_base, sample_set(10, seed=3), FAST, data_dir=synthetic_mnist,
                      on_progress=calls.append, should_stop=lambda: len(calls) >= 3)
    assert result.stopped and result.steps_done == 3
    assert result.held_out["after"] is None and result.mnist_test["after"] is None
    with pytest.raises(FinetuneError, match="stopped"):
        save_finetuned(result, tutorial_base)
    assert not paths.user_weights_dir().exists()


def test_keep_asked_during_the_last_step_is_a_complete_run_and_before_the_first_keeps_nothing(tutorial_base,
                                                                                              synthetic_mnist):
    calls = []
    late = finetune(tutorial_base, sample_set(10, seed=3), FAST, data_dir=synthetic_mnist, on_progress=calls.append,
                    should_stop=lambda: len(calls) >= FAST.steps, measure_when_stopped=lambda: True)
    assert not late.stopped and late.steps_done == FAST.steps and late.mnist_test["after"] is not None
    assert not any("stopped" in note for note in late.notes)
    early = finetune(tutorial_base, sample_set(10, seed=3), FAST, data_dir=synthetic_mnist,
                     should_stop=lambda: True, measure_when_stopped=lambda: True)
    assert early.stopped and not early.kept and early.steps_done == 0 and early.mnist_test["after"] is None
    with pytest.raises(FinetuneError, match="stopped"):
        save_finetuned(early, tutorial_base)


def test_a_stopped_run_to_be_kept_is_measured_and_saved_marked_as_stopped(tutorial_base, synthetic_mnist):
    calls = []
    result = finetune(tutorial_base, sample_set(10, seed=3), FAST, data_dir=synthetic_mnist,
                      on_progress=calls.append, should_stop=lambda: len(calls) >= 3, measure_when_stopped=lambda: True)
    assert result.stopped and result.kept and result.steps_done == 3
    assert 0 <= result.held_out["after"] <= 1 and 0 <= result.mnist_test["after"] <= 1
    assert "stopped after 3 of" in result.notes[-1] and "not measured" not in result.notes[-1]
    saved = load_weights(save_finetuned(result, tutorial_base))
    assert "stopped" in saved.path.name and saved.metrics["stopped"] and saved.metrics["steps_done"] == 3
    assert saved.metrics["test_accuracy"] == result.mnist_test["after"]


def test_save_writes_a_new_file_with_before_after_metrics_and_refuses_the_defaults(tutorial_base, synthetic_mnist,
                                                                                    tmp_path):
    result = finetune(tutorial_base, sample_set(10, seed=3), FAST, data_dir=synthetic_mnist)
    base_file = tmp_path / "mine.pt"
    base = LoadedWeights(tutorial_base.model, "tutorial", {}, (0.0, 1.0), {"preset": "quick"}, path=base_file)
    base_file.write_bytes(b"the user's base weights")
    defaults = paths.DEFAULT_WEIGHTS.read_bytes()
    for refused in (paths.DEFAULT_WEIGHTS, base_file):
        with pytest.raises(FinetuneError, match="never overwritten|choose another file"):
            save_finetuned(result, base, refused)
    assert paths.DEFAULT_WEIGHTS.read_bytes() == defaults and base_file.read_bytes() == b"the user's base weights"

    written = save_finetuned(result, base)
    assert written.parent == paths.user_weights_dir() and written.name.startswith("finetuned-tutorial-")
    loaded = load_weights(written)
    assert loaded.test_accuracy == pytest.approx(result.mnist_test["after"])
    assert loaded.metrics["held_out_accuracy"] == pytest.approx(result.held_out["after"])
    assert loaded.settings["finetuned_from"] == "mine.pt" and loaded.settings["preset"] == "fine-tuned"
    assert accuracy(loaded.model, sample_set(20, seed=4), (0.0, 1.0)) >= 0.9
    assert save_finetuned(result, base) != written  # a second save never replaces the first


@pytest.mark.parametrize("bad", [{"steps": 0}, {"lr": -1.0}, {"replay_share": 1.0}, {"held_out_share": 1.5},
                                 {"batch_size": 1}, {"device": "tpu"}])
def test_settings_that_cannot_work_are_refused_in_plain_words(tutorial_base, bad):
    with pytest.raises(FinetuneError):
        finetune(tutorial_base, sample_set(2, seed=3), FinetuneSettings(**bad))
