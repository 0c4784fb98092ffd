"""Normalised (cosine) classifier layers, the "Norm Mask" part of Seesaw's LVIS recipe, with MMDetection's
semantics (``mmdet.models.layers.NormedLinear`` / ``NormedConv2d``).

A plain linear classifier trained on long-tailed data grows larger weight norms for the frequent classes, which
biases its logits toward them whatever the loss. Normalising the weight rows (and the input features) leaves only
the angle, so every class competes on the same scale; ``temperature`` brings the cosines in ``[-1, 1]`` back to
a range where a softmax or sigmoid is not flat (20 in MMDetection's Seesaw configs; use 1 with
:func:`seesaw_losses.functional.ldam_loss`, whose ``scale`` plays that role).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .functional._validation import check_number

__all__ = ["NormedConv2d", "NormedLinear"]


def _check(fn: str, temperature: object, power: object, eps: object) -> None:
    check_number(fn, "temperature", temperature, low=0, low_open=True)
    check_number(fn, "power", power, low=0)
    check_number(fn, "eps", eps, low=0)


def _normalised(t: Tensor, norm: Tensor, power: float, eps: float) -> Tensor:
    return t / (norm.pow(power) + eps)


class NormedLinear(nn.Linear):
    r"""A linear layer on normalised inputs and weight rows, times a temperature.

    .. math::
        y = \tau\, \frac{x}{\|x\|^{k} + \epsilon} \left(\frac{W_j}{\|W_j\|^{k} + \epsilon}\right)^{\!\top}_j + b

    (``k = power``, ``tau = temperature``; the bias, if any, is added after the scaling). With ``power=1``, a
    small ``eps`` and no bias, ``y_j = tau * cos(x, W_j)``. Weights start from ``N(0, 0.01^2)`` and the bias from
    0, as in MMDetection.

    Args:
        in_features: as ``nn.Linear``.
        out_features: as ``nn.Linear``.
        temperature: factor on the output, ``> 0``.
        power: exponent of the norms, ``>= 0``.
        eps: added to the powered norms, ``>= 0``.
        bias: learn an additive bias.

    Shape:
        - input: ``(*, in_features)`` (normalised over the last dimension); output: ``(*, out_features)``.

    Examples:
        >>> head = NormedLinear(128, 10, temperature=20.0)
        >>> head(torch.randn(4, 128)).abs().max() <= 20
        tensor(True)
    """

    def __init__(self, in_features: int, out_features: int, *, temperature: float = 20.0, power: float = 1.0,
                 eps: float = 1e-6, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        _check("NormedLinear", temperature, power, eps)
        self.temperature, self.power, self.eps = temperature, power, eps
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, mean=0.0, std=0.01)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature}, power={self.power}, eps={self.eps}"

    def forward(self, x: Tensor) -> Tensor:
        weight = _normalised(self.weight, self.weight.norm(dim=1, keepdim=True), self.power, self.eps)
        x = _normalised(x, x.norm(dim=-1, keepdim=True), self.power, self.eps) * self.temperature
        return F.linear(x, weight, self.bias)


class NormedConv2d(nn.Conv2d):
    r"""A 2-D convolution on inputs normalised over the channels at each position and normalised filters, times a
    temperature: a per-pixel cosine classifier (MMDetection's mask-head predictor in the Seesaw recipe).

    Each filter is normalised over its input channels at every kernel position (``norm_over_kernel=False``, the
    default) or as a whole (``norm_over_kernel=True``); see :class:`NormedLinear` for the formula.
    ``in_channels``, ``out_channels``, ``kernel_size``, ``stride``, ``padding``, ``dilation``, ``groups`` and
    ``padding_mode`` are those of ``nn.Conv2d``.

    Args:
        temperature: factor on the input (so on the output), ``> 0``.
        power: exponent of the norms, ``>= 0``.
        eps: added to the powered norms, ``>= 0``.
        norm_over_kernel: normalise each filter over all its weights instead of per kernel position.
        bias: learn an additive bias.

    Shape:
        - input: ``(N, C_in, H, W)``; output: ``(N, C_out, H_out, W_out)``.

    Examples:
        >>> predictor = NormedConv2d(16, 5, 1)
        >>> predictor(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 5, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, *, temperature: float = 20.0, power: float = 1.0,
                 eps: float = 1e-6, norm_over_kernel: bool = False, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None) -> None:
        _check("NormedConv2d", temperature, power, eps)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)
        self.temperature, self.power, self.eps, self.norm_over_kernel = temperature, power, eps, norm_over_kernel

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, temperature={self.temperature}, power={self.power}, eps={self.eps}, "
                f"norm_over_kernel={self.norm_over_kernel}")

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        if self.norm_over_kernel:
            norm = w.reshape(w.shape[0], -1).norm(dim=1).view(-1, 1, 1, 1)
        else:
            norm = w.norm(dim=1, keepdim=True)
        weight = _normalised(w, norm, self.power, self.eps)
        x = _normalised(x, x.norm(dim=1, keepdim=True), self.power, self.eps) * self.temperature
        return self._conv_forward(x, weight, self.bias)
