r"""Lovasz losses (Berman et al., "The Lovasz-Softmax loss", CVPR 2018): convex surrogates of the Jaccard loss.

For a set of errors :math:`m` sorted in decreasing order and the matching ground truth, the loss is
:math:`\sum_i m_{(i)}\, g_i` where :math:`g` is the gradient of the Jaccard loss's Lovasz extension
(the increments of :math:`1 - |F \setminus \pi_{1..i}| / |F \cup \pi_{1..i}|`). Rows (images, or the whole
batch) are sorted at once; ignored elements are moved to the end with zero error, which leaves every valid
element's term unchanged.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._fused import compute_dtype
from ._shapes import empty_loss
from ._validation import check_choice, check_index_target, check_logits, check_reduction, fail
from .binary_seesaw import binary_targets

CLASS_SETS = ("present", "all")


def _lovasz_gradient(gt_sorted: Tensor) -> Tensor:
    """Increments of the Jaccard loss along each row of sorted ground truth ``(R, P)``."""
    total = gt_sorted.sum(-1, keepdim=True)
    intersection = total - gt_sorted.cumsum(-1)
    union = total + (1 - gt_sorted).cumsum(-1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _lovasz_rows(errors: Tensor, gt: Tensor, valid: Optional[Tensor]) -> Tensor:
    """``sum_i m_(i) g_i`` per row of ``(R, P)`` non-negative errors and ``{0, 1}`` ground truth."""
    key = errors.detach() if valid is None else errors.detach().masked_fill(~valid, -1.0)
    order = key.argsort(dim=-1, descending=True)
    errors_sorted, gt_sorted = errors.gather(-1, order), gt.gather(-1, order)
    if valid is not None:
        valid_sorted = valid.gather(-1, order)
        errors_sorted = errors_sorted * valid_sorted
        gt_sorted = gt_sorted * valid_sorted
    return (errors_sorted * _lovasz_gradient(gt_sorted)).sum(-1)


def _reduce_rows(loss: Tensor, reduction: str, per_image: bool) -> Tensor:
    if reduction == "none":
        return loss if per_image else loss[0]
    return loss.sum() if reduction == "sum" else loss.mean()


def lovasz_hinge_loss(
    logits: Tensor,
    target: Tensor,
    *,
    per_image: bool = False,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Lovasz hinge loss for binary segmentation.

    Errors are hinge margins :math:`\max(0, 1 - x\,s)` with signs :math:`s = 2t - 1`; the loss is their Lovasz
    extension of the foreground Jaccard loss. Equal to ``lovasz_hinge`` of the authors' code. An image (or
    batch) without foreground is scored by its largest margin; one with every pixel ignored, or an empty input
    (``N = 0``), scores 0 with a zero gradient.

    Args:
        logits: one logit per pixel, or two logits ``(background, foreground)`` on dim 1.
        target: binary ``{0, 1}`` of the logits' shape (one logit) or ``(N, *)`` indices (two logits).
        per_image: one loss per image, averaged (True), or one over the whole batch (False).
        ignore_index: target value left out (e.g. 255).
        reduction: ``"none"`` (``(N,)`` per image, or 0-dim) | ``"mean"`` | ``"sum"`` over images.

    Shape:
        - logits: ``(N, *)`` or ``(N, 1, *)`` or ``(N, 2, *)``; target as described above.
        - output: scalar, or ``(N,)`` for ``per_image`` with ``reduction="none"``.

    Example:
        >>> logits = torch.randn(2, 1, 16, 16, requires_grad=True)
        >>> lovasz_hinge_loss(logits, (torch.rand(2, 1, 16, 16) < 0.2).float()).backward()
    """
    fn = "lovasz_hinge_loss"
    check_reduction(fn, reduction)
    x, t = binary_targets(fn, logits, target, ignore_index)
    if x.numel() == 0:
        return empty_loss(x, (x.shape[0],) if per_image and reduction == "none" else ())
    cdtype = compute_dtype(x.dtype)
    rows = x.shape[0] if per_image else 1
    x, t = x.reshape(rows, -1).to(cdtype), t.reshape(rows, -1)
    valid = None if ignore_index is None else t != ignore_index
    gt = t.to(cdtype) if valid is None else t.to(cdtype).masked_fill(~valid, 0)
    errors = torch.relu(1 - x * (2 * gt - 1))
    return _reduce_rows(_lovasz_rows(errors, gt, valid), reduction, per_image)


def lovasz_softmax_loss(
    logits: Tensor,
    target: Tensor,
    *,
    classes: str = "present",
    per_image: bool = False,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Lovasz-softmax loss for multi-class segmentation.

    Per class :math:`c`, errors :math:`|[t = c] - p_c|` with :math:`p = \mathrm{softmax}(z)`; the loss is the
    Lovasz extension of the class's Jaccard loss, averaged over classes. Equal to ``lovasz_softmax`` of the
    authors' code. With ``classes="present"`` only classes present in the (non-ignored) target of the image
    (or batch) are averaged; an image with none (all ignored) scores 0, and so does an empty input (``N = 0``).

    Args:
        logits: unnormalised scores.
        target: class indices.
        classes: ``"present"`` | ``"all"``.
        per_image: one loss per image, averaged (True), or one over the whole batch (False).
        ignore_index: target value left out (e.g. 255).
        reduction: ``"none"`` (``(N,)`` per image, or 0-dim) | ``"mean"`` | ``"sum"`` over images.

    Shape:
        - logits: ``(N, C, d1, ..., dK)`` with ``C >= 2``; target: ``(N, d1, ..., dK)`` integer.
        - output: scalar, or ``(N,)`` for ``per_image`` with ``reduction="none"``.

    Example:
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> lovasz_softmax_loss(logits, torch.randint(0, 3, (2, 16, 16))).backward()
    """
    fn = "lovasz_softmax_loss"
    check_logits(fn, logits, min_dim=2)
    check_reduction(fn, reduction)
    check_choice(fn, "classes", classes, CLASS_SETS)
    num_classes = logits.shape[1]
    if num_classes < 2:
        fail(fn, "logits", "of at least 2 channels (dim 1)", logits,
             "for one-logit binary outputs use lovasz_hinge_loss")
    check_index_target(fn, logits, target, ignore_index, num_classes=num_classes,
                       hint_float="lovasz_softmax_loss takes class indices; for binary masks use lovasz_hinge_loss")
    if logits.numel() == 0:
        return empty_loss(logits, (logits.shape[0],) if per_image and reduction == "none" else ())
    n = logits.shape[0]
    rows = n if per_image else 1
    probabilities = torch.softmax(logits.to(compute_dtype(logits.dtype)), dim=1)
    p = probabilities.reshape(n, num_classes, -1).transpose(0, 1).reshape(num_classes, rows, -1).transpose(0, 1)
    t = target.reshape(rows, 1, -1)
    valid = None if ignore_index is None else (t != ignore_index).expand(p.shape)
    gt = (t == torch.arange(num_classes, device=t.device).view(1, -1, 1)).to(p.dtype)
    if valid is not None:
        gt = gt.masked_fill(~valid, 0)
    errors = (gt - p).abs()
    flat_valid = None if valid is None else valid.reshape(rows * num_classes, -1)
    per_class = _lovasz_rows(errors.reshape(rows * num_classes, -1), gt.reshape(rows * num_classes, -1),
                             flat_valid).view(rows, num_classes)
    if classes == "present":
        present = (gt.sum(-1) > 0).to(per_class.dtype)
        loss = (per_class * present).sum(-1) / present.sum(-1).clamp(min=1)
    else:
        loss = per_class.mean(-1)
    return _reduce_rows(loss, reduction, per_image)
