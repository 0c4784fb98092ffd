"""Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017): sigmoid and softmax forms."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ._forms import FOCAL, SOFTMAX_FOCAL, SigmoidForm, SoftmaxForm
from ._fused import compute_dtype, reduced_elementwise_loss
from ._scratch import Scratch
from ._math import log_softmax, power, softmax_and_target_log_prob, softplus, softplus_sigmoid
from ._targets import mask_ignored
from ._validation import (
    check_choice, check_class_weight, check_element_weight, check_index_target, check_logits, check_number,
    check_probability_target, check_reduction, fail,
)
from .seesaw import softmax_loss

NORMALIZERS = ("elements", "positives")


class SigmoidFocalKernel:
    r"""``a_t (1 - p_t)^\gamma \mathrm{BCE}(x, t)`` with ``1 - p_t = \sigma(x)(1 - t) + \sigma(-x) t``;
    ``a_t = alpha t + (1 - alpha)(1 - t)``, or 1 when ``alpha`` is None. A per-class ``alpha`` is the kernel's
    operand (a view broadcast along dimension 1) instead of the number ``alpha``."""

    def __init__(self, gamma: float, alpha: Optional[float]) -> None:
        self.gamma, self.alpha = gamma, alpha

    def loss(self, x: Tensor, t: Tensor, *class_alpha: Tensor) -> Tensor:
        p, pn = torch.sigmoid(x), torch.sigmoid(-x)
        ce = softplus(x) - t * x
        out = ce * power(p + t * (pn - p), self.gamma) if self.gamma != 0 else ce
        alpha = class_alpha[0] if class_alpha else self.alpha
        return out if alpha is None else out * ((1 - alpha) + (2 * alpha - 1) * t)

    def triton_form(self, *class_alpha: Tensor) -> SigmoidForm:
        if class_alpha:
            return SigmoidForm(FOCAL, (0.0, self.gamma), class_values=class_alpha[0].reshape(-1))
        return SigmoidForm(FOCAL, (-1.0 if self.alpha is None else self.alpha, self.gamma))

    def _alpha_t(self, t: Tensor, class_alpha: Tuple[Tensor, ...], scratch: Scratch) -> Optional[Tensor]:
        """``alpha t + (1 - alpha)(1 - t) = 1 - alpha + (2 alpha - 1) t`` in a scratch buffer, or None."""
        if class_alpha:
            a = class_alpha[0]
            return torch.mul(t, a, out=scratch()).mul_(2).sub_(t).sub_(a).add_(1)
        if self.alpha is None:
            return None
        return torch.mul(t, 2 * self.alpha - 1, out=scratch()).add_(1 - self.alpha)

    def evaluate(self, x: Tensor, t: Tensor, *class_alpha: Tensor, need_grad: bool, scratch: Scratch):
        # With m = 1 - p_t = t + p (1 - 2t) and k = a_t m^(gamma - 1): loss = k m BCE and
        # d/dx = k [(p - t) m + gamma BCE p (1 - p) (1 - 2t)]; for gamma = 0, loss = a_t BCE, d/dx = a_t (p - t).
        softplus_x, p = softplus_sigmoid(x, True, scratch, scratch.gradient() if need_grad else None)
        ce = softplus_x.addcmul_(t, x, value=-1)
        m = None if self.gamma == 0 else torch.addcmul(p, t, p, value=-2, out=scratch()).add_(t)
        k = None if self.gamma in (0, 1) else m if self.gamma == 2 else power(m, self.gamma - 1)
        a_t = self._alpha_t(t, class_alpha, scratch)
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


class SoftmaxFocalKernel:
    r"""Per-position ``-(1 - p_t)^\gamma \log p_t`` over ``(B, C, L)`` logits (class weights enter as the
    engine's per-position weight)."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma

    def loss(self, z: Tensor, t: Tensor) -> Tensor:
        log_p_t = log_softmax(z).gather(1, t.unsqueeze(1)).squeeze(1)
        out = -log_p_t
        return out * power(-torch.expm1(log_p_t), self.gamma) if self.gamma != 0 else out

    def triton_form(self) -> SoftmaxForm:
        return SoftmaxForm(SOFTMAX_FOCAL, gamma=self.gamma)

    def evaluate(self, z: Tensor, t: Tensor, *, need_grad: bool, scratch: Scratch):
        # d loss / d z_j = k (delta_tj - p_j), with k per position: only the softmax is class-sized
        t1 = t.unsqueeze(1)
        prob, log_p_t = softmax_and_target_log_prob(z, t1, need_grad, scratch)
        log_p_t = log_p_t.squeeze(1)
        loss = -log_p_t
        k = torch.full_like(log_p_t, -1.0) if need_grad else None
        if self.gamma != 0:
            one_minus = -torch.expm1(log_p_t)
            modulation = power(one_minus, self.gamma)
            if need_grad:
                k = (power(one_minus, self.gamma - 1) * log_p_t.exp()).mul_(log_p_t).mul_(self.gamma)
                k.sub_(modulation)
            loss = loss * modulation
        if prob is None:
            return loss, None
        k1 = k.unsqueeze(1)
        return loss, prob.mul_(k1.neg()).scatter_add_(1, t1, k1)


FocalAlpha = Optional[Union[float, Tensor, Sequence[float]]]


def check_sigmoid_focal_options(fn: str, alpha: object, gamma: object, reduction: str,
                                normalizer: str) -> Optional[Union[float, Tensor]]:
    """Options shared by :func:`sigmoid_focal_loss` and :class:`~seesaw_losses.SigmoidFocalLoss`; returns
    ``alpha`` as None, a number, or a 1-D float tensor of per-class values."""
    if isinstance(alpha, (list, tuple)):
        try:
            alpha = torch.as_tensor(alpha, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            fail(fn, "alpha", "None, a number in [0, 1] or a 1-D tensor of one per class", alpha, error=TypeError)
    if isinstance(alpha, Tensor):
        if alpha.dim() != 1 or alpha.numel() == 0:
            fail(fn, "alpha", "None, a number in [0, 1] or a 1-D tensor of one per class (dimension 1)", alpha,
                 "for per-element factors pass weight= broadcastable to the logits")
        alpha = alpha if alpha.is_floating_point() else alpha.float()
        if alpha.device.type == "cpu" and not torch.compiler.is_compiling() \
                and not bool(((alpha >= 0) & (alpha <= 1)).all()):
            fail(fn, "alpha", "per-class values in [0, 1]", alpha)
    else:
        if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha < 0:
            fail(fn, "alpha", "None or in [0, 1]", alpha, "alpha=None disables the class weight (torchvision "
                 "spells it alpha=-1)")
        if alpha is not None:
            check_number(fn, "alpha", alpha, low=0, high=1)
    check_number(fn, "gamma", gamma, low=0)
    check_reduction(fn, reduction)
    check_choice(fn, "normalizer", normalizer, NORMALIZERS)
    return alpha


def check_sigmoid_focal_tensors(fn: str, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                                ignore_index: Optional[int], alpha: Optional[Union[float, Tensor]]) -> None:
    check_logits(fn, logits)
    check_probability_target(fn, logits, target, ignore_index, softmax_name="softmax_focal_loss")
    check_element_weight(fn, weight, target.shape)
    if isinstance(alpha, Tensor) and (logits.dim() < 2 or logits.shape[1] != alpha.numel()):
        fail(fn, "alpha", f"one value per class of the logits' dimension 1 (shape {tuple(logits.shape)})", alpha,
             "a per-class alpha is applied along dimension 1 of (N, C, *) logits")


def _sigmoid_focal_unchecked(logits: Tensor, target: Tensor, *, alpha: Optional[Union[float, Tensor]],
                             gamma: float, weight: Optional[Tensor], ignore_index: Optional[int], reduction: str,
                             normalizer: str) -> Tensor:
    """:func:`sigmoid_focal_loss` on validated arguments."""
    per_class = isinstance(alpha, Tensor)
    kernel = SigmoidFocalKernel(float(gamma), None if alpha is None or per_class else float(alpha))
    operands = (alpha.to(logits.device).view((1, -1) + (1,) * (logits.dim() - 2)),) if per_class else ()

    def positives() -> Tensor:
        return mask_ignored(target.to(compute_dtype(logits.dtype)), ignore_index)[0].sum().clamp(min=1)

    return reduced_elementwise_loss(kernel, logits, target, weight=weight, ignore_index=ignore_index,
                                    reduction=reduction, operands=operands,
                                    denominator=positives if normalizer == "positives" else None)


def check_softmax_focal_options(fn: str, gamma: object, reduction: str) -> None:
    """Options shared by :func:`softmax_focal_loss` and :class:`~seesaw_losses.SoftmaxFocalLoss`."""
    check_number(fn, "gamma", gamma, low=0)
    check_reduction(fn, reduction)


def check_softmax_focal_tensors(fn: str, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                                ignore_index: Optional[int]) -> None:
    check_logits(fn, logits, min_dim=2)
    check_index_target(fn, logits, target, ignore_index, num_classes=logits.shape[1],
                       hint_float="softmax_focal_loss takes class indices; for one logit per element or "
                                  "multi-label targets use sigmoid_focal_loss")
    check_element_weight(fn, weight, target.shape, logits.shape[1])


def _softmax_focal_unchecked(logits: Tensor, target: Tensor, *, class_weight: Optional[Tensor], gamma: float,
                             weight: Optional[Tensor], ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`softmax_focal_loss` on validated arguments."""
    return softmax_loss(SoftmaxFocalKernel(float(gamma)), logits, target, class_weight=class_weight,
                        weight=weight, ignore_index=ignore_index, reduction=reduction)


def sigmoid_focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: FocalAlpha = 0.25,
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

    With a per-class ``alpha`` (a ``(C,)`` tensor), :math:`\alpha` is ``alpha[c]`` for the elements of class
    channel :math:`c` (dimension 1): class ``c``'s positives are weighted by ``alpha[c]``, its negatives by
    ``1 - alpha[c]``. Equal to torchvision's ``sigmoid_focal_loss(x, t, alpha, gamma)`` for a number
    (``alpha=None`` here is its ``alpha=-1``). ``gamma = 0`` with ``alpha=None`` is binary cross-entropy.
    Computed stably (``1 - p_t`` from ``sigma(-x)``, no ``log(sigmoid)``), in fused chunks with an analytic
    backward.

    Args:
        logits: one logit per element.
        target: probabilities of the positive class in ``[0, 1]``, the logits' shape.
        alpha: weight of the positives in ``[0, 1]`` (the negatives get ``1 - alpha``): one number, or one per
            class (a ``(C,)`` tensor or list, applied along dimension 1); None disables it. Per-element
            factors go in ``weight``.
        gamma: focusing exponent, ``>= 0`` (``gamma = 2`` is computed with a square, not ``pow``).
        weight: per-element weights broadcastable to the target (constants), e.g. ``(1, C, 1, 1)`` per class.
        ignore_index: target value whose elements contribute neither loss nor gradient.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        normalizer: what ``"mean"`` divides by: ``"elements"`` (non-ignored elements, torchvision's mean) or
            ``"positives"`` (the summed target over non-ignored elements, at least 1: RetinaNet's
            normalisation by the number of positive anchors).

    Shape:
        - logits: ``(N, *)`` (``(N, C, *)`` with a per-class ``alpha``); target: the same shape.
        - alpha: a number or ``(C,)``; weight: broadcastable to ``(N, *)``.
        - output: scalar, or ``(N, *)`` for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(8, 3, requires_grad=True)
        >>> target = (torch.rand(8, 3) < 0.2).float()
        >>> sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0).backward()
    """
    fn = "sigmoid_focal_loss"
    alpha = check_sigmoid_focal_options(fn, alpha, gamma, reduction, normalizer)
    check_sigmoid_focal_tensors(fn, logits, target, weight, ignore_index, alpha)
    return _sigmoid_focal_unchecked(logits, target, alpha=alpha, gamma=gamma, weight=weight,
                                    ignore_index=ignore_index, reduction=reduction, normalizer=normalizer)


def softmax_focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    gamma: float = 2.0,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Softmax focal loss for multi-class outputs with class-index targets.

    .. math::
        \ell = -w_{t}\, (1 - p_t)^\gamma \log p_t, \qquad p = \mathrm{softmax}(z)

    ``class_weight`` (the focal paper's per-class :math:`\alpha`) is ``cross_entropy``'s ``weight``: it
    multiplies each element's loss by its class's entry and ``"mean"`` divides by the summed weights of the
    non-ignored elements, so ``gamma = 0`` is ``cross_entropy(weight=class_weight)`` exactly. MMDetection's focal
    loss divides by the element count instead: multiply by ``sum(w[t]) / count`` to compare. kornia's
    ``focal_loss`` and MONAI's ``FocalLoss`` give the same sum but their ``"mean"`` divides by every element of
    ``(N, C, *)`` (ignored ones included). Class-balanced weights (:func:`class_balanced_weights`) fit here.

    Args:
        logits: unnormalised scores.
        target: class indices.
        class_weight: per-class factors ``(C,)``, non-negative (need not sum to 1); None for none.
        gamma: focusing exponent, ``>= 0``.
        weight: per-element weights broadcastable to the target (constants).
        ignore_index: target value to skip; None for none.
        reduction: ``"none"`` | ``"mean"`` (divided by the summed class weights of the non-ignored elements,
            their number without ``class_weight``) | ``"sum"``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; target: ``(N,)`` or ``(N, d1, ..., dK)``, integer.
        - class_weight: ``(C,)``; weight: broadcastable to the target's shape.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(2, 4, 8, 8, requires_grad=True)
        >>> target = torch.randint(0, 4, (2, 8, 8))
        >>> softmax_focal_loss(logits, target, class_weight=torch.tensor([0.1, 1.0, 1.0, 2.0])).backward()
    """
    fn = "softmax_focal_loss"
    check_softmax_focal_options(fn, gamma, reduction)
    check_softmax_focal_tensors(fn, logits, target, weight, ignore_index)
    class_weight = check_class_weight(fn, class_weight, logits.shape[1])
    return _softmax_focal_unchecked(logits, target, class_weight=class_weight, gamma=gamma, weight=weight,
                                    ignore_index=ignore_index, reduction=reduction)
