"""Training loop, callbacks, cancel, reproducibility, evaluation metrics and augmentation."""
import math
from dataclasses import replace

import pytest
import torch

from core.augment import augment
from core.data import load_mnist
from core.models import build_model
from core.settings import preset_name, with_arch
from core.training import (PRESETS, TrainingError, TrainSettings, autocast_dtype, evaluate, inference_model, preset,
                           select_device, train)


def test_training_learns_and_reports_every_batch_and_epoch(tiny_settings):
    batches, epochs = [], []
    result = train(tiny_settings, on_batch=batches.append, on_epoch=epochs.append)
    per_epoch = math.ceil(540 / tiny_settings.batch_size)  # 600 synthetic images minus 10% validation
    assert len(batches) == per_epoch * tiny_settings.epochs
    assert batches[-1].total_batches == len(batches) and all(b.samples_per_second > 0 for b in batches)
    assert [e.epoch for e in epochs] == [0, 1]
    assert epochs[-1].train_loss < batches[0].loss
    assert result.test.accuracy > 0.9 and result.val_accuracy > 0.9  # the synthetic patterns are easy
    assert not result.stopped and result.metrics["test_accuracy"] == result.test.accuracy


def test_should_stop_cancels_within_one_batch(tiny_settings):
    batches = []
    result = train(tiny_settings, on_batch=batches.append, should_stop=lambda: len(batches) >= 3)
    assert len(batches) == 3
    assert result.stopped and result.test is None


def test_seeded_runs_are_reproducible_on_cpu(tiny_settings):
    """The README's promise: with --threads set, a seed gives bit-identical weights. (Unset, the count is chosen by
    timing batches, and one thread sums gradients in another order than two: a loaded machine changes the weights.)"""
    fixed = replace(tiny_settings, epochs=1, threads=2)
    a = train(fixed).model.state_dict()
    b = train(fixed).model.state_dict()
    c = train(replace(fixed, seed=7)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_diverging_loss_is_a_readable_error(tiny_settings):
    with pytest.raises(TrainingError, match="learning rate"):
        train(replace(tiny_settings, arch="tutorial", arch_args={}, optimizer="sgd", schedule="constant", lr=1e12))


@pytest.mark.parametrize("field,value,message", [
    ("epochs", 0, "epochs"), ("optimizer", "lbfgs", "optimizer"), ("val_fraction", 1.5, "validation"),
    ("arch", "nope", "architecture"), ("device", "tpu", "device"), ("precision", "fp8", "precision")])
def test_bad_settings_are_named(tiny_settings, field, value, message):
    with pytest.raises(TrainingError, match=message):
        train(replace(tiny_settings, **{field: value}))


def test_presets_are_settings_instances_with_the_tutorials_recipe():
    t = PRESETS["tutorial"]
    assert isinstance(t, TrainSettings)
    assert (t.arch, t.optimizer, t.lr, t.batch_size, t.epochs, t.augment) == ("tutorial", "adam", 1e-3, 32, 1, False)
    assert preset("best", epochs=3).epochs == 3 and PRESETS["best"].epochs != 3
    with pytest.raises(TrainingError):
        preset("fastest")
    assert select_device("cpu").type == "cpu" and select_device("auto").type in ("cpu", "cuda", "mps")


def test_a_preset_copy_shares_nothing_with_the_preset():
    settings = preset("quick")
    settings.arch_args["width"] = 99  # e.g. a form editing its copy
    assert PRESETS["quick"].arch_args == {} and preset("quick").arch_args == {}
    given = {"width": 8}
    settings = preset("quick", arch_args=given)
    given["width"] = 4
    assert settings.arch_args == {"width": 8}


def test_another_architecture_starts_from_its_own_defaults_and_a_changed_recipe_is_custom():
    assert preset("best", arch="fastnet").arch_args == {}            # best's digitnet arguments do not follow
    assert preset("quick", arch="digitnet", arch_args={"width": 8}).arch_args == {"width": 8}
    assert preset("quick", arch="fastnet").preset == "quick"         # its own architecture: still the preset
    assert preset("quick", arch_args={"width": 16}).preset == "quick"  # fastnet's default width, spelled out
    assert preset("quick", data_dir="/mnist", device="cpu", threads=1, download=False).preset == "quick"
    assert preset("quick", seed=3).preset == "quick"                  # another draw of the same recipe
    assert preset("quick", epochs=3).preset == "custom" and preset("quick", arch="digitnet").preset == "custom"
    assert preset_name(preset("best", epochs=1), "best") == "custom" and preset_name(PRESETS["best"], "best") == "best"
    assert with_arch(PRESETS["best"], "digitnet").arch_args is not PRESETS["best"].arch_args


def test_a_validation_share_given_as_a_percentage_is_explained(tiny_settings):
    with pytest.raises(TrainingError, match=r"a share, e\.g\. 0\.1 holds out 10%"):
        train(replace(tiny_settings, val_fraction=10))


def test_evaluation_counts_agree(synthetic_mnist):
    data = load_mnist(synthetic_mnist, download=False)
    model = train(preset("quick", data_dir=str(synthetic_mnist), arch_args={"width": 4}, epochs=1, batch_size=50),
                  data=data).model
    ev = evaluate(model, data.test_images, data.test_labels, (0.1307, 0.3081))
    confusion = torch.tensor(ev.confusion)
    assert confusion.sum() == ev.n == len(data.test_labels)
    assert confusion.sum(1).tolist() == torch.bincount(data.test_labels, minlength=10).tolist()
    assert len(ev.misclassified) == ev.n - confusion.diag().sum()
    assert abs(ev.accuracy - confusion.diag().sum().item() / ev.n) < 1e-6
    for i, p in zip(ev.misclassified, ev.misclassified_predictions):
        assert data.test_labels[i] != p


def test_augmentation_keeps_shape_and_range_and_varies_images():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0
    g = torch.Generator().manual_seed(0)
    y = augment(x, 1.0, g)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert not torch.equal(y[0], y[1])                       # each image gets its own transform
    assert (y.flatten(1).sum(1) > 0).all()                    # the digit stays in the frame
    assert torch.equal(augment(x, 0.0, g), x)


def test_synthetic_pen_digits_join_the_training_split(tiny_settings):
    batches = []
    train(replace(tiny_settings, epochs=1, synthetic_digits=60), on_batch=batches.append)
    assert len(batches) == math.ceil((540 + 60) / tiny_settings.batch_size)


def test_pen_digits_are_balanced_reproducible_and_mnist_framed():
    from core.pen_digits import training_digits

    images, labels = training_digits(30, seed=4)
    again, _ = training_digits(30, seed=4)
    assert torch.equal(images, again) and labels.tolist() == list(range(10)) * 3
    assert images.dtype == torch.uint8 and images.shape == (30, 28, 28)
    assert (images.flatten(1).amax(1) == 255).all() and (images[:, 0].amax(1) == 0).all()  # ink high, margins empty


def test_precision_bf16_trains_and_auto_follows_the_hardware(tiny_settings, monkeypatch):
    result = train(replace(tiny_settings, precision="bf16"))
    assert result.test.accuracy > 0.9                              # autocast trains; the weights stay fp32
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None and autocast_dtype("bf16", cpu) == torch.bfloat16
    monkeypatch.setattr("core.training.native_bf16", lambda device: False)
    assert autocast_dtype("auto", cpu) is None                     # no emulated bf16 where it would be slower
    monkeypatch.setattr("core.training.native_bf16", lambda device: True)
    assert autocast_dtype("auto", cpu) == torch.bfloat16


def test_inference_model_folds_batchnorm_without_changing_outputs():
    torch.manual_seed(0)
    model = build_model("fastnet", width=8)
    model.train()
    for _ in range(3):  # move the running statistics away from their initial values
        model(torch.rand(64, 1, 28, 28) * 3)
    x = torch.rand(32, 1, 28, 28)
    folded = inference_model(model)
    assert not model.training and not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_missing_device_is_named_without_flags_and_the_cli_adds_its_own(tiny_settings, capsys):
    from core.cli import main

    with pytest.raises(TrainingError) as caught:
        train(replace(tiny_settings, device="cuda"))
    assert "no CUDA GPU" in str(caught.value) and "--" not in str(caught.value)  # GUI users see this too
    assert caught.value.setting == "device"
    assert main(["train", "--device", "cuda", "--data", str(tiny_settings.data_dir), "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {caught.value} (--device)"


def test_training_can_start_from_saved_weights_and_refuses_another_architecture(tiny_settings, tmp_path):
    """--init: a run that starts from trained weights begins where they left off (at a vanishing learning rate it
    keeps their accuracy, where random weights stay near chance); weights of another architecture are refused."""
    from core.weights import save_training_result

    first = train(tiny_settings)
    saved = save_training_result(first.model, first.settings.arch, first.arch_args, first.normalization,
                                 first.settings.to_dict(), first.metrics, out=tmp_path / "first.pt")
    still = replace(tiny_settings, epochs=1, lr=1e-9, schedule="constant", optimizer="sgd", weight_decay=0.0)
    resumed = train(replace(still, init_weights=str(saved.path)))
    scratch = train(still)
    assert resumed.test.accuracy == pytest.approx(first.test.accuracy, abs=0.01) and first.test.accuracy > 0.9
    assert scratch.test.accuracy < 0.5
    with pytest.raises(TrainingError, match="cannot start from .*tutorial.*fastnet") as refused:
        train(replace(tiny_settings, arch="fastnet", arch_args={}, init_weights=str(saved.path)))
    assert refused.value.setting == "init_weights"
    with pytest.raises(TrainingError, match="cannot start from .*missing.pt"):
        train(replace(tiny_settings, init_weights=str(tmp_path / "missing.pt")))
