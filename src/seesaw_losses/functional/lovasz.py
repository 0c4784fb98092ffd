r"""Lovasz losses (Berman et al., "The Lovasz-Softmax loss", CVPR 2018): convex surrogates of the Jaccard loss.

For a set of errors :math:`m` sorted in decreasing order and the matching ground truth, the loss is
:math:`\sum_i m_{(i)}\, g_i` where :math:`g` is the gradient of the Jaccard loss's Lovasz extension
(the increments of :math:`1 - |F \setminus \pi_{1..i}| / |F \cup \pi_{1..i}|`). Every row (image, class of an
image, or of the whole batch) is sorted in one batched integer sort, with no loop over rows; the increments come
from one cumulative sum and are, scattered back, the gradient with respect to the errors, which the forward
computes and the backward only scales. Ignored elements get zero error, which leaves every valid element's term
unchanged.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._fused import _FusedLoss, _use_plain_formula, compute_dtype
from ._reduction import reduce_rows
from ._shapes import empty_loss
from ._targets import valid_mask
from ._validation import check_choice, check_index_target, check_logits, check_reduction, fail
from .binary_seesaw import binary_targets

CLASS_SETS = ("present", "all")
_EXACT_COUNTS = 1 << 24
"""Rows longer than this count in float64 (float32 counts are exact up to 2^24)."""


def _lovasz_increments(errors: Tensor, gt: Tensor, shape) -> Tensor:
    """For each element of ``(R, P)`` rows of non-negative errors (their buffer is consumed) and boolean ground
    truth, the increment of the Jaccard loss's Lovasz extension at the element's place in its row's decreasing
    order of errors: the gradient of the row's loss with respect to that error, in a new tensor of ``shape``
    (``R * P`` elements: the logits' own shape, so that a backward can hand it over without a view).

    With :math:`b_i` the background among the first :math:`i` sorted elements and :math:`F` the foreground,
    the union is :math:`U_i = F + b_i`, the intersection left :math:`I_i = U_i - i`, so :math:`1 - J_i =
    1 - i / U_i`; the increment is the difference of consecutive :math:`J_i` (:math:`J_0 = 0`).

    One sort, of integer keys: an error's bit pattern (ordered as the non-negative float it encodes) shifted
    left, the ground truth in the freed bit, all inverted so that an ascending sort gives the decreasing order
    (a one-row integer sort is ATen's radix sort). The sorted keys carry the sorted ground truth, so the only
    gather is the scatter of the increments back. Elements of zero error (ignored ones included, with a false
    ground truth) only shift the increments of the elements after them, whose errors are zero too.
    """
    rows, length = errors.shape
    int_dtype = torch.int64 if errors.dtype == torch.float64 else torch.int32
    dtype = errors.dtype if length <= _EXACT_COUNTS else torch.float64
    foreground = gt.sum(-1, keepdim=True, dtype=dtype)
    keys = errors.view(int_dtype).clamp_min_(0)           # -0.0 counts as 0
    keys.bitwise_left_shift_(1).bitwise_or_(gt).bitwise_xor_(torch.iinfo(int_dtype).max)
    order = torch.empty(keys.shape, dtype=torch.int64, device=keys.device)
    flat = rows == 1     # sorted as a 1-D tensor, the radix sort's case
    torch.sort(keys.view(-1) if flat else keys, out=(keys.view(-1), order.view(-1)) if flat else (keys, order))
    # the buffer that ends up holding the result, allocated in its final shape
    result = torch.empty(shape if dtype == errors.dtype else keys.shape, dtype=dtype, device=keys.device)
    union = result.view(rows, length).copy_(keys.bitwise_and_(1))  # background
    del keys
    union.cumsum_(-1).add_(foreground)
    ratio = torch.div(torch.arange(1, length + 1, dtype=dtype, device=union.device), union, out=union)  # J_i
    increments = torch.empty_like(ratio)
    increments[:, :1] = ratio[:, :1]
    torch.sub(ratio[:, 1:], ratio[:, :-1], out=increments[:, 1:])
    ratio.scatter_(-1, order, increments)
    return result if dtype == errors.dtype else result.view(shape).to(errors.dtype)


def _plain_increments(errors: Tensor, gt: Tensor) -> Tensor:
    """What :func:`_lovasz_increments` computes, as the plain formula (a float sort, no in-place or ``out=``
    operations): the form ``torch.compile`` traces."""
    dtype = errors.dtype if errors.shape[1] <= _EXACT_COUNTS else torch.float64
    order = errors.argsort(dim=-1, descending=True)
    union = (~gt).gather(-1, order).to(dtype).cumsum(-1) + gt.sum(-1, keepdim=True, dtype=dtype)
    jaccard = torch.arange(1, errors.shape[1] + 1, dtype=dtype, device=errors.device) / union
    increments = torch.diff(jaccard, dim=-1, prepend=jaccard.new_zeros(jaccard.shape[0], 1))
    return torch.zeros_like(jaccard).scatter(-1, order, increments).to(errors.dtype)


def _lovasz_pass(rows: int, ground_truth, errors_of):
    """``run_pass`` for :class:`_FusedLoss`: per-row Lovasz losses of inputs read as ``(rows, P)``, and their
    gradient in the inputs' own shape (not a view: autograd then adds another loss's gradient in place).

    ``ground_truth(target)`` gives the ``(R, P)`` boolean ground truth (False where ignored) and the valid mask
    (or None); ``errors_of(inputs, gt)`` the errors, each of the form ``a + b (1 - 2 gt)`` with ``b`` the
    input, so that their derivative is ``1 - 2 gt`` wherever they are positive.
    """
    def run_pass(inputs: Tensor, target: Tensor, _weight: None, need_grad: bool):
        cdtype = compute_dtype(inputs.dtype)
        v = inputs.reshape(rows, -1).to(cdtype)
        gt, valid = ground_truth(target)

        def errors() -> Tensor:
            e = errors_of(v, gt)
            return e if valid is None else e.masked_fill_(~valid, 0)

        gradient = _lovasz_increments(errors(), gt, inputs.shape)
        increments = gradient.view(v.shape)
        e = errors()
        clipped = e <= 0 if need_grad else None
        # the products in the errors' buffer, then ATen's cascade sum: a row of a volume holds millions of terms,
        # which a float32 dot product (one running sum) would add up with errors of 1e-3
        loss = e.mul_(increments).sum(-1)
        if clipped is None:
            return loss, None
        increments.mul_(e.copy_(gt).mul_(-2).add_(1).masked_fill_(clipped, 0))   # times d(error)/d(input)
        return loss, gradient.to(inputs.dtype)
    return run_pass


def _lovasz_rows(inputs: Tensor, target: Tensor, rows: int, ground_truth, errors_of) -> Tensor:
    """Per-row Lovasz losses of inputs read as ``(rows, P)`` (``rows`` 1 or the inputs' first dimension) against
    the target ``ground_truth`` reads (see :func:`_lovasz_pass`): through :class:`_FusedLoss`, or as the plain
    formula under autograd while ``torch.compile`` traces (or inside ``plain_formula()``)."""
    if not _use_plain_formula():
        return _FusedLoss.apply(inputs, target, None, _lovasz_pass(rows, ground_truth, errors_of),
                                (rows,) + (1,) * (inputs.dim() - 1))
    inputs = inputs.reshape(rows, -1)
    gt, valid = ground_truth(target)
    errors = errors_of(inputs.to(compute_dtype(inputs.dtype)), gt)
    errors = errors if valid is None else errors.masked_fill(~valid, 0)
    return (errors * _plain_increments(errors.detach(), gt)).sum(-1)


def _hinge_form(ignore_index: Optional[int]):
    """``(ground_truth, errors_of)`` of the hinge: errors ``max(0, 1 - x s)`` with signs ``s = 2 gt - 1``."""
    def ground_truth(t: Tensor):
        valid = valid_mask(t, ignore_index)
        gt = t == 1
        return (gt if valid is None else gt.logical_and_(valid)), valid

    return ground_truth, lambda x, gt: torch.addcmul(x, x, gt, value=-2).add_(1).relu_()


def _class_masks(t: Tensor, num_classes: int, ignore_index: Optional[int]) -> Tensor:
    """``(R, C, P)`` booleans ``t == c`` of ``(R, P)`` class indices, False where ignored."""
    masks = t.unsqueeze(1) == torch.arange(num_classes, device=t.device).view(1, -1, 1)
    valid = valid_mask(t, ignore_index)
    return masks if valid is None else masks.logical_and_(valid.unsqueeze(1))


def _softmax_form(num_classes: int, ignore_index: Optional[int]):
    """``(ground_truth, errors_of)`` of Lovasz-softmax: errors ``|[t = c] - p_c|`` of ``(R * C, P)``
    probabilities against ``(R, P)`` class indices."""
    def ground_truth(t: Tensor):
        shape = (t.shape[0] * num_classes, t.shape[1])
        valid = valid_mask(t, ignore_index)
        if valid is not None:
            valid = valid.unsqueeze(1).expand(t.shape[0], num_classes, t.shape[1]).reshape(shape)
        return _class_masks(t, num_classes, ignore_index).view(shape), valid

    return ground_truth, lambda p, gt: torch.addcmul(p, p, gt, value=-2).add_(gt)


def _lovasz_hinge_unchecked(x: Tensor, t: Tensor, *, per_image: bool, ignore_index: Optional[int],
                            reduction: str) -> Tensor:
    """:func:`lovasz_hinge_loss` on validated arguments: one logit per pixel ``x`` and its target ``t`` (from
    :func:`~.binary_seesaw.binary_targets`)."""
    if x.numel() == 0:
        return empty_loss(x, (x.shape[0],) if per_image and reduction == "none" else ())
    rows = x.shape[0] if per_image else 1
    loss = _lovasz_rows(x, t.reshape(rows, -1), rows, *_hinge_form(ignore_index))
    return reduce_rows(loss, reduction, per_image)


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

    Examples:
        >>> logits = torch.randn(2, 1, 16, 16, requires_grad=True)
        >>> lovasz_hinge_loss(logits, (torch.rand(2, 1, 16, 16) < 0.2).float()).backward()
    """
    fn = "lovasz_hinge_loss"
    check_reduction(fn, reduction)
    x, t = binary_targets(fn, logits, target, ignore_index)
    return _lovasz_hinge_unchecked(x, t, per_image=per_image, ignore_index=ignore_index, reduction=reduction)


def check_lovasz_softmax_tensors(fn: str, logits: Tensor, target: Tensor, ignore_index: Optional[int]) -> None:
    check_logits(fn, logits, min_dim=2)
    if logits.shape[1] < 2:
        fail(fn, "logits", "of at least 2 channels (dim 1)", logits,
             "for one-logit binary outputs use lovasz_hinge_loss")
    check_index_target(fn, logits, target, ignore_index, num_classes=logits.shape[1],
                       hint_float="lovasz_softmax_loss takes class indices; for binary masks use lovasz_hinge_loss")


def _lovasz_softmax_unchecked(logits: Tensor, target: Tensor, *, classes: str, per_image: bool,
                              ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`lovasz_softmax_loss` on validated arguments."""
    if logits.numel() == 0:
        return empty_loss(logits, (logits.shape[0],) if per_image and reduction == "none" else ())
    n, num_classes = logits.shape[0], logits.shape[1]
    probabilities = torch.softmax(logits.to(compute_dtype(logits.dtype)), dim=1).reshape(n, num_classes, -1)
    if per_image:
        p, t = probabilities.reshape(n * num_classes, -1), target.reshape(n, -1)
    else:
        p, t = probabilities.transpose(0, 1).reshape(num_classes, -1), target.reshape(1, -1)
    rows = t.shape[0]
    per_class = _lovasz_rows(p, t, p.shape[0], *_softmax_form(num_classes, ignore_index)).view(rows, num_classes)
    if classes == "present":
        present = _class_masks(t, num_classes, ignore_index).any(-1).to(per_class.dtype)
        loss = (per_class * present).sum(-1) / present.sum(-1).clamp(min=1)
    else:
        loss = per_class.mean(-1)
    return reduce_rows(loss, reduction, per_image)


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

    Examples:
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> lovasz_softmax_loss(logits, torch.randint(0, 3, (2, 16, 16))).backward()
    """
    fn = "lovasz_softmax_loss"
    check_reduction(fn, reduction)
    check_choice(fn, "classes", classes, CLASS_SETS)
    check_lovasz_softmax_tensors(fn, logits, target, ignore_index)
    return _lovasz_softmax_unchecked(logits, target, classes=classes, per_image=per_image,
                                     ignore_index=ignore_index, reduction=reduction)
