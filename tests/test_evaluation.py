"""The test-set report: same numbers as `evaluate --json`, per-image results, cancelling, the cache per weights."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.data import DataError, MnistData, to_float
from core.embedding import penultimate_features
from core.evaluation import ReportCache, evaluate_test_set, weights_fingerprint
from core.models import ARCHITECTURES, build_model
from core.training import evaluate, normalize, preset, train
from core.weights import LoadedWeights, load_default_weights, load_weights, save_weights
from tests.conftest import REAL_MNIST, SYNTHETIC_COUNTS, requires_real_mnist, square_pattern_digits

N_TEST = SYNTHETIC_COUNTS[False]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """The tutorial's net after one epoch on the synthetic digits, saved and loaded like any user's file."""
    train_images, train_labels = (torch.from_numpy(a) for a in square_pattern_digits(SYNTHETIC_COUNTS[True], seed=1))
    test_images, test_labels = (torch.from_numpy(a) for a in square_pattern_digits(N_TEST, seed=2))
    empty = torch.zeros(0, dtype=torch.long)
    data = MnistData(train_images, train_labels.long(), train_images[:0], empty, test_images, test_labels.long(),
                     folder=Path("synthetic"))
    result = train(preset("quick", arch="tutorial", arch_args={}, epochs=1, batch_size=20, lr=3e-3, device="cpu",
                          val_fraction=0.0), data=data)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    return save_weights(path, result.model, "tutorial", result.arch_args, result.normalization)


def cli_json(capsys, *argv) -> dict:
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def assert_same_numbers(report, cli: dict) -> None:
    ev = report.evaluation
    # exactly, after --json's rounding (core.jsonout): one computation, not two that agree closely
    assert cli["test_accuracy"] == round(ev.accuracy, 4)
    assert cli["per_class_accuracy"] == [round(a, 4) for a in ev.per_class_accuracy]
    assert cli["confusion"] == ev.confusion and cli["n"] == ev.n


def test_report_matches_the_evaluate_command_and_training(weights_file, synthetic_mnist, capsys):
    weights = load_weights(weights_file)
    report = evaluate_test_set(weights, synthetic_mnist)
    assert_same_numbers(report, cli_json(capsys, "evaluate", "--weights", weights_file, "--data", synthetic_mnist,
                                         "--json"))
    images, labels = square_pattern_digits(N_TEST, seed=2)
    direct = evaluate(weights.model, torch.from_numpy(images), torch.from_numpy(labels).long(), weights.normalization)
    assert report.evaluation == direct


def test_report_holds_every_images_result(weights_file, synthetic_mnist):
    weights = load_weights(weights_file)
    report = evaluate_test_set(weights, synthetic_mnist)
    images, labels = square_pattern_digits(N_TEST, seed=2)
    assert report.images.shape == (N_TEST, 28, 28) and report.images.dtype == np.uint8
    assert np.array_equal(report.images, images) and np.array_equal(report.labels, labels)
    assert report.labels.dtype == report.predictions.dtype == np.int64
    assert report.confidences.shape == (N_TEST,) and report.confidences.dtype == np.float32
    assert report.features.shape == (N_TEST, 400)  # the input of the tutorial's Linear(400, 10)
    assert report.features.dtype == np.float32

    x = normalize(to_float(torch.from_numpy(images)), weights.normalization)  # (N, 1, 28, 28)
    with torch.no_grad():
        probabilities = torch.softmax(weights.model(x), dim=1).numpy()
    assert np.array_equal(report.predictions, probabilities.argmax(1))
    assert np.allclose(report.confidences, probabilities.max(1), atol=1e-6)
    assert np.allclose(report.features, penultimate_features(weights.model, x), atol=1e-5)
    wrong = np.flatnonzero(report.predictions != report.labels)
    assert wrong.tolist() == report.evaluation.misclassified and 0 < report.evaluation.accuracy <= 1


def test_cells_and_confident_mistakes(synthetic_mnist):
    # An untrained net makes plenty of mistakes in many cells.
    weights = LoadedWeights(build_model("tutorial").eval(), "tutorial", {}, (0.0, 1.0))
    report = evaluate_test_set(weights, synthetic_mnist)
    confusion = report.evaluation.confusion
    for true in range(10):
        for predicted in range(10):
            cell = report.cell(true, predicted)
            assert len(cell) == confusion[true][predicted]
            assert (report.labels[cell] == true).all() and (report.predictions[cell] == predicted).all()
            assert (np.diff(report.confidences[cell]) <= 0).all()  # most confident first
    n_wrong = N_TEST - sum(confusion[d][d] for d in range(10))
    assert n_wrong > 60
    mistakes = report.confident_mistakes()
    assert len(mistakes) == 60 and len(report.confident_mistakes(k=10_000)) == n_wrong
    assert (report.predictions[mistakes] != report.labels[mistakes]).all()
    assert (np.diff(report.confidences[mistakes]) <= 0).all()
    assert report.confidences[mistakes[0]] == report.confidences[report.labels != report.predictions].max()
    with pytest.raises(ValueError, match="0-9"):
        report.cell(10, 0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_and_the_model_is_left_as_found(arch, synthetic_mnist):
    model = build_model(arch).train()  # BatchNorm nets are folded for evaluation: the model must come back unchanged
    weights = LoadedWeights(model, arch, {}, ARCHITECTURES[arch].normalization)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    progress = []
    report = evaluate_test_set(weights, synthetic_mnist, on_progress=lambda done, total: progress.append((done, total)),
                               batch_size=64)
    assert progress == [(0, N_TEST), (64, N_TEST), (128, N_TEST), (192, N_TEST), (N_TEST, N_TEST)]  # per batch
    assert report.features.shape == (N_TEST, model[-1].in_features)
    assert all(m.training for m in model.modules()) and torch.get_num_threads() == threads
    assert not any(m._forward_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    images, labels = square_pattern_digits(N_TEST, seed=2)
    direct = evaluate(model, torch.from_numpy(images), torch.from_numpy(labels).long(), weights.normalization,
                      batch_size=64)
    assert report.evaluation == direct


def test_stop_returns_none_within_one_batch(synthetic_mnist):
    model = build_model("digitnet").eval()
    weights = LoadedWeights(model, "digitnet", {}, ARCHITECTURES["digitnet"].normalization)
    batches = []
    report = evaluate_test_set(weights, synthetic_mnist, batch_size=20,
                               on_progress=lambda done, total: batches.append(done),
                               should_stop=lambda: len(batches) >= 2)
    assert report is None and batches == [0, 20]  # asked to stop after the first batch: no second one ran
    assert not model.training and not any(m._forward_hooks for m in model.modules())
    assert evaluate_test_set(weights, synthetic_mnist, should_stop=lambda: True) is None


def test_missing_mnist_gives_the_training_message(tmp_path):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(DataError) as from_training:
        train(preset("quick", data_dir=str(nowhere), download=False))
    weights = LoadedWeights(build_model("tutorial").eval(), "tutorial", {}, (0.0, 1.0))
    with pytest.raises(DataError) as from_evaluation:
        evaluate_test_set(weights, nowhere, download=False)
    assert str(from_evaluation.value) == str(from_training.value)
    assert str(from_evaluation.value).startswith(f"MNIST not found in {nowhere}")


def test_cache_hits_for_the_same_weights_and_misses_when_anything_changes(weights_file, synthetic_mnist, tmp_path):
    cache = ReportCache(max_entries=2)
    weights = load_weights(weights_file)
    report = evaluate_test_set(weights, synthetic_mnist)
    cache.put(weights, synthetic_mnist, report)
    assert cache.get(load_weights(weights_file), synthetic_mnist) is report  # the same file loaded again: a hit
    assert cache.get(load_weights(weights_file), synthetic_mnist / "MNIST" / "..") is report  # spelled otherwise

    changed = load_weights(weights_file)
    with torch.no_grad():
        changed.model[0].weight[0, 0, 0, 0] += 1e-4  # one parameter of 5,258
    assert weights_fingerprint(changed) != weights_fingerprint(weights)
    assert cache.get(changed, synthetic_mnist) is None

    other_data = tmp_path / "other"
    (other_data / "MNIST").mkdir(parents=True)
    (other_data / "MNIST" / "raw").symlink_to(synthetic_mnist / "MNIST" / "raw")  # same files, another folder
    assert cache.get(weights, other_data) is None

    cache.put(changed, synthetic_mnist, report)
    cache.put(weights, other_data, report)  # a third entry: the least recently used one goes
    assert len(cache) == 2 and cache.get(weights, synthetic_mnist) is None


@pytest.fixture(scope="module")
def real_report():
    return evaluate_test_set(load_default_weights(), REAL_MNIST)


@requires_real_mnist
def test_real_mnist_report_matches_the_evaluate_command(real_report, capsys):
    assert_same_numbers(real_report, cli_json(capsys, "evaluate", "--data", REAL_MNIST, "--json"))
    assert real_report.evaluation.n == 10_000 and real_report.evaluation.accuracy >= 0.995
    assert real_report.features.shape == (10_000, 128)  # DigitNet: 4 x width 32 channels, globally pooled
    mistakes = real_report.confident_mistakes()
    assert len(mistakes) == min(60, len(real_report.evaluation.misclassified))
    assert sum(len(real_report.cell(t, p)) for t in range(10) for p in range(10)) == 10_000


def test_a_data_folder_the_system_cannot_look_up_is_a_data_error_and_a_cache_miss(tmp_path):
    from core.data import DataError
    from core.evaluation import ReportCache, evaluate_test_set
    from core.models import build_model
    from core.weights import LoadedWeights

    weights = LoadedWeights(build_model("tutorial").eval(), "tutorial", {}, (0.0, 1.0))
    too_long = tmp_path / ("x" * 300)  # longer than any file name may be
    assert ReportCache().get(weights, too_long) is None
    with pytest.raises(DataError, match="cannot be used: File name too long"):
        evaluate_test_set(weights, too_long, download=False)
