"""Model registry, the tutorial's exact architecture and the per-layer summary."""
import pytest
import torch

from core.models import ARCHITECTURES, arch_args, build_model, format_summary, summary
from core.weights import TUTORIAL_SHAPES


def test_tutorial_model_is_the_tutorials_sequential():
    model = build_model("tutorial")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == TUTORIAL_SHAPES
    assert [type(m).__name__ for m in model] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                                                  "Flatten", "Linear"]
    assert sum(p.numel() for p in model.parameters()) == 5258


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_maps_a_batch_to_ten_logits(arch):
    model = build_model(arch).eval()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_summary_lists_every_layer_with_the_tutorials_shapes():
    rows = summary(build_model("tutorial"))
    assert [r.output_shape for r in rows] == [(1, 8, 26, 26), (1, 8, 26, 26), (1, 8, 13, 13), (1, 16, 11, 11),
                                             (1, 16, 11, 11), (1, 16, 5, 5), (1, 400), (1, 10)]
    assert [r.parameters for r in rows] == [80, 0, 0, 1168, 0, 0, 0, 4010]
    text = format_summary(build_model("digitnet", width=8))
    assert "AdaptiveAvgPool2d" in text and "(1, 32, 1, 1)" in text and "total" in text


def test_registry_rejects_unknown_names_and_arguments():
    with pytest.raises(KeyError, match="unknown architecture"):
        build_model("resnet9000")
    with pytest.raises(TypeError, match="depth"):
        build_model("digitnet", depth=3)
    assert arch_args("digitnet", width=16) == {"width": 16, "dropout": 0.1}
    assert build_model("digitnet", width=16)[0].out_channels == 16
