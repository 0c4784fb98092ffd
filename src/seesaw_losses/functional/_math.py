"""Numerically stable pieces shared by the loss formulas, written once.

``softplus`` and ``power`` build autograd graphs (the plain formulas use them); ``softplus_sigmoid`` and
``shifted_exp`` fill the engine's scratch buffers in place (the hand-derived gradients use them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import torch
from torch import Tensor

if TYPE_CHECKING:
    from ._fused import Scratch


def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))`` without overflow and without the threshold approximation of ``F.softplus``.

    ``max(x, 0)`` is written ``(x + |x|) / 2`` so that autograd also gets ``sigma(0) = 1/2`` at exactly 0
    (``clamp`` would give 1 there); only cheap, vectorised ops (no ``where`` with a scalar).
    """
    magnitude = x.abs()
    return (x + magnitude).mul_(0.5) + torch.log1p(torch.exp(-magnitude))


def power(base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` for ``base >= 0``, with the cheap cases special-cased; ``0 ** e = 0`` for ``e < 0``
    (where the factor it multiplies vanishes faster). May return ``base`` itself: do not modify it in place."""
    if exponent == 0:
        return torch.ones_like(base)
    if exponent == 1:
        return base
    if exponent == 2:
        return base * base
    if exponent < 0:
        return torch.where(base > 0, base, torch.ones_like(base)).pow(exponent).masked_fill(base <= 0, 0)
    return base.pow(exponent)


def softplus_sigmoid(v: Tensor, need_sigmoid: bool, scratch: Scratch) -> Tuple[Tensor, Optional[Tensor]]:
    """``softplus(v)`` and, if asked, ``sigmoid(v)``, from one ``exp`` and one ``log`` (plus one ``exp``).

    ``softplus(v) = max(v, 0) + log(1 + exp(-|v|))`` never overflows; taking ``log`` of ``1 + e`` rather than
    ``log1p(e)`` (half the cost here) leaves an absolute error below 2 ulp of 1 (1.2e-7 in float32), which only
    shows on losses that are themselves that small. ``sigmoid(v) = exp(v - softplus(v))``.
    """
    other = torch.clamp(v, min=0, out=scratch())
    softplus = torch.add(v, other, alpha=-2, out=scratch()).exp_().add_(1).log_().add_(other)   # v - 2 relu(v) = -|v|
    return softplus, (torch.sub(v, softplus, out=other).exp_() if need_sigmoid else None)


def shifted_exp(z: Tensor, scratch: Scratch) -> Tuple[Tensor, Tensor]:
    """``exp(z - max)`` over dim 1 of ``(B, C, L)`` logits (in a scratch buffer) and that max ``(B, 1, L)``:
    the pieces of a log-sum-exp, ``log(sum(e)) + max``, that a softmax gradient reuses."""
    z_max = z.amax(1, keepdim=True)
    return torch.sub(z, z_max, out=scratch()).exp_(), z_max
