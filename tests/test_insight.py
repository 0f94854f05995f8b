"""Looking inside the network: feature maps, filters, attribution (IG, occlusion, Grad-CAM), explain(), pictures."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.insight import (ATTRIBUTION_METHODS, attribution, explain, feature_maps, first_layer_filters,
                          integrated_gradients)
from core.insight_render import (activation_rgb, attribution_image, attribution_rgb, feature_grid_png, filters_png,
                                 signed_rgb)
from core.models import ARCHITECTURES, build_model, summary
from core.predict import Predictor
from core.preprocess import preprocess
from tests.test_preprocess import SEVEN, draw

ROOT = Path(__file__).resolve().parent.parent
ONE = [(0.5, 0.0), (0.5, 1.0)]  # a clear "1": one vertical stroke


@pytest.fixture(autouse=True)
def one_torch_thread():
    """As the GUI computes: one thread (two threads on a busy 2-core machine are several times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def default_predictor() -> Predictor:
    return Predictor.from_file(None)


def seeded_model(arch: str) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_model(arch).eval()


def model_input(arch: str, image=None) -> torch.Tensor:
    prepared = preprocess(draw(SEVEN) if image is None else image, ARCHITECTURES[arch].normalization)
    return prepared.tensor.unsqueeze(0)  # (1, 1, 28, 28)


# ---------------------------------------------------------------- feature maps and filters
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_feature_maps_have_the_shapes_summary_reports(arch):
    model = seeded_model(arch)
    layers = feature_maps(model, model_input(arch))
    rows = {row.name: row for row in summary(model)}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    shown = [layer for layer in layers if not layer.pooled]
    assert len(shown) == len(convs)                                     # one grid per conv layer
    for layer, conv in zip(shown, convs):
        assert layer.maps.shape[0] == conv.out_channels and layer.kind == "ReLU"  # after the activation
        assert f"{conv.out_channels} maps" in layer.title
    pools = [name for name, m in model.named_modules() if "Pool" in type(m).__name__]
    assert [layer.name for layer in layers if layer.pooled] == pools
    for layer in layers:
        assert layer.maps.shape == rows[layer.name].output_shape[1:] and layer.maps.dtype == np.float32
        assert np.isfinite(layer.maps).all() and layer.maps.min() >= 0  # after ReLU / pooling of ReLU outputs
    assert [layer.name for layer in layers] == sorted((layer.name for layer in layers), key=int)  # forward order


def test_tutorial_layers_are_titled_in_plain_words():
    layers = feature_maps(seeded_model("tutorial"), model_input("tutorial"))
    assert [layer.title for layer in layers] == ["Conv 1 + ReLU: 8 maps, 26×26", "Max-pool 1: 8 maps, 13×13",
                                                 "Conv 2 + ReLU: 16 maps, 11×11", "Max-pool 2: 16 maps, 5×5"]


def test_first_layer_filters_are_the_first_convs_kernels():
    model = seeded_model("fastnet")
    filters = first_layer_filters(model)
    assert filters.shape == (16, 3, 3) and filters.dtype == np.float32
    assert np.array_equal(filters, model[0].weight.detach()[:, 0].numpy())


# ---------------------------------------------------------------- attribution
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("method", list(ATTRIBUTION_METHODS))
def test_attribution_maps_are_28x28_finite_and_leave_the_model_as_found(arch, method):
    model = seeded_model(arch).train()  # a model in training mode must come back in training mode
    x = model_input(arch)
    before = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm statistics included
    flags = [p.requires_grad for p in model.parameters()]
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    heat = attribution(model, x, 7, method)
    assert heat.shape == (28, 28) and heat.dtype == np.float32 and np.isfinite(heat).all() and np.abs(heat).max() > 0
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)


def test_integrated_gradients_of_a_linear_model_is_input_times_weight():
    """Closed form: for f(x) = w.x + b, IG from baseline b0 is exactly (x - b0) * w, at any step count."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    x = model_input("fastnet")
    blank = -0.1307 / 0.3081
    expected = (x[0, 0] - blank) * model[1].weight.detach()[3].view(28, 28)
    for steps in (1, 4, 32):
        assert torch.allclose(integrated_gradients(model, x, 3, blank, steps), expected, atol=1e-5)


def test_integrated_gradients_adds_up_to_the_score_change_from_a_blank_page():
    """Completeness: the attributions sum to f(x) - f(blank) for the target's logit (ReLU net, fine integral)."""
    model, x = seeded_model("tutorial"), model_input("tutorial")
    with torch.no_grad():
        change = float(model(x)[0, 4] - model(torch.zeros_like(x))[0, 4])
    total = float(integrated_gradients(model, x, 4, 0.0, steps=256).sum())
    assert abs(change) > 1e-3 and total == pytest.approx(change, rel=0.02)


def test_integrated_gradients_agrees_with_captum():
    captum_attr = pytest.importorskip("captum.attr")
    model, x = seeded_model("digitnet"), model_input("digitnet")
    blank = -0.1307 / 0.3081
    ours = attribution(model, x, 2, blank=blank)
    theirs = captum_attr.IntegratedGradients(model).attribute(x, torch.full_like(x, blank), target=2, n_steps=32,
                                                              method="gausslegendre")
    assert np.allclose(ours, theirs[0, 0].detach().numpy(), atol=1e-4 * np.abs(ours).max())


def test_unknown_method_and_target_are_refused(default_predictor):
    with pytest.raises(ValueError, match="unknown attribution method"):
        explain(default_predictor, draw(SEVEN), method="saliency")
    with pytest.raises(ValueError, match="0-9"):
        explain(default_predictor, draw(SEVEN), target=10)


# ---------------------------------------------------------------- explain() with the shipped weights
@pytest.mark.parametrize("method", list(ATTRIBUTION_METHODS))
def test_for_a_clear_one_the_strongest_evidence_lies_on_the_stroke(default_predictor, method):
    result = explain(default_predictor, draw(ONE), method=method)
    assert result.digit == 1 == result.target and result.method == method
    peak = np.unravel_index(np.argmax(result.attribution), (28, 28))
    ink_rows, ink_cols = np.nonzero(result.image28 > 64)
    distance = np.min(np.maximum(np.abs(ink_rows - peak[0]), np.abs(ink_cols - peak[1])))  # px to the nearest ink
    # IG is per pixel; occlusion gives each erased 4x4 square one value; Grad-CAM is as coarse as the last conv
    # layer (7x7 in DigitNet: 4 px cells, smoothed)
    tolerance = {"integrated_gradients": 0, "occlusion": 3, "gradcam": 4}[method]
    assert result.attribution[peak] > 0 and distance <= tolerance
    if method == "integrated_gradients":  # blank paper is the baseline itself: no evidence either way
        assert (result.attribution[result.image28 == 0] == 0).all()
    on_ink = result.attribution[result.image28 > 0]
    assert on_ink[on_ink > 0].sum() > -on_ink[on_ink < 0].sum()    # the stroke is, overall, evidence for a 1


def test_asking_why_not_another_digit_changes_the_attribution(default_predictor):
    image = draw(ONE)
    why_one = explain(default_predictor, image)
    why_seven = explain(default_predictor, image, target=7)
    assert why_seven.target == 7 and why_seven.digit == why_one.digit == 1
    assert why_seven.probabilities == why_one.probabilities
    scale = np.abs(why_one.attribution).max()
    assert np.abs(why_seven.attribution - why_one.attribution).max() > 0.25 * scale
    assert why_seven.attribution.sum() < why_one.attribution.sum()  # the stroke says less for 7 than for 1


def test_explain_matches_predict_and_shows_what_the_network_saw(default_predictor):
    image = draw(SEVEN)
    result, prediction = explain(default_predictor, image), default_predictor.predict(image)
    assert result.digit == prediction.digit == 7
    assert result.probabilities == prediction.probabilities  # identical, not merely close
    assert np.array_equal(result.image28, prediction.image28) and result.image28.dtype == np.uint8
    assert [layer.maps.shape[0] for layer in result.layers if not layer.pooled] == [32, 32, 64, 64, 128]


def test_explain_returns_none_when_there_is_nothing_to_recognize(default_predictor):
    assert explain(default_predictor, Image.new("L", (60, 60), 255)) is None
    assert explain(default_predictor, np.zeros((28, 28), np.uint8)) is None


def deletion_drop(predictor: Predictor, image28: np.ndarray, order: np.ndarray, share: float = 0.1) -> float:
    """Drop of the target's logit when the first `share` of the inked pixels in `order` are erased."""
    mean, std = predictor.weights.normalization
    inked = [i for i in order if image28.flat[i] > 0]
    erased = image28.copy().ravel()
    erased[inked[:max(1, int(share * len(inked)))]] = 0
    x = torch.from_numpy(np.stack([image28.ravel(), erased])).float().div(255).sub(mean).div(std).view(2, 1, 28, 28)
    with torch.no_grad():
        logits = predictor.model(x)  # (2, 10)
    target = int(logits[0].argmax())
    return float(logits[0, target] - logits[1, target])


def test_erasing_the_pixels_marked_as_evidence_hurts_more_than_erasing_others(default_predictor):
    """Faithfulness on the ten drawn digits: the top-attributed pixels matter more than random inked pixels."""
    from core import pen_digits

    rng = np.random.default_rng(0)
    top_drops, random_drops = [], []
    for variant in [v for v in pen_digits.VARIANTS if not v.heldout][::2]:
        ink = pen_digits.draw_polylines(pen_digits.jittered_polylines(variant, rng), pen=0.1)
        result = explain(default_predictor, np.round(ink * 255).astype(np.uint8))
        top_drops.append(deletion_drop(default_predictor, result.image28, np.argsort(-result.attribution.ravel())))
        random_drops.append(deletion_drop(default_predictor, result.image28, rng.permutation(784)))
    assert np.median(top_drops) > 2 * max(np.median(random_drops), 0.1)


def test_on_real_mnist_the_attribution_is_faithful(default_predictor, real_mnist_dir):
    from core.data import load_split, locate

    images, _ = load_split(locate(real_mnist_dir, download=False), train=False)
    picks = torch.Generator().manual_seed(0)
    top_drops, random_drops = [], []
    rng = np.random.default_rng(0)
    for i in torch.randperm(len(images), generator=picks)[:20].tolist():
        result = explain(default_predictor, images[i].numpy())
        top_drops.append(deletion_drop(default_predictor, result.image28, np.argsort(-result.attribution.ravel())))
        random_drops.append(deletion_drop(default_predictor, result.image28, rng.permutation(784)))
    assert np.median(top_drops) > 2 * max(np.median(random_drops), 0.1)


# ---------------------------------------------------------------- pictures
def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(float) @ np.array([0.299, 0.587, 0.114])


def test_activation_colours_run_from_dark_to_bright():
    ramp = np.linspace(0, 2, 50, dtype=np.float32).reshape(5, 10)
    rgb = activation_rgb(ramp, top=1.0)
    assert rgb.shape == (5, 10, 3) and rgb.dtype == np.uint8
    light = luminance(rgb).ravel()
    assert light[0] < 10 and light[-1] > 230 and np.all(np.diff(light) >= 0)  # monotonic: readable in greyscale
    assert (activation_rgb(np.ones((3, 3)), top=0.0) == activation_rgb(np.zeros((3, 3)), 1.0)).all()
    stack = np.stack([ramp, 2 - ramp])  # a whole layer (C, H, W) in one call = map by map
    assert np.array_equal(activation_rgb(stack, 1.0), np.stack([activation_rgb(m, 1.0) for m in stack]))


def test_signed_colours_are_blue_for_negative_and_orange_for_positive():
    rgb = signed_rgb(np.array([[-1.0, 0.0, 1.0]]), limit=1.0)[0].astype(int)
    assert rgb[0, 2] > rgb[0, 0] + 80 and rgb[2, 0] > rgb[2, 2] + 150  # blue, orange
    assert rgb[1].min() > 230                                            # zero is near white


def test_attribution_overlay_tints_evidence_for_and_against():
    image28 = np.zeros((28, 28), np.uint8)
    image28[5:20, 10:12] = 255
    heat = np.zeros((28, 28), np.float32)
    heat[6, 10], heat[18, 11] = 1.0, -1.0
    rgb = attribution_rgb(image28, heat).astype(int)
    assert rgb.shape == (28, 28, 3)
    assert rgb[6, 10, 0] > rgb[6, 10, 2] + 150 and rgb[18, 11, 2] > rgb[18, 11, 0] + 80
    assert len(set(rgb[10, 10])) == 1 and rgb[10, 10, 0] < rgb[0, 0, 0] == 255  # plain ink is grey, paper white


def test_pictures_are_written_as_pngs_with_a_cell_per_channel(tmp_path):
    model = seeded_model("tutorial")
    layers = feature_maps(model, model_input("tutorial"))
    small, large = feature_grid_png(layers[0], tmp_path / "a.png"), feature_grid_png(layers[2], tmp_path / "b.png")
    filters = filters_png(first_layer_filters(model), tmp_path / "f.png")
    for path in (small, large, filters):
        with Image.open(path) as png:
            assert png.format == "PNG" and png.mode == "RGB"
    with Image.open(small) as a, Image.open(large) as b:
        assert b.height > a.height  # 16 maps take more rows than 8
    picture = attribution_image(np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.float32), "why 7?")
    assert picture.width >= 280 and picture.height >= 280
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "f.png"]  # no temp files left


def test_the_renderer_needs_no_torch():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch': raise ImportError('torch is blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import numpy as np\n"
            "from core.insight_render import activation_rgb, attribution_rgb, signed_rgb\n"
            "print(activation_rgb(np.ones((2, 2)), 1.0).shape, signed_rgb(np.ones((3, 3)), 1.0).shape,\n"
            "      attribution_rgb(np.zeros((28, 28)), np.ones((28, 28))).shape)\n")
    run = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
