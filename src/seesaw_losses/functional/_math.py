"""Numerically stable pieces shared by the loss formulas, written once.

``softplus`` and ``power`` build autograd graphs (the plain formulas use them); ``softplus_sigmoid`` and
``softmax_and_target_log_prob`` fill the engine's scratch buffers in place (the hand-derived gradients use them);
``softmax`` and ``log_softmax`` pick ATen's fast kernel for ``(B, C, 1)`` blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import torch
from torch import Tensor

if TYPE_CHECKING:
    from ._scratch import Scratch


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


def softplus_sigmoid(v: Tensor, need_sigmoid: bool, scratch: Scratch,
                     sigmoid_out: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """``softplus(v)`` and, if asked, ``sigmoid(v)`` (into ``sigmoid_out`` when given), in scratch buffers.

    Two fused ATen kernels, one pass each: ``logaddexp(v, 0) = max(v, 0) + log1p(exp(-|v|))`` never
    overflows, and ``sigmoid``; a chain of ``exp``/``log`` operations would take eight passes over the block.
    """
    softplus = torch.logaddexp(v, v.new_zeros(()), out=scratch())
    if not need_sigmoid:
        return softplus, None
    return softplus, torch.sigmoid(v, out=scratch() if sigmoid_out is None else sigmoid_out)


SMALLEST_PRECISE_PROBABILITY = 1e-30
"""Below this (a loss above 69), ``log(p)`` of a float32 softmax probability loses precision as ``p`` nears
float32's denormals: :func:`softmax_and_target_log_prob` takes such positions from ``log_softmax`` instead."""


def _last_dim(z: Tensor) -> bool:
    # (B, C, 1) blocks of (N, C) logits: ATen's last-dimension softmax kernels are many times faster than the
    # strided ones it runs over dim 1 of a 3-D tensor
    return z.shape[2] == 1


def softmax(z: Tensor, out: Tensor) -> Tensor:
    """``softmax`` over dim 1 of ``(B, C, L)`` logits, into ``out``."""
    if _last_dim(z):
        torch.softmax(z.squeeze(2), 1, out=out.squeeze(2))
        return out
    return torch.softmax(z, 1, out=out)


def log_softmax(z: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """``log_softmax`` over dim 1 of ``(B, C, L)`` logits, into ``out`` when given (else under autograd)."""
    if out is None:
        return torch.log_softmax(z.squeeze(2), 1).unsqueeze(2) if _last_dim(z) else torch.log_softmax(z, 1)
    if _last_dim(z):
        torch.log_softmax(z.squeeze(2), 1, out=out.squeeze(2))
        return out
    return torch.log_softmax(z, 1, out=out)


def softmax_and_target_log_prob(z: Tensor, t1: Tensor, need_grad: bool,
                                scratch: Scratch) -> Tuple[Optional[Tensor], Tensor]:
    """For ``(B, C, L)`` logits and ``(B, 1, L)`` class indices: the softmax (when ``need_grad``, in
    ``scratch.gradient()``: a softmax gradient is built on it) and the true class's log-probability ``(B, 1, L)``.

    With the softmax at hand the log-probability is ``log`` of the gathered probability, no second pass over
    the block, except where that probability is below :data:`SMALLEST_PRECISE_PROBABILITY` (then from
    ``log_softmax``). Both come from ATen's fused softmax kernels, which also keep their speed where the
    probabilities underflow (``torch.exp`` of such arguments is 15 to 40 times slower).
    """
    if not need_grad:
        return None, log_softmax(z, scratch()).gather(1, t1)
    prob = softmax(z, scratch.gradient())
    p_target = prob.gather(1, t1)
    log_p_target = p_target.log()
    tiny = p_target < SMALLEST_PRECISE_PROBABILITY
    # on CPU the check is free and the second pass rare; on a GPU the pass is cheaper than a host sync
    if prob.device.type != "cpu" or tiny.any():
        log_p_target = torch.where(tiny, log_softmax(z, scratch()).gather(1, t1), log_p_target)
    return prob, log_p_target
