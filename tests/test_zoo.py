import pytest
import torch
from torch import nn

from biaslab.infra.io import BiaslabError
from biaslab.nets.zoo import ZOO, ZOO_INPUT_SHAPES, build_zoo_model


@pytest.mark.parametrize("name", [n for n in ZOO if n != "resnet50"])
def test_zoo_models_run_on_digit_sized_images(name):
    in_shape = (1, 8, 8)  # what --data digits feeds them; 3-channel inputs are covered by the audit tests
    torch.manual_seed(0)
    model = build_zoo_model(name, in_shape, n_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *in_shape))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_resnet50_is_resnet50_sized():
    model = build_zoo_model("resnet50", n_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision's resnet50 count


def test_bias_placement_follows_the_originals():
    convs = lambda m: [c for c in m.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert all(c.bias is None for c in convs(build_zoo_model("resnet18")))
    assert all(c.bias is None for c in convs(build_zoo_model("mobilenet_v2")))
    assert all(c.bias is not None for c in convs(build_zoo_model("vgg11_bn")))
    assert {n for n, _ in build_zoo_model("transformer").named_modules()} >= {
        "blocks.0.attn.key", "blocks.0.norm1", "blocks.1.fc2", "head"}


def test_default_shapes_cover_the_zoo():
    assert set(ZOO_INPUT_SHAPES) == set(ZOO)


@pytest.mark.parametrize("name, shape", [("nope", None), ("resnet18", (3, 4, 4)), ("vgg11_bn", (3, 32))])
def test_zoo_rejects_bad_requests(name, shape):
    with pytest.raises(BiaslabError):
        build_zoo_model(name, shape)


def test_transformer_needs_patch_divisible_sides():
    with pytest.raises(BiaslabError, match="divisible"):
        build_zoo_model("transformer", (3, 30, 30))
