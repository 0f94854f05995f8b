"""Model registry, the tutorial's exact architecture and the per-layer summary."""
import pytest
import torch

from core.models import ARCHITECTURES, arch_args, build_model, format_summary, pool_before_relu, summary
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


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_training_with_pooling_before_relu_gives_the_same_numbers(arch):
    """Three Adam steps through the reordered view move the parameters bit for bit as the model's own order does."""
    def trained(reorder: bool) -> tuple[list[type], dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        model = build_model(arch).train()
        forward = pool_before_relu(model) if reorder else model
        optimizer = torch.optim.Adam(model.parameters(), 1e-2)
        g = torch.Generator().manual_seed(1)
        for _ in range(3):
            x, y = torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(forward(x), y).backward()
            optimizer.step()
        return [type(m) for m in forward], {k: v.clone() for k, v in model.state_dict().items()}

    order, reordered = trained(True)
    assert order != [type(m) for m in build_model(arch)], "every shipped net has a ReLU before a max-pool"
    baseline_order, baseline = trained(False)
    assert [type(m) for m in build_model(arch)] == baseline_order  # the model itself keeps its order
    for key, value in baseline.items():
        assert torch.equal(reordered[key], value), key  # bit for bit: the same maxima, the same gradients


def test_the_reordered_view_shares_the_models_modules():
    model = build_model("tutorial")
    view = pool_before_relu(model)
    assert [type(m).__name__ for m in view][:3] == ["Conv2d", "MaxPool2d", "ReLU"]
    assert {id(p) for p in view.parameters()} == {id(p) for p in model.parameters()}
    assert pool_before_relu(torch.nn.Linear(2, 2)).__class__ is torch.nn.Linear  # not a Sequential: as it is
