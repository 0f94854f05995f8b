"""Sharing a model: ONNX checked against PyTorch with onnxruntime, safetensors round trips and hostile files."""
import json
import sys

import numpy as np
import pytest
import torch

from core.cli import main
from core.export import ExportError, export_onnx, export_safetensors
from core.models import ARCHITECTURES, build_model
from core.preprocess import preprocess
from core.weights import WeightsError, load_default_weights, load_weights, save_weights

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
safetensors_torch = pytest.importorskip("safetensors.torch")


def random_weights(arch: str, folder, **args):
    """Seeded random weights of `arch`, with non-trivial BatchNorm statistics, so eval vs. train mode shows."""
    generator = torch.Generator().manual_seed(7)
    model = build_model(arch, **args)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    path = folder / f"{arch}.pt"
    save_weights(path, model.eval(), arch, {**ARCHITECTURES[arch].defaults, **args}, ARCHITECTURES[arch].normalization,
                 {"preset": "test"}, {"test_accuracy": 0.5})
    return load_weights(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """arch -> (weights, onnxruntime session): the shipped digitnet, random tutorial and fastnet models."""
    folder = tmp_path_factory.mktemp("onnx")
    found = {}
    for arch in ARCHITECTURES:
        weights = load_default_weights() if arch == "digitnet" else random_weights(arch, folder)
        out = export_onnx(weights, folder / f"{arch}.onnx")
        found[arch] = weights, ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return found


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_logits_match_pytorch_for_every_architecture(exported, arch, batch):
    weights, session = exported[arch]
    inputs = session.get_inputs()
    assert [(i.name, i.shape[1:], i.type) for i in inputs] == [("image", [1, 28, 28], "tensor(float)")]
    assert isinstance(inputs[0].shape[0], str)  # the batch dimension is dynamic
    x = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(batch)) * 3 - 0.5  # (N, 1, 28, 28)
    (logits,) = session.run(["logits"], {"image": x.numpy()})
    with torch.no_grad():
        expected = weights.model(x).numpy()
    assert logits.shape == (batch, 10)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_onnx_on_real_mnist_digits_matches_pytorch_and_reads_them(exported, real_mnist_dir):
    from core.data import load_split, locate

    images, labels = load_split(locate(real_mnist_dir, download=False), train=False)
    weights, session = exported["digitnet"]
    batch = torch.stack([preprocess(img.numpy(), weights.normalization).tensor for img in images[:300]])
    for x in (batch[:1], batch):  # batch 1 and batch N
        (logits,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(logits, weights.model(x).numpy(), rtol=1e-4, atol=1e-4)
    assert (logits.argmax(1) == labels[:300].numpy()).mean() >= 0.98


def test_onnx_export_leaves_the_model_and_threads_as_found(tmp_path):
    weights = random_weights("fastnet", tmp_path, width=4)
    weights.model.train()
    threads = torch.get_num_threads()
    export_onnx(weights, tmp_path / "m.onnx")
    assert weights.model.training and torch.get_num_threads() == threads
    x = torch.rand(3, 1, 28, 28)
    weights.model.eval()
    (logits,) = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"image": x.numpy()})
    np.testing.assert_allclose(logits, weights.model(x).detach().numpy(), rtol=1e-4, atol=1e-4)  # eval-mode export


def test_onnx_without_its_packages_names_the_pip_command(tmp_path, monkeypatch, capsys):
    weights = random_weights("tutorial", tmp_path)
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(ExportError, match="onnxscript package: pip install"):
        export_onnx(weights, tmp_path / "m.onnx")
    assert main(["export", "--format", "onnx", "--weights", str(tmp_path / "tutorial.pt"),
                 "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ONNX export needs the onnxscript package") and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_safetensors_round_trip_keeps_model_and_metadata(tmp_path):
    weights = random_weights("digitnet", tmp_path, width=8)
    out = export_safetensors(weights, tmp_path / "w.safetensors")
    loaded = load_weights(out)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded.model(x), weights.model(x))
    for field in ("arch", "arch_args", "normalization", "settings", "metrics", "created"):
        assert getattr(loaded, field) == getattr(weights, field), field
    from safetensors import safe_open

    with safe_open(str(out), "pt") as f:  # any safetensors reader sees the metadata as JSON text
        metadata = f.metadata()
    assert json.loads(metadata["arch_args"]) == {"width": 8, "dropout": 0.1}
    assert json.loads(metadata["format"]) == "digit-recognizer-weights"


def test_bare_tutorial_safetensors_loads_like_its_pth(tmp_path):
    model = build_model("tutorial")
    safetensors_torch.save_file(model.state_dict(), tmp_path / "cnn_mnist.safetensors")
    loaded = load_weights(tmp_path / "cnn_mnist.safetensors")
    x = torch.rand(2, 1, 28, 28)
    assert loaded.arch == "tutorial" and torch.equal(loaded.model(x), model(x))


def hostile(tmp_path, state=None, **metadata_changes):
    weights = random_weights("fastnet", tmp_path, width=4)
    path = export_safetensors(weights, tmp_path / "w.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        metadata = {**f.metadata(), **metadata_changes}
    tensors = safetensors_torch.load_file(path)
    tensors.update(state or {})
    safetensors_torch.save_file(tensors, path, metadata=metadata)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: hostile(p, arch_args='{"width": 100000}'), "width must be a whole number from 1 to 512"),
    (lambda p: hostile(p, arch='"resnet"'), "unknown architecture 'resnet'"),
    (lambda p: hostile(p, state={"0.weight": torch.full((4, 1, 3, 3), float("nan"))}), "NaN or infinite"),
    (lambda p: hostile(p, state={"0.weight": torch.zeros(5, 1, 3, 3)}), "shapes don't match for 0.weight"),
    (lambda p: hostile(p, metrics="{not json"), "metadata field 'metrics' is not JSON text"),
    (lambda p: hostile(p, normalization="[0.1, -1]"), "invalid normalization"),
])
def test_hostile_safetensors_get_the_same_checks_as_pt_files(tmp_path, make, message):
    with pytest.raises(WeightsError, match=message.replace("(", r"\(")):
        load_weights(make(tmp_path))


def test_truncated_safetensors_is_one_sentence(tmp_path):
    path = export_safetensors(random_weights("tutorial", tmp_path), tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="w.safetensors is a damaged safetensors file"):
        load_weights(path)


def test_exports_never_overwrite_the_source_or_the_shipped_weights(tmp_path):
    from core import paths

    weights = random_weights("tutorial", tmp_path)
    for write in (export_onnx, export_safetensors):
        with pytest.raises(WeightsError, match="shipped default weights"):
            write(weights, paths.DEFAULT_WEIGHTS)
        with pytest.raises(WeightsError, match="being exported"):
            write(weights, weights.path)
    assert load_weights(weights.path).arch == "tutorial"


def test_cli_exports_onnx_and_safetensors(tmp_path, capsys):
    weights = random_weights("tutorial", tmp_path)
    for fmt, name in (("safetensors", "t.safetensors"), ("onnx", "t.onnx")):
        code = main(["export", "--format", fmt, "--weights", str(weights.path), "--out", str(tmp_path / name)])
        out, err = capsys.readouterr()
        assert code == 0 and err == "" and out.startswith(f"wrote {tmp_path / name}: ")
    assert load_weights(tmp_path / "t.safetensors").arch == "tutorial"
    (logits,) = ort.InferenceSession(str(tmp_path / "t.onnx")).run(None, {"image": np.zeros((2, 1, 28, 28), "f4")})
    assert logits.shape == (2, 10)
    assert main(["export", "--format", "onnx", "--weights", str(weights.path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a folder" in err and err.count("\n") == 1
