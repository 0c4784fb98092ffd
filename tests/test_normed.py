"""NormedLinear and NormedConv2d: MMDetection's formulas, the cosine identity, options and errors."""

import pytest
import torch
import torch.nn.functional as F

from seesaw_losses.nn import NormedConv2d, NormedLinear

from long_tail_references import normed_conv2d_reference, normed_linear_reference


@pytest.mark.parametrize("power, bias", [(1.0, True), (2.0, False), (0.5, True)])
def test_normed_linear_equals_mmdetections_formula(power, bias):
    layer = NormedLinear(7, 4, temperature=15.0, power=power, eps=1e-3, bias=bias).double()
    if bias:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(6, 7, dtype=torch.float64) * 3
    torch.testing.assert_close(layer(x), normed_linear_reference(x, layer.weight, layer.bias, 15.0, power, 1e-3))
    assert layer(x.view(2, 3, 7)).shape == (2, 3, 4)


def test_normed_linear_is_a_scaled_cosine_and_starts_like_mmdetection():
    layer = NormedLinear(16, 5, temperature=20.0, eps=0.0, bias=False)
    x = torch.randn(9, 16)
    torch.testing.assert_close(layer(x), 20.0 * F.normalize(x, dim=1) @ F.normalize(layer.weight, dim=1).t())
    fresh = NormedLinear(512, 300)
    assert fresh.weight.std().item() == pytest.approx(0.01, rel=0.05) and fresh.bias.abs().sum() == 0


@pytest.mark.parametrize("norm_over_kernel", [False, True])
def test_normed_conv2d_equals_mmdetections_formula(norm_over_kernel):
    layer = NormedConv2d(4, 3, 3, padding=1, temperature=10.0, power=1.0, eps=1e-6,
                         norm_over_kernel=norm_over_kernel).double()
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(layer(x), normed_conv2d_reference(x, layer.weight, layer.bias, 10.0, 1.0, 1e-6,
                                                                 norm_over_kernel, padding=1))
    # a 1x1 predictor is a per-pixel NormedLinear
    pointwise = NormedConv2d(4, 3, 1, bias=False).double()
    linear = NormedLinear(4, 3, bias=False).double()
    linear.weight.data.copy_(pointwise.weight.view(3, 4))
    torch.testing.assert_close(pointwise(x), linear(x.movedim(1, -1)).movedim(-1, 1))


def test_gradients_flow_and_bad_options_fail():
    layer = NormedLinear(3, 2)
    layer(torch.randn(4, 3)).sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    with pytest.raises(ValueError, match=r"NormedLinear: temperature must be in \(0, inf\], got 0"):
        NormedLinear(3, 2, temperature=0)
    with pytest.raises(ValueError, match=r"NormedConv2d: eps must be in \[0, inf\], got -1"):
        NormedConv2d(3, 2, 1, eps=-1)
