"""Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017): sigmoid and softmax forms."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ._fused import Scratch, compute_dtype, elementwise_loss, softplus_sigmoid
from ._reduction import count_valid, reduce_loss
from ._validation import (
    check_choice, check_class_weight, check_index_target, check_logits, check_number, check_probability_target,
    check_reduction, check_unit_interval, check_weight, fail,
)
from .binary_seesaw import softplus
from .seesaw import softmax_loss

NORMALIZERS = ("elements", "positives")


def _power(base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` for ``base >= 0``, with the cheap cases special-cased; ``0 ** e = 0`` for ``e < 0``
    (where the factor it multiplies vanishes faster). May return ``base`` itself: do not modify it in place."""
    if exponent == 0:
        return torch.ones_like(base)
    if exponent == 1:
        return base
    if exponent == 2:
        return base * base
    if exponent == 4:
        return (base * base).square_()
    if exponent < 0:
        return torch.where(base > 0, base, torch.ones_like(base)).pow(exponent).masked_fill(base <= 0, 0)
    return base.pow(exponent)


class SigmoidFocalKernel:
    r"""``a_t (1 - p_t)^\gamma \mathrm{BCE}(x, t)`` with ``1 - p_t = \sigma(x)(1 - t) + \sigma(-x) t``.

    ``alpha`` is a float, None, or (when ``alpha_operand``) the first operand tensor of the engine.
    """

    def __init__(self, gamma: float, alpha: Optional[float]) -> None:
        self.gamma, self.alpha = gamma, alpha

    def _parts(self, x: Tensor, t: Tensor):
        """``sigma(x)``, ``sigma(-x)``, the BCE and the modulating base ``m = 1 - p_t``, all stable."""
        p, pn = torch.sigmoid(x), torch.sigmoid(-x)
        ce = softplus(x) - t * x
        m = p + t * (pn - p)
        return p, pn, ce, m

    def _alpha_t(self, t: Tensor, alpha: Sequence[Tensor]):
        a = alpha[0] if alpha else self.alpha
        return None if a is None else (1 - a) + (2 * a - 1) * t

    def loss(self, x: Tensor, t: Tensor, *alpha: Tensor) -> Tensor:
        _, _, ce, m = self._parts(x, t)
        out = ce * _power(m, self.gamma) if self.gamma != 0 else ce
        a_t = self._alpha_t(t, alpha)
        return out if a_t is None else out * a_t

    def evaluate(self, x: Tensor, t: Tensor, *alpha: Tensor, need_grad: bool, scratch: Scratch):
        # With m = 1 - p_t = t + p (1 - 2t) and k = a_t m^(gamma - 1): loss = k m BCE and
        # d/dx = k [(p - t) m + gamma BCE p (1 - p) (1 - 2t)]; for gamma = 0, loss = a_t BCE, d/dx = a_t (p - t).
        softplus, p = softplus_sigmoid(x, True, scratch)
        ce = softplus.addcmul_(t, x, value=-1)
        m = None if self.gamma == 0 else torch.addcmul(p, t, p, value=-2, out=scratch()).add_(t)
        k = None if self.gamma in (0, 1) else m if self.gamma == 2 else _power(m, self.gamma - 1)
        a_t = self._alpha_t_into(t, alpha, scratch)
        if a_t is not None:
            k = a_t if k is None else a_t.mul_(k)
        loss = ce if m is None else torch.mul(ce, m, out=scratch())
        if k is not None:
            loss.mul_(k)
        if not need_grad:
            return loss, None
        if m is None:
            grad = p.sub_(t)
        else:
            spread = torch.addcmul(p, p, p, value=-1, out=scratch()).mul_(ce)
            spread.addcmul_(t, spread, value=-2)                 # p (1 - p) BCE (1 - 2t)
            grad = p.sub_(t).mul_(m).add_(spread, alpha=self.gamma)
        return loss, (grad if k is None else grad.mul_(k))

    def _alpha_t_into(self, t: Tensor, alpha: Sequence[Tensor], scratch: Scratch) -> Optional[Tensor]:
        """``a_t = (1 - a) + (2a - 1) t`` in a scratch buffer, or None without ``alpha``."""
        if alpha:
            return torch.neg(alpha[0], out=scratch()).add_(1).lerp_(alpha[0], t)
        if self.alpha is None:
            return None
        return torch.mul(t, 2 * self.alpha - 1, out=scratch()).add_(1 - self.alpha)


class SoftmaxFocalKernel:
    r"""Per-position ``-alpha_t (1 - p_t)^\gamma \log p_t`` over ``(B, C, L)`` logits."""

    def __init__(self, gamma: float, alpha: Optional[Tensor]) -> None:
        self.gamma, self.alpha = gamma, alpha

    def _alpha_t(self, t: Tensor) -> Optional[Tensor]:
        return None if self.alpha is None else self.alpha[t]

    def loss(self, z: Tensor, t: Tensor) -> Tensor:
        log_p_t = torch.log_softmax(z, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
        out = -log_p_t
        if self.gamma != 0:
            out = out * _power(-torch.expm1(log_p_t), self.gamma)
        a_t = self._alpha_t(t)
        return out if a_t is None else out * a_t

    def evaluate(self, z: Tensor, t: Tensor, *, need_grad: bool, scratch: Scratch):
        # d loss / d z_j = k (delta_tj - p_j), with k per position: only exp(z - max) is class-sized
        t1 = t.unsqueeze(1)
        z_max = z.amax(1, keepdim=True)
        e = torch.sub(z, z_max, out=scratch()).exp_()
        total = e.sum(1, keepdim=True)
        log_p_t = (z.gather(1, t1) - z_max - total.log()).squeeze(1)
        loss = -log_p_t
        k = torch.full_like(log_p_t, -1.0) if need_grad else None
        if self.gamma != 0:
            one_minus = -torch.expm1(log_p_t)
            modulation = _power(one_minus, self.gamma)
            if need_grad:
                k = (_power(one_minus, self.gamma - 1) * log_p_t.exp()).mul_(log_p_t).mul_(self.gamma)
                k.sub_(modulation)
            loss = loss * modulation
        a_t = self._alpha_t(t)
        if a_t is not None:
            loss = loss * a_t
            k = None if k is None else k * a_t
        if not need_grad:
            return loss, None
        grad = e.mul_((-k).unsqueeze(1).div_(total))
        return loss, grad.scatter_add_(1, t1, k.unsqueeze(1))


def check_gamma(fn: str, gamma: object) -> None:
    check_number(fn, "gamma", gamma, low=0)


def sigmoid_focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: Optional[Union[float, Tensor]] = 0.25,
    gamma: float = 2.0,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
    normalizer: str = "elements",
) -> Tensor:
    r"""Sigmoid focal loss for binary and multi-label outputs.

    .. math::
        \ell = \alpha_t\, (1 - p_t)^\gamma\, \mathrm{BCE}(x, t), \quad
        p_t = p\,t + (1 - p)(1 - t), \quad \alpha_t = \alpha\, t + (1 - \alpha)(1 - t), \quad p = \sigma(x)

    Equal to torchvision's ``sigmoid_focal_loss(x, t, alpha, gamma)`` (``alpha=None`` here is its
    ``alpha=-1``). ``gamma = 0`` with ``alpha=None`` is binary cross-entropy. Computed stably (``1 - p_t`` from
    ``sigma(-x)``, no ``log(sigmoid)``), in fused chunks with an analytic backward.

    Args:
        logits: one logit per element.
        target: probabilities of the positive class in ``[0, 1]``, the logits' shape.
        alpha: weight of the positive class in ``[0, 1]`` (the negative class gets ``1 - alpha``); a tensor
            broadcastable to the logits gives one per class (e.g. ``(C, 1, 1)``); None disables it.
        gamma: focusing exponent, ``>= 0`` (``gamma = 2`` is computed with a square, not ``pow``).
        weight: per-element weights broadcastable to the target (constants).
        ignore_index: target value whose elements contribute neither loss nor gradient.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        normalizer: what ``"mean"`` divides by: ``"elements"`` (non-ignored elements, torchvision's mean) or
            ``"positives"`` (the summed target over non-ignored elements, at least 1: RetinaNet's
            normalisation by the number of positive anchors).

    Shape:
        - logits: ``(N, *)``; target: the same shape.
        - alpha (tensor): broadcastable to ``(N, *)``; weight: broadcastable to ``(N, *)``.
        - output: scalar, or ``(N, *)`` for ``reduction="none"``.

    Example:
        >>> logits = torch.randn(8, 3, requires_grad=True)
        >>> target = (torch.rand(8, 3) < 0.2).float()
        >>> sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0).backward()
    """
    fn = "sigmoid_focal_loss"
    check_logits(fn, logits)
    check_reduction(fn, reduction)
    check_choice(fn, "normalizer", normalizer, NORMALIZERS)
    check_gamma(fn, gamma)
    check_unit_interval(fn, "alpha", alpha)
    target = check_probability_target(fn, logits, target, ignore_index, softmax_name="softmax_focal_loss")
    check_weight(fn, "weight", weight, target.shape, f"None or broadcastable to the target's shape {tuple(target.shape)}")
    cdtype = compute_dtype(logits.dtype)
    operands: tuple = ()
    if isinstance(alpha, Tensor):
        check_weight(fn, "alpha", alpha, logits.shape, f"a number or broadcastable to the logits' shape "
                     f"{tuple(logits.shape)} (e.g. (C, 1, 1) per channel)")
        operands = (alpha.to(device=logits.device, dtype=cdtype),)
    kernel = SigmoidFocalKernel(float(gamma), None if isinstance(alpha, Tensor) or alpha is None else float(alpha))
    w = None if weight is None else weight.to(cdtype)

    def run(reduce_sum: bool) -> Tensor:
        return elementwise_loss(kernel, logits, target, weight=w, ignore_index=ignore_index,
                                reduce_sum=reduce_sum, operands=operands)

    def denominator():
        if normalizer == "elements":
            return count_valid(target, ignore_index)
        t = target.to(cdtype)
        if ignore_index is not None:
            t = t.masked_fill(target == ignore_index, 0)
        return t.sum().clamp(min=1)

    return reduce_loss(fn, run, reduction, denominator)


def softmax_focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: Optional[Union[Tensor, Sequence[float]]] = None,
    gamma: float = 2.0,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Softmax focal loss for multi-class outputs with class-index targets.

    .. math::
        \ell = -\alpha_{t}\, (1 - p_t)^\gamma \log p_t, \qquad p = \mathrm{softmax}(z)

    ``gamma = 0`` without ``alpha`` is cross-entropy. ``alpha`` multiplies each element's loss by its class's
    entry and, unlike ``cross_entropy``'s ``weight``, leaves the ``"mean"`` denominator unchanged (the number of
    non-ignored elements), as MMDetection's focal loss does. kornia's ``focal_loss`` and MONAI's ``FocalLoss``
    give the same sum but their ``"mean"`` divides by every element of ``(N, C, *)`` (ignored ones included),
    i.e. ``C`` times less. Class-balanced weights (:func:`class_balanced_weights`) fit here.

    Args:
        logits: unnormalised scores.
        target: class indices.
        alpha: per-class factors ``(C,)``, non-negative (need not sum to 1); None for none.
        gamma: focusing exponent, ``>= 0``.
        weight: per-element weights broadcastable to the target (constants).
        ignore_index: target value to skip; None for none.
        reduction: ``"none"`` | ``"mean"`` (over non-ignored elements) | ``"sum"``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; target: ``(N,)`` or ``(N, d1, ..., dK)``, integer.
        - alpha: ``(C,)``; weight: broadcastable to the target's shape.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Example:
        >>> logits = torch.randn(2, 4, 8, 8, requires_grad=True)
        >>> target = torch.randint(0, 4, (2, 8, 8))
        >>> softmax_focal_loss(logits, target, alpha=torch.tensor([0.1, 1.0, 1.0, 2.0])).backward()
    """
    fn = "softmax_focal_loss"
    check_logits(fn, logits, min_dim=2)
    check_reduction(fn, reduction)
    check_gamma(fn, gamma)
    num_classes = logits.shape[1]
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        fail(fn, "alpha", f"None or a tensor of {num_classes} per-class factors", alpha,
             f"a single factor only scales the loss; use alpha=torch.full(({num_classes},), {alpha})",
             error=TypeError)
    alpha = check_class_weight(fn, alpha, num_classes, arg="alpha")
    check_index_target(fn, logits, target, ignore_index, num_classes=num_classes,
                       hint_float="softmax_focal_loss takes class indices; for one logit per element or "
                                  "multi-label targets use sigmoid_focal_loss")
    check_weight(fn, "weight", weight, target.shape, f"None or broadcastable to the target's shape {tuple(target.shape)}")
    if alpha is not None:
        alpha = alpha.to(device=logits.device, dtype=compute_dtype(logits.dtype))
    kernel = SoftmaxFocalKernel(float(gamma), alpha)
    return softmax_loss(fn, kernel, logits, target, weight=None, element_weight=weight, ignore_index=ignore_index,
                        reduction=reduction)
