r"""Overlap losses: Tversky, Dice, Jaccard (soft IoU), focal Tversky and generalized Dice.

All are functions of three per-class sums over the scored elements (per image, or over the whole batch):

.. math::
    I_c = \sum p_c\, t_c, \qquad P_c = \sum p_c, \qquad T_c = \sum t_c

(``squared_denominator``: :math:`P_c = \sum p_c^2`, :math:`T_c = \sum t_c^2`, the V-Net Dice), with
:math:`p = \sigma(x)` (``activation="sigmoid"``: binary / multi-label, float targets of the logits' shape) or
:math:`p = \mathrm{softmax}(z)` (``activation="softmax"``: multi-class, class-index targets, one-hot on the fly),
or :math:`p` the inputs themselves (``activation=None``: probabilities, checked to lie in ``[0, 1]`` where value
checks run; the target is a mask of their shape or ``(N, *)`` class indices; see
:mod:`seesaw_losses.functional._activation`). An empty input (``N = 0``) gives 0 with a zero gradient.
The Tversky index is

.. math::
    \mathrm{TI}_c = \frac{I_c + s_{nr}}{I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s_{dr}}

(:math:`\alpha` weights false positives, :math:`\beta` false negatives). Dice is Tversky with
:math:`\alpha = \beta = 1/2`, Jaccard with :math:`\alpha = \beta = 1`; the focal Tversky loss is
:math:`(1 - \mathrm{TI})^\gamma`. The loss per class is :math:`1 - \mathrm{TI}_c` (or :math:`-\log \mathrm{TI}_c`
with ``log_loss``); ``"mean"`` is the (``class_weight``-weighted) average over classes and images.

**Empty masks.** A class with no foreground in the scored region (the image with ``per_image=True``, else the
batch) has :math:`I = T = 0`, so its score is :math:`s_{nr} / (\alpha P + s_{dr})`: with the default smoothing
(``1e-5`` both) an empty prediction scores 1 (loss 0) and any predicted mass drives the loss towards 1. With
both smoothing terms 0 the score of such a class is 0 (loss 1, no gradient) unless nothing at all is predicted
and the denominator is 0, which scores 1. Ignored elements (``ignore_index``) are left out of every sum.

**Smoothing differs from MONAI by a factor 2 for Dice and Jaccard**: Dice here is
:math:`(2I + 2s_{nr}) / (P + T + 2s_{dr})` (the Tversky form), so MONAI's ``DiceLoss(smooth_nr=a, smooth_dr=b)``
equals ``dice_loss(smooth_nr=a/2, smooth_dr=b/2)``; Tversky's smoothing is MONAI's. ``class_weight`` here
has one entry per channel (background included, unused when it is excluded) and ``"mean"`` divides by the
summed weights; MONAI's weight covers only the scored classes and its mean divides by their number. kornia's
``dice_loss(average="macro")`` and ``tversky_loss`` average only the classes present in each image; here every
scored class counts (an absent class with predicted mass is a miss).

Forward computes the activation once (the only input-sized allocation besides the gradient) and the sums
with whole-tensor reductions (batched dot products, no product tensor); when a gradient is needed it keeps the
activation (for the sigmoid, turned in place into its derivative ``p (1 - p)``), so that backward is two or
three passes with no transcendental: ``p (1 - p) (a + b t)`` with per-image, per-class ``a``, ``b`` for the
sigmoid. Under ``torch.compile`` (or :func:`~seesaw_losses.functional._fused.plain_formula`) the plain formula
is used.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._activation import check_activation, check_activation_inputs, index_form, probabilities
from ._fused import _use_plain_formula, compute_dtype
from ._reduction import reduce_rows
from ._shapes import flatten_from
from ._targets import mask_ignored, valid_mask
from ._validation import check_choice, check_class_weight, check_logits, check_number, check_reduction, fail

GENERALIZED_WEIGHTS = ("square", "simple", "uniform")
DEFAULT_SMOOTH = 1e-5


# ----------------------------------------------------------------------------------------------------------
# The sums, fused
# ----------------------------------------------------------------------------------------------------------


def _block(z: Tensor, t: Tensor, activation: Optional[str], index: bool, ignore_index: Optional[int],
           cdtype: torch.dtype):
    """Probabilities ``(B, C, L)``, the masked (one-hot) target ``(B, C, L)`` and the valid mask (or None)."""
    p = probabilities(z, activation, cdtype)
    if index:
        index_t, valid = mask_ignored(t, ignore_index)
        valid = None if valid is None else valid.unsqueeze(1)
        target = torch.zeros_like(p).scatter_(1, index_t.unsqueeze(1), 1.0)
    else:
        valid = valid_mask(t, ignore_index)
        target = t.to(cdtype)
    if valid is not None:
        target = target.masked_fill(~valid, 0)
    return p, target, valid


def _sums(p: Tensor, target: Tensor, valid: Optional[Tensor], squared: bool):
    pv = p if valid is None else p.masked_fill(~valid, 0)
    return (pv * target).sum(-1), (pv * pv if squared else pv).sum(-1), (target * target if squared else target).sum(-1)


def _row_dot(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum(-1)`` of two ``(N, C, L)`` tensors as batched dot products, without the product tensor."""
    return torch.einsum("ncl,ncl->nc", a, b)


class _OverlapSums(torch.autograd.Function):
    """``(I, P, T)`` from whole-tensor passes; backward is two or three passes over the saved activation.

    Forward keeps what backward needs instead of recomputing the activation: for the sigmoid, ``p (1 - p)``
    (overwriting ``p``; ``p`` itself with ``squared``) and the target in the computing dtype; for the softmax,
    ``p``, the class indices and ``p`` at the target class. Ignored elements have ``p = 0`` there, which zeroes
    their gradient with no mask in backward.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, softmax: bool, ignore_index: Optional[int], squared: bool):
        cdtype = compute_dtype(logits.dtype)
        n, c = logits.shape[0], logits.shape[1]
        p = probabilities(flatten_from(logits, 2), "softmax" if softmax else "sigmoid", cdtype)
        ctx.softmax, ctx.squared, ctx.input_dtype, ctx.shape = softmax, squared, logits.dtype, logits.shape
        if softmax:
            index, valid = mask_ignored(flatten_from(target, 1), ignore_index)
            if valid is not None:
                p.mul_(valid.unsqueeze(1))
            p_true = p.gather(1, index.unsqueeze(1))
            intersection = p.new_zeros(n, c).scatter_add_(1, index, p_true.squeeze(1))
            counts = torch.ones_like(index, dtype=cdtype) if valid is None else valid.to(cdtype)
            true = p.new_zeros(n, c).scatter_add_(1, index, counts)
            predicted = _row_dot(p, p) if squared else p.sum(-1)
            saved = (p, index, p_true)
        else:
            t, valid = mask_ignored(flatten_from(target, 2).to(cdtype), ignore_index)
            if valid is not None:
                p.mul_(valid)
            intersection = _row_dot(p, t)
            predicted = _row_dot(p, p) if squared else p.sum(-1)
            true = _row_dot(t, t) if squared else t.sum(-1)
            if ctx.needs_input_grad[0] and not squared:
                torch.addcmul(p, p, p, value=-1, out=p)  # p (1 - p), the sigmoid's derivative
            saved = (p, t)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(*saved)
        ctx.mark_non_differentiable(true)
        return intersection, predicted, true

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_intersection: Tensor, grad_predicted: Tensor, _grad_true: Tensor):
        g_i, g_p = grad_intersection.unsqueeze(-1), grad_predicted.unsqueeze(-1)
        # written through a flat view into a tensor of the logits' shape: a view returned from backward would keep
        # autograd from summing this gradient and another loss's in place
        full = torch.empty(ctx.shape, dtype=g_i.dtype, device=g_i.device)
        if ctx.softmax:
            # d/dz_c = p_c (d_c - sum_k p_k d_k), d_c = dL/dp_c = g_p[c] (2 p_c if squared) + g_i[c] [c = t]
            p, index, p_true = ctx.saved_tensors
            grad = torch.mul(p, g_p, out=full.view(p.shape))
            if ctx.squared:
                grad.mul_(p).mul_(2)
            at_true = g_i.squeeze(-1).gather(1, index).unsqueeze(1).mul_(p_true)
            total = grad.sum(1, keepdim=True).add_(at_true)
            grad.addcmul_(p, total, value=-1).scatter_add_(1, index.unsqueeze(1), at_true)
        elif ctx.squared:
            # d/dx = p (1 - p) (g_i t + 2 g_p p)
            p, t = ctx.saved_tensors
            grad = torch.mul(p, 2 * g_p, out=full.view(p.shape)).addcmul_(t, g_i).mul_(p)
            grad.addcmul_(grad, p, value=-1)
        else:
            # d/dx = p (1 - p) (g_p + g_i t)
            derivative, t = ctx.saved_tensors
            torch.addcmul(g_p, t, g_i, out=full.view(t.shape)).mul_(derivative)
        return full.to(ctx.input_dtype), None, None, None, None


def overlap_sums(logits: Tensor, target: Tensor, *, activation: Optional[str], ignore_index: Optional[int] = None,
                 squared: bool = False):
    """Per-image, per-class ``(I, P, T)`` of validated inputs, each ``(N, C)`` in the computing dtype.

    ``I`` and ``P`` carry the gradient (fused backward; plain autograd for probability inputs); ``T`` depends on
    the target only.
    """
    index = index_form(activation, logits, target)
    if activation is None or _use_plain_formula():
        p, t, valid = _block(flatten_from(logits, 2), flatten_from(target, 1 if index else 2), activation, index,
                             ignore_index, compute_dtype(logits.dtype))
        return _sums(p, t, valid, squared)
    return _OverlapSums.apply(logits, target, activation == "softmax", ignore_index, squared)


# ----------------------------------------------------------------------------------------------------------
# Validation and the formulas on the sums
# ----------------------------------------------------------------------------------------------------------


def check_overlap_tensors(fn: str, logits: Tensor, target: Tensor, activation: Optional[str],
                          ignore_index: Optional[int], include_background: bool) -> None:
    """The per-call checks of every overlap loss."""
    check_logits(fn, logits, min_dim=2)
    check_activation_inputs(fn, logits, target, activation, ignore_index)
    if not include_background and logits.shape[1] < 2:
        fail(fn, "include_background", "True for one-channel logits", include_background,
             "excluding channel 0 would leave no class to score")


def check_overlap_options(fn: str, *, alpha: float, beta: float, smooth_nr: float, smooth_dr: float,
                          reduction: str, activation: Optional[str], gamma: float = 1.0,
                          log_loss: bool = False) -> None:
    """Options shared by every overlap loss (functions and modules)."""
    check_number(fn, "alpha", alpha, low=0)
    check_number(fn, "beta", beta, low=0)
    check_number(fn, "gamma", gamma, low=0, low_open=True)
    check_number(fn, "smooth_nr", smooth_nr, low=0)
    check_number(fn, "smooth_dr", smooth_dr, low=0)
    check_reduction(fn, reduction)
    check_activation(fn, activation)
    if log_loss and gamma != 1:
        fail(fn, "gamma", "1 with log_loss=True", gamma, "the focal exponent applies to 1 - TI, not to -log TI")


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator``, 1 where the denominator is 0 (nothing predicted, nothing true, no smoothing)."""
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, numerator / safe, torch.ones_like(numerator))


def _pooled(logits: Tensor, target: Tensor, activation: Optional[str], ignore_index: Optional[int],
            include_background: bool, squared: bool, per_image: bool):
    intersection, predicted, true = overlap_sums(logits, target, activation=activation,
                                                 ignore_index=ignore_index, squared=squared)
    if not per_image:
        intersection, predicted, true = (s.sum(0, keepdim=True) for s in (intersection, predicted, true))
    if not include_background:
        intersection, predicted, true = (s[:, 1:] for s in (intersection, predicted, true))
    return intersection, predicted, true


def tversky_loss(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 1.0,
    activation: Optional[str] = "sigmoid",
    per_image: bool = False,
    smooth_nr: float = DEFAULT_SMOOTH,
    smooth_dr: float = DEFAULT_SMOOTH,
    squared_denominator: bool = False,
    log_loss: bool = False,
    include_background: bool = True,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Tversky loss (Salehi et al. 2017): :math:`(1 - \mathrm{TI}_c)^\gamma` per class, averaged.

    See the module documentation of :mod:`seesaw_losses.functional.overlap` for the sums, the Tversky index,
    the empty-mask behaviour and the differences from MONAI. Matches MONAI's ``TverskyLoss`` (same smoothing)
    and kornia's ``tversky_loss`` (per image, softmax, ``smooth_nr=0``, ``smooth_dr=eps``).

    Args:
        logits: raw scores, one channel per class (or one channel for binary outputs).
        target: ``activation="sigmoid"``: the logits' shape, values in ``[0, 1]``; ``"softmax"``: class indices;
            None: either.
        alpha: weight of false positives, ``>= 0``.
        beta: weight of false negatives, ``>= 0``.
        gamma: focal exponent ``> 0`` on ``1 - TI`` (1 = plain Tversky; see :func:`focal_tversky_loss`).
        activation: ``"sigmoid"`` (binary / multi-label) | ``"softmax"`` (multi-class) | None (``logits`` are
            probabilities already, e.g. a model's softmax output).
        per_image: statistics per image (True) or over the whole batch (False, MONAI's ``batch=True``).
        smooth_nr: added to the numerator, ``>= 0``.
        smooth_dr: added to the denominator, ``>= 0``.
        squared_denominator: use :math:`\sum p^2` and :math:`\sum t^2` (MONAI's ``squared_pred``).
        log_loss: :math:`-\log \mathrm{TI}` instead of :math:`1 - \mathrm{TI}` (the log-Dice loss).
        include_background: score channel 0 (False leaves it out of the loss; it stays in the softmax).
        class_weight: per-class weights ``(C,)`` (channel 0 included), non-negative; "mean" divides by their sum.
        ignore_index: target value (sigmoid: per element; softmax: per position) left out of every sum.
        reduction: ``"none"`` (per image and class, or per class) | ``"mean"`` | ``"sum"``.

    Shape:
        - logits: ``(N, C, d1, ..., dK)`` (2D, 3D, or ``(N, C)``).
        - target: sigmoid: ``(N, C, d1, ..., dK)``; softmax: ``(N, d1, ..., dK)`` integer.
        - class_weight: ``(C,)``.
        - output: scalar; for ``reduction="none"`` ``(N, C')`` with ``per_image`` else ``(C',)``, where ``C'``
          is ``C`` or ``C - 1`` without the background.

    Examples:
        >>> logits = torch.randn(2, 1, 32, 32, requires_grad=True)
        >>> mask = (torch.rand(2, 1, 32, 32) < 0.1).float()
        >>> tversky_loss(logits, mask, alpha=0.3, beta=0.7).backward()
    """
    fn = "tversky_loss"
    return _tversky(fn, logits, target, alpha=alpha, beta=beta, gamma=gamma, activation=activation,
                    per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                    squared_denominator=squared_denominator, log_loss=log_loss,
                    include_background=include_background, class_weight=class_weight, ignore_index=ignore_index,
                    reduction=reduction)


def _tversky(fn: str, logits: Tensor, target: Tensor, *, alpha: float, beta: float, gamma: float,
             activation: Optional[str], per_image: bool, smooth_nr: float, smooth_dr: float,
             squared_denominator: bool, log_loss: bool, include_background: bool, class_weight,
             ignore_index: Optional[int], reduction: str) -> Tensor:
    check_overlap_options(fn, alpha=alpha, beta=beta, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                          reduction=reduction, activation=activation, gamma=gamma, log_loss=log_loss)
    check_overlap_tensors(fn, logits, target, activation, ignore_index, include_background)
    class_weight = check_class_weight(fn, class_weight, logits.shape[1])
    return _tversky_unchecked(logits, target, alpha=alpha, beta=beta, gamma=gamma, activation=activation,
                              per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                              squared_denominator=squared_denominator, log_loss=log_loss,
                              include_background=include_background, class_weight=class_weight,
                              ignore_index=ignore_index, reduction=reduction)


def _tversky_unchecked(logits: Tensor, target: Tensor, *, alpha: float, beta: float, activation: Optional[str],
                       per_image: bool, smooth_nr: float, smooth_dr: float, include_background: bool,
                       class_weight: Optional[Tensor], ignore_index: Optional[int], reduction: str,
                       gamma: float = 1.0, squared_denominator: bool = False, log_loss: bool = False) -> Tensor:
    """The Tversky family on validated arguments (``class_weight`` a ``(C,)`` tensor or None)."""
    intersection, predicted, true = _pooled(logits, target, activation, ignore_index, include_background,
                                            squared_denominator, per_image)
    denominator = intersection + alpha * (predicted - intersection) + beta * (true - intersection) + smooth_dr
    score = _ratio(intersection + smooth_nr, denominator)
    if log_loss:
        loss = -torch.log(score.clamp(min=torch.finfo(score.dtype).tiny))
    else:
        loss = (1 - score).clamp(min=0)
        if gamma != 1:  # a perfect score (an empty batch too) stays 0
            loss = torch.where(loss > 0, loss.clamp(min=torch.finfo(loss.dtype).eps).pow(gamma), 0.0)
    if class_weight is not None:
        class_weight = class_weight.to(device=loss.device, dtype=loss.dtype)
        if not include_background:
            class_weight = class_weight[1:]
    return reduce_rows(loss, reduction, per_image, class_weight)


def dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    activation: Optional[str] = "sigmoid",
    per_image: bool = False,
    smooth_nr: float = DEFAULT_SMOOTH,
    smooth_dr: float = DEFAULT_SMOOTH,
    squared_denominator: bool = False,
    log_loss: bool = False,
    include_background: bool = True,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Soft Dice loss: :func:`tversky_loss` with ``alpha = beta = 0.5``.

    .. math::
        1 - \frac{I_c + s_{nr}}{\tfrac12 (P_c + T_c) + s_{dr}} = 1 - \frac{2 I_c + 2 s_{nr}}{P_c + T_c + 2 s_{dr}}

    Matches MONAI's ``DiceLoss`` with its smoothing terms doubled (see the module documentation) and kornia's
    ``dice_loss``. Arguments and shapes as in :func:`tversky_loss`.

    Examples:
        >>> logits = torch.randn(2, 4, 16, 16, requires_grad=True)
        >>> dice_loss(logits, torch.randint(0, 4, (2, 16, 16)), activation="softmax").backward()
    """
    return _tversky("dice_loss", logits, target, alpha=0.5, beta=0.5, gamma=1.0, activation=activation,
                    per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                    squared_denominator=squared_denominator, log_loss=log_loss,
                    include_background=include_background, class_weight=class_weight, ignore_index=ignore_index,
                    reduction=reduction)


def jaccard_loss(
    logits: Tensor,
    target: Tensor,
    *,
    activation: Optional[str] = "sigmoid",
    per_image: bool = False,
    smooth_nr: float = DEFAULT_SMOOTH,
    smooth_dr: float = DEFAULT_SMOOTH,
    log_loss: bool = False,
    include_background: bool = True,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Jaccard (soft IoU) loss: :func:`tversky_loss` with ``alpha = beta = 1``.

    .. math::
        1 - \frac{I_c + s_{nr}}{P_c + T_c - I_c + s_{dr}}

    Matches MONAI's ``DiceLoss(jaccard=True)`` with its smoothing terms doubled. Arguments and shapes as in
    :func:`tversky_loss`.
    """
    return _tversky("jaccard_loss", logits, target, alpha=1.0, beta=1.0, gamma=1.0, activation=activation,
                    per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr, squared_denominator=False,
                    log_loss=log_loss, include_background=include_background, class_weight=class_weight,
                    ignore_index=ignore_index, reduction=reduction)


def focal_tversky_loss(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    activation: Optional[str] = "sigmoid",
    per_image: bool = False,
    smooth_nr: float = DEFAULT_SMOOTH,
    smooth_dr: float = DEFAULT_SMOOTH,
    include_background: bool = True,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Focal Tversky loss (Abraham & Khan 2019): :math:`(1 - \mathrm{TI}_c)^\gamma`.

    ``gamma`` is the exponent applied (the paper's :math:`1/\gamma`; its recommended 4/3 is ``gamma=0.75``).
    For ``gamma < 1`` a base below float epsilon is raised to epsilon so that the gradient stays finite near a
    perfect score (which itself scores 0). Arguments and shapes as in :func:`tversky_loss`.
    """
    return _tversky("focal_tversky_loss", logits, target, alpha=alpha, beta=beta, gamma=gamma,
                    activation=activation, per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                    squared_denominator=False, log_loss=False, include_background=include_background,
                    class_weight=class_weight, ignore_index=ignore_index, reduction=reduction)


def generalized_dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    weight_type: str = "square",
    activation: Optional[str] = "sigmoid",
    per_image: bool = False,
    smooth_nr: float = DEFAULT_SMOOTH,
    smooth_dr: float = DEFAULT_SMOOTH,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Generalized Dice loss (Sudre et al. 2017): classes weighted by their (inverse squared) volume.

    .. math::
        1 - \frac{2 \sum_c w_c I_c + s_{nr}}{\sum_c w_c (P_c + T_c) + s_{dr}}, \qquad
        w_c = 1 / T_c^2 \ (\text{"square"}), \ 1 / T_c \ (\text{"simple"}), \ 1 \ (\text{"uniform"})

    The weights come from the target (no gradient); a class with :math:`T_c = 0` gets the largest weight of the
    others (all 0 if every class is empty). Equal to MONAI's ``GeneralizedDiceLoss`` with the same smoothing
    (its formula has no Tversky form, so no factor 2 here). The other options are those of :func:`tversky_loss`.

    Args:
        weight_type: ``"square"`` | ``"simple"`` | ``"uniform"``.

    Shape:
        - logits, target: as in :func:`tversky_loss`.
        - output: scalar; ``(N,)`` with ``per_image`` and ``reduction="none"``, else a 0-dim tensor.
    """
    fn = "generalized_dice_loss"
    check_generalized_dice_options(fn, weight_type=weight_type, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                                   reduction=reduction, activation=activation)
    check_overlap_tensors(fn, logits, target, activation, ignore_index, include_background)
    return _generalized_dice_unchecked(logits, target, weight_type=weight_type, activation=activation,
                                       per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                                       include_background=include_background, ignore_index=ignore_index,
                                       reduction=reduction)


def check_generalized_dice_options(fn: str, *, weight_type: str, smooth_nr: float, smooth_dr: float,
                                   reduction: str, activation: Optional[str]) -> None:
    check_overlap_options(fn, alpha=0.5, beta=0.5, smooth_nr=smooth_nr, smooth_dr=smooth_dr, reduction=reduction,
                          activation=activation)
    check_choice(fn, "weight_type", weight_type, GENERALIZED_WEIGHTS)


def _generalized_dice_unchecked(logits: Tensor, target: Tensor, *, weight_type: str, activation: Optional[str],
                                per_image: bool, smooth_nr: float, smooth_dr: float, include_background: bool,
                                ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`generalized_dice_loss` on validated arguments."""
    intersection, predicted, true = _pooled(logits, target, activation, ignore_index, include_background, False,
                                            per_image)
    if weight_type == "uniform":
        w = torch.ones_like(true)
    else:
        volume = true if weight_type == "simple" else true * true
        w = torch.where(volume > 0, 1 / torch.where(volume > 0, volume, torch.ones_like(volume)), torch.zeros_like(volume))
        w = torch.where(volume > 0, w, w.amax(1, keepdim=True))
    numerator = 2 * (w * intersection).sum(1) + smooth_nr
    denominator = (w * (predicted + true)).sum(1) + smooth_dr
    return reduce_rows(1 - _ratio(numerator, denominator), reduction, per_image)
