r"""Topology-aware losses for thin structures (vessels, cracks, outlines): clDice, Skeleton Recall, boundary loss.

All three score each class channel of ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (or 1D ``(N, C, L)``) inputs,
with per-class probabilities :math:`p` from ``activation="sigmoid"`` (float targets of the logits' shape),
``"softmax"`` (class-index targets, one-hot on the fly) or ``None`` (the inputs are already probabilities; a
target of their shape or class indices), as the overlap losses do (:mod:`seesaw_losses.functional._activation`).
With ``"softmax"`` the papers score the foreground classes only: pass ``include_background=False``.

- **clDice** (Shit et al., CVPR 2021): with :math:`S(\cdot)` the soft skeleton (:func:`soft_skeleton`),
  topology precision :math:`T_{prec} = (\sum S(p)\, t + s_{nr}) / (\sum S(p) + s_{dr})` and sensitivity
  :math:`T_{sens} = (\sum S(t)\, p + s_{nr}) / (\sum S(t) + s_{dr})`; the loss is
  :math:`1 - 2 T_{prec} T_{sens} / (T_{prec} + T_{sens})` per class.
- **Skeleton Recall** (Kirchhoff et al., ECCV 2024): :math:`1 - (\sum p\, k + s_{nr}) / (\sum k + s_{dr})` per
  class, with
  :math:`k` the target's *tubed skeleton* (its skeleton dilated to a tube and clipped to the target), which
  carries no gradient.
- **Boundary loss** (Kervadec et al., MIDL 2019): :math:`\frac{1}{|\Omega|} \sum_\Omega p\, \phi`, with
  :math:`\phi` the target's signed distance map (negative inside, positive outside; see
  :func:`seesaw_losses.transforms.signed_distance_map`). Its minimum is negative.

The skeletons and distance maps of the target are best computed once per sample in the data pipeline
(:mod:`seesaw_losses.transforms`, CPU, in the DataLoader's workers) and passed as ``skeleton=`` /
``distance_map=``. Skeleton Recall and the boundary loss are then one product and sum (Skeleton Recall through
Dice's fused sums); clDice takes about 30 passes over the input per skeleton iteration. All compile with
``torch.compile(fullgraph=True)``, the boundary loss only with ``distance_map=`` given (the SciPy transform it
runs without one breaks the graph).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._fused import _use_plain_formula, compute_dtype
from ._validation import (
    check_class_weight, check_int, check_number, check_reduction, fail, should_check_values,
    value_range,
)
from ._activation import check_activation, index_form, probabilities
from ._reduction import reduce_rows
from ._shapes import flatten_from
from .overlap import _block, _ratio, check_overlap_tensors

ClassWeight = Optional[Union[Tensor, Sequence[float]]]

DEFAULT_SKELETON_ITERATIONS = 10
"""Erosion steps of the skeleton :func:`skeleton_recall_loss` computes when none is passed: enough for
structures up to about 20 pixels wide."""


# ----------------------------------------------------------------------------------------------------------
# Soft morphology
# ----------------------------------------------------------------------------------------------------------


def _shifted(target: Tensor, source: Tensor, dim: int, shift: int):
    """The overlapping parts of ``target[i]`` and ``source[i + shift]`` along ``dim`` (``shift`` is -1 or 1)."""
    n = target.shape[dim]
    if shift > 0:
        return target.narrow(dim, 0, n - 1), source.narrow(dim, 1, n - 1)
    return target.narrow(dim, 1, n - 1), source.narrow(dim, 0, n - 1)


class _Extremum(torch.autograd.Function):
    """The maximum (or minimum) of each element and its neighbours at ``shifts`` ((dim, -1 | 1) pairs); outside
    the tensor nothing competes. Backward sends each output's gradient to the element that won, recorded as one
    int8 code per element (max pooling keeps int64 indices: about four times the memory of a soft skeleton, and
    more time on the CPU)."""

    @staticmethod
    def forward(ctx, x: Tensor, shifts, largest: bool):
        pick = torch.maximum if largest else torch.minimum
        out = x.clone()
        for dim, shift in shifts:
            region, neighbour = _shifted(out, x, dim, shift)
            pick(region, neighbour, out=region)
        ctx.shifts = shifts
        if ctx.needs_input_grad[0]:
            # the winner's code: k for the neighbour at shifts[k - 1], 0 for the element itself; ties go to the
            # element itself, then to the last neighbour that equals the extremum
            code = torch.empty(x.shape, dtype=torch.int8, device=x.device)
            for k, (dim, shift) in enumerate(shifts, start=1):
                region, neighbour = _shifted(out, x, dim, shift)
                code_region, _ = _shifted(code, x, dim, shift)
                code_region.masked_fill_(neighbour == region, k)
            code.masked_fill_(x == out, 0)
            ctx.save_for_backward(code)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        (code,) = ctx.saved_tensors
        grad = torch.where(code == 0, grad_output, 0)
        for k, (dim, shift) in enumerate(ctx.shifts, start=1):
            code_region, _ = _shifted(code, code, dim, shift)
            grad_region, _ = _shifted(grad_output, grad_output, dim, shift)
            _, winner = _shifted(grad, grad, dim, shift)
            winner.add_(torch.where(code_region == k, grad_region, 0))
        return grad, None, None


def _extremum(x: Tensor, dims: Sequence[int], largest: bool) -> Tensor:
    """Max (min) over each element and its two neighbours along each of ``dims`` (a cross for several dims)."""
    if _use_plain_formula():
        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3]
        sign = 1 if largest else -1
        pooled = [pool(sign * x, [3 if axis == d else 1 for axis in range(2, x.dim())], 1,
                       [1 if axis == d else 0 for axis in range(2, x.dim())]) for d in dims]
        out = pooled[0]
        for other in pooled[1:]:
            out = torch.maximum(out, other)
        return sign * out
    return _Extremum.apply(x, tuple((d, s) for d in dims for s in (-1, 1)), largest)


def _erode(x: Tensor) -> Tensor:
    """Soft erosion: the minimum over the cross-shaped neighbourhood."""
    return _extremum(x, range(2, x.dim()), largest=False)


def _dilate_square(x: Tensor) -> Tensor:
    """Soft dilation: the maximum over the 3x3 (3x3x3) square, one axis at a time."""
    for d in range(2, x.dim()):
        x = _extremum(x, [d], largest=True)
    return x


def _dilate_cross(x: Tensor, steps: int) -> Tensor:
    """``steps`` dilations by the cross (a diamond of radius ``steps``)."""
    for _ in range(steps):
        x = _extremum(x, range(2, x.dim()), largest=True)
    return x


def _soft_skeleton(x: Tensor, iterations: int) -> Tensor:
    # Shit et al.'s loop; erode(x) serves both as the next image and inside the opening dilate(erode(x)).
    skeleton = None
    for _ in range(iterations + 1):
        eroded = _erode(x)
        delta = F.relu(x - _dilate_square(eroded))
        skeleton = delta if skeleton is None else skeleton + F.relu(delta - skeleton * delta)
        x = eroded
    assert skeleton is not None
    return skeleton


def _check_spatial(fn: str, arg: str, x: Tensor) -> None:
    if x.dim() not in (3, 4, 5):
        fail(fn, arg, "a tensor (N, C, L), (N, C, H, W) or (N, C, D, H, W)", x,
             "topology needs 1 to 3 spatial dimensions; add the channel dimension with unsqueeze(1)")


def soft_skeleton(probabilities: Tensor, *, iterations: int = 3) -> Tensor:
    r"""Soft skeleton (Shit et al., CVPR 2021) by iterated soft erosion and opening.

    .. math::
        S \leftarrow \mathrm{relu}(x - \mathrm{open}(x)), \text{ then, } k \text{ times: }
        x \leftarrow \mathrm{erode}(x), \ \delta = \mathrm{relu}(x - \mathrm{open}(x)), \
        S \leftarrow S + \mathrm{relu}(\delta - S\,\delta)

    with :math:`k` = ``iterations``. Erosion is the minimum over the cross (each pixel and its two neighbours
    along each axis), dilation the maximum over the 3x3 (3x3x3) square, the opening a dilation of the erosion;
    pixels outside the image never compete. Structures up to about ``2 * iterations + 1``
    pixels wide get a full centre line. On a binary mask the result is binary (a morphological skeleton). The
    same as MONAI's ``soft_skel``.

    Args:
        probabilities: values in ``[0, 1]``.
        iterations: erosion steps, ``>= 1``.

    Shape:
        - probabilities: ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (or 1D ``(N, C, L)``); output: the same.

    Examples:
        >>> line = torch.zeros(1, 1, 5, 9); line[0, 0, 2, 1:8] = 1
        >>> bool((soft_skeleton(line) == line).all())
        True
    """
    fn = "soft_skeleton"
    if not isinstance(probabilities, Tensor) or not probabilities.is_floating_point():
        fail(fn, "probabilities", "a floating-point torch.Tensor", probabilities if isinstance(probabilities, Tensor)
             else type(probabilities).__name__, error=TypeError)
    _check_spatial(fn, "probabilities", probabilities)
    check_int(fn, "iterations", iterations, low=1)
    return _soft_skeleton(probabilities, iterations)


# ----------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------


def smoothing(fn: str, smooth: Optional[float], smooth_nr: float, smooth_dr: float) -> Tuple[float, float]:
    """``(smooth_nr, smooth_dr)``, both set by the deprecated ``smooth`` when it is given (with a
    ``DeprecationWarning``; ``smooth`` is removed in the next release)."""
    if smooth is None:
        return smooth_nr, smooth_dr
    warnings.warn(f"{fn}: smooth is deprecated and will be removed in the next release; pass "
                  f"smooth_nr={smooth!r}, smooth_dr={smooth!r} (the names of the overlap losses)",
                  DeprecationWarning, stacklevel=3)
    return smooth, smooth


def _check_options(fn: str, *, activation: Optional[str], reduction: str, smooth_nr: float = 0.0,
                   smooth_dr: float = 0.0, iterations: Optional[int] = None, radius: Optional[int] = None) -> None:
    """Options shared by the topology losses (functions and modules)."""
    check_activation(fn, activation)
    check_number(fn, "smooth_nr", smooth_nr, low=0)
    check_number(fn, "smooth_dr", smooth_dr, low=0)
    check_reduction(fn, reduction)
    if iterations is not None:
        check_int(fn, "iterations", iterations, low=1)
    if radius is not None:
        check_int(fn, "radius", radius, low=0)


def _probabilities(fn: str, logits: Tensor, target: Tensor, activation: Optional[str], ignore_index: Optional[int],
                   include_background: bool):
    """Validated per-class probabilities and target ``(N, C', *)`` (ignored elements 0 in both) and the valid
    mask (or None), where ``C'`` drops channel 0 without the background."""
    check_overlap_tensors(fn, logits, target, activation, ignore_index, include_background)
    _check_spatial(fn, "logits", logits)
    p, t, valid = _block(logits, target, activation, index_form(activation, logits, target), ignore_index,
                         compute_dtype(logits.dtype))
    if valid is not None:
        p = p * valid
    if not include_background:
        p, t = p[:, 1:], t[:, 1:]
        if valid is not None and valid.shape[1] > 1:
            valid = valid[:, 1:]
    return p, t, valid


def _class_weight(fn: str, class_weight, logits: Tensor, include_background: bool, like: Tensor):
    weight = check_class_weight(fn, class_weight, logits.shape[1], arg="class_weight")
    if weight is None:
        return None
    weight = weight.to(device=like.device, dtype=like.dtype)
    return weight if include_background else weight[1:]


def _sum(x: Tensor, per_image: bool) -> Tensor:
    """Sum over the spatial dimensions (per image and class), and over the batch unless ``per_image``."""
    total = x.flatten(2).sum(-1)
    return total if per_image else total.sum(0, keepdim=True)


def _check_map(fn: str, arg: str, value: object, logits: Tensor, hint: str) -> Tensor:
    if not isinstance(value, Tensor):
        fail(fn, arg, "a torch.Tensor or None", type(value).__name__, error=TypeError)
    if tuple(value.shape) != tuple(logits.shape):
        fail(fn, arg, f"of the logits' shape {tuple(logits.shape)}", value, hint)
    if value.device != logits.device:
        fail(fn, arg, f"on the logits' device {logits.device}", f"device {value.device}")
    return value


# ----------------------------------------------------------------------------------------------------------
# The losses
# ----------------------------------------------------------------------------------------------------------


def cldice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    iterations: int = 3,
    activation: Optional[str] = "sigmoid",
    per_image: bool = False,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    include_background: bool = True,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
    smooth: Optional[float] = None,
) -> Tensor:
    r"""clDice loss (Shit et al., CVPR 2021): one minus the harmonic mean of topology precision and sensitivity.

    See :mod:`seesaw_losses.functional.topology` for the formula. The paper's
    :math:`(1 - \alpha)\,\mathrm{Dice} + \alpha\,\mathrm{clDice}` is ``build_loss("0.5*dice+0.5*cldice")``.
    A perfect prediction (probabilities equal to a binary target) scores 0; every class channel counts,
    one-channel inputs included. MONAI's ``SoftclDiceLoss`` pools the sums over every channel of an image
    (``per_image=True`` here, one number per image) and adds its ``smooth`` to the harmonic mean's denominator; with
    one channel and that term near 0 the two agree. Ignored elements (``ignore_index``) are 0 in the
    probabilities and the target before the skeletons are taken.

    Args:
        logits: raw scores (probabilities with ``activation=None``), one channel per class.
        target: sigmoid: the logits' shape, values in ``[0, 1]``; softmax: class indices; None: either.
        iterations: soft-skeleton erosion steps, ``>= 1`` (structures up to ``2 * iterations + 1`` wide).
        smooth_nr: added to the numerators of both ratios, ``>= 0``.
        smooth_dr: added to the denominators of both ratios, ``>= 0``.
        activation: ``"sigmoid"`` | ``"softmax"`` | ``None`` (inputs are probabilities).
        per_image: one score per image and class (True) or per class over the batch (False).
        include_background: score channel 0 (with softmax the paper leaves it out).
        class_weight: per-class weights ``(C,)``; "mean" divides by their sum.
        ignore_index: target value left out.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        smooth: deprecated, sets ``smooth_nr`` and ``smooth_dr`` (removed in the next release).

    Shape:
        - logits: ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (or 1D ``(N, C, L)``); target: the logits' shape, or
          ``(N, *)`` indices.
        - output: scalar; for ``reduction="none"`` ``(N, C')`` with ``per_image`` else ``(C',)``.

    Examples:
        >>> logits = torch.randn(2, 1, 32, 32, requires_grad=True)
        >>> mask = torch.zeros(2, 1, 32, 32); mask[:, :, 16, 4:28] = 1
        >>> cldice_loss(logits, mask).backward()
    """
    fn = "cldice_loss"
    smooth_nr, smooth_dr = smoothing(fn, smooth, smooth_nr, smooth_dr)
    _check_options(fn, activation=activation, smooth_nr=smooth_nr, smooth_dr=smooth_dr, reduction=reduction,
                   iterations=iterations)
    return _cldice_loss(fn, logits, target, iterations=iterations, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                        activation=activation, per_image=per_image, include_background=include_background,
                        class_weight=class_weight, ignore_index=ignore_index, reduction=reduction)


def _cldice_loss(fn: str, logits: Tensor, target: Tensor, *, iterations: int, smooth_nr: float, smooth_dr: float,
                 activation: Optional[str], per_image: bool, include_background: bool, class_weight: ClassWeight,
                 ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`cldice_loss` on validated options; the tensors are checked here, named ``fn``."""
    p, t, _ = _probabilities(fn, logits, target, activation, ignore_index, include_background)
    weight = _class_weight(fn, class_weight, logits, include_background, p)
    skeleton_p, skeleton_t = _soft_skeleton(p, iterations), _soft_skeleton(t, iterations)
    precision = (_sum(skeleton_p * t, per_image) + smooth_nr) / (_sum(skeleton_p, per_image) + smooth_dr)
    sensitivity = (_sum(skeleton_t * p, per_image) + smooth_nr) / (_sum(skeleton_t, per_image) + smooth_dr)
    total = precision + sensitivity
    score = torch.where(total > 0, 2 * precision * sensitivity / torch.where(total > 0, total, 1), 0)
    return reduce_rows((1 - score).clamp(min=0), reduction, per_image, weight)


def tube(mask: Tensor, *, radius: int, iterations: int = DEFAULT_SKELETON_ITERATIONS) -> Tensor:
    """The tubed skeleton of binary masks in torch, on their device: the morphological skeleton
    (:func:`soft_skeleton` of the mask, ``iterations`` steps) dilated ``radius`` times by the cross and clipped
    to the mask. Thicker than scikit-image's thinning (:func:`seesaw_losses.transforms.tubed_skeleton`), and
    not always connected.

    Eagerly the loop runs on bool tensors (AND for the erosion, OR for the dilation: the soft skeleton's exact
    result on a binary mask, at a quarter of the memory traffic); under ``torch.compile`` on floats.

    Shape:
        - mask: ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (or 1D ``(N, C, L)``) in ``{0, 1}`` (bool or float);
          output: the same, of the mask's dtype.
    """
    if _use_plain_formula():
        m = mask.float() if mask.dtype == torch.bool else mask
        return (_dilate_cross(_soft_skeleton(m, iterations), radius) * m).to(mask.dtype)
    x = mask.bool()
    skeleton = torch.zeros_like(x)
    for _ in range(iterations + 1):
        eroded = _erode(x)
        skeleton |= x & ~_dilate_square(eroded)
        x = eroded
    return (_dilate_cross(skeleton, radius) & mask.bool()).to(mask.dtype)


class _SkeletonSums(torch.autograd.Function):
    """Per-image, per-class ``(sum sigmoid(x) k, sum k)`` for a bool skeleton ``k``, without a float copy of
    ``k``: forward turns ``sigmoid(x)`` in place into ``sigmoid(x) k`` and then into its derivative
    ``k p (1 - p)``, the only tensor kept for backward."""

    @staticmethod
    def forward(ctx, logits: Tensor, skeleton: Tensor):
        p = probabilities(flatten_from(logits, 2), "sigmoid", compute_dtype(logits.dtype))
        k = flatten_from(skeleton, 2)
        p.masked_fill_(~k, 0)
        hit, total = p.sum(-1), k.sum(-1, dtype=p.dtype)
        if ctx.needs_input_grad[0]:
            torch.addcmul(p, p, p, value=-1, out=p)
            ctx.save_for_backward(p)
        ctx.shape, ctx.input_dtype = logits.shape, logits.dtype
        ctx.mark_non_differentiable(total)
        return hit, total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hit: Tensor, _grad_total: Tensor):
        (derivative,) = ctx.saved_tensors
        return (derivative * grad_hit.unsqueeze(-1)).view(ctx.shape).to(ctx.input_dtype), None


def _skeleton_sums(logits: Tensor, skeleton: Tensor):
    if _use_plain_formula():
        k = skeleton.to(compute_dtype(logits.dtype))
        return _sum(torch.sigmoid(logits.to(k.dtype)) * k, True), _sum(k, True)
    return _SkeletonSums.apply(logits, skeleton.bool())


def skeleton_recall_loss(
    logits: Tensor,
    target: Tensor,
    *,
    skeleton: Optional[Tensor] = None,
    radius: int = 2,
    iterations: int = DEFAULT_SKELETON_ITERATIONS,
    activation: Optional[str] = "sigmoid",
    per_image: bool = False,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    include_background: bool = True,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
    smooth: Optional[float] = None,
) -> Tensor:
    r"""Skeleton Recall loss (Kirchhoff et al., ECCV 2024): one minus the soft recall of the tubed skeleton.

    .. math::
        1 - \frac{\sum p_c\, k_c + s_{nr}}{\sum k_c + s_{dr}}

    per class, with :math:`k_c` the tubed skeleton of class :math:`c` (no gradient). Pass ``skeleton`` from
    :func:`seesaw_losses.transforms.tubed_skeleton` (scikit-image's thinning, the paper's skeleton; run it in
    the data pipeline). Without it the loss computes one from the target in torch on the target's device
    (:func:`tube`: a morphological skeleton of ``iterations`` erosion steps, dilated ``radius`` times by the
    cross and clipped to the target) — thicker than the thinned one, so the recall it asks for is a little
    wider. The paper's own loss returns ``-recall`` and leaves out the background channel under softmax
    (``include_background=False`` here). The options not listed below are those of :func:`cldice_loss`.

    Args:
        logits: raw scores (probabilities with ``activation=None``).
        target: sigmoid: the logits' shape, values in ``[0, 1]``; softmax: class indices; None: either.
        skeleton: the tubed skeleton, binary (bool, integer or float 0/1), one channel per class (the logits'
            shape; channel 0 included, unused without the background); None computes it.
        radius: tube radius (cross dilations) of the computed skeleton, ``>= 0``; 2 is the paper's.
        iterations: erosion steps of the computed skeleton, ``>= 1``.
        smooth_nr: added to the numerator, ``>= 0``.
        smooth_dr: added to the denominator, ``>= 0``.

    Shape:
        - logits, skeleton: ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (or 1D ``(N, C, L)``); target: the logits'
          shape, or ``(N, *)``.
        - output: scalar; for ``reduction="none"`` ``(N, C')`` with ``per_image`` else ``(C',)``.

    Examples:
        >>> from seesaw_losses.transforms import tubed_skeleton
        >>> mask = torch.zeros(2, 1, 32, 32); mask[:, :, 14:18, 4:28] = 1
        >>> logits = torch.randn(2, 1, 32, 32, requires_grad=True)
        >>> skeleton_recall_loss(logits, mask, skeleton=tubed_skeleton(mask, spatial_dims=2)).backward()
    """
    fn = "skeleton_recall_loss"
    smooth_nr, smooth_dr = smoothing(fn, smooth, smooth_nr, smooth_dr)
    _check_options(fn, activation=activation, smooth_nr=smooth_nr, smooth_dr=smooth_dr, reduction=reduction,
                   iterations=iterations, radius=radius)
    return _skeleton_recall_loss(fn, logits, target, skeleton=skeleton, radius=radius, iterations=iterations,
                                 smooth_nr=smooth_nr, smooth_dr=smooth_dr, activation=activation,
                                 per_image=per_image, include_background=include_background,
                                 class_weight=class_weight, ignore_index=ignore_index, reduction=reduction)


def _skeleton_recall_loss(fn: str, logits: Tensor, target: Tensor, *, skeleton: Optional[Tensor], radius: int,
                          iterations: int, smooth_nr: float, smooth_dr: float, activation: Optional[str],
                          per_image: bool, include_background: bool, class_weight: ClassWeight,
                          ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`skeleton_recall_loss` on validated options; the tensors are checked here, named ``fn``."""
    if skeleton is not None:
        skeleton = _check_map(fn, "skeleton", skeleton, logits,
                              "one binary channel per class; for class-index masks use "
                              "tubed_skeleton(mask, num_classes=C)")
        if skeleton.is_complex():
            fail(fn, "skeleton", "a real tensor", skeleton, error=TypeError)
        if skeleton.numel() and should_check_values(skeleton):
            lo, hi = value_range(skeleton, None)
            if lo < 0 or hi > 1 or (skeleton.is_floating_point() and bool(((skeleton != 0) & (skeleton != 1)).any())):
                fail(fn, "skeleton", "binary (values 0 and 1)", f"values in [{lo:g}, {hi:g}]",
                     "pass the tubed skeleton mask (seesaw_losses.transforms.tubed_skeleton), not probabilities "
                     "or class labels")
    if activation == "sigmoid" and ignore_index is None:
        check_overlap_tensors(fn, logits, target, activation, None, include_background)
        _check_spatial(fn, "logits", logits)
        k = tube(target >= 0.5, radius=radius, iterations=iterations) if skeleton is None else skeleton
        hit, total = _skeleton_sums(logits if include_background else logits[:, 1:],
                                    k if include_background else k[:, 1:])
    else:
        p, t, valid = _probabilities(fn, logits, target, activation, ignore_index, include_background)
        if skeleton is None:
            k = tube((t >= 0.5).to(p.dtype), radius=radius, iterations=iterations)
        else:
            k = skeleton.to(p.dtype) if include_background else skeleton[:, 1:].to(p.dtype)
            k = k if valid is None else k * valid
        hit, total = _sum(p * k, True), _sum(k, True)
    if not per_image:
        hit, total = hit.sum(0, keepdim=True), total.sum(0, keepdim=True)
    weight = _class_weight(fn, class_weight, logits, include_background, hit)
    recall = _ratio(hit + smooth_nr, total + smooth_dr)
    return reduce_rows((1 - recall).clamp(min=0), reduction, per_image, weight)


def boundary_loss(
    logits: Tensor,
    target: Tensor,
    *,
    distance_map: Optional[Tensor] = None,
    activation: Optional[str] = "sigmoid",
    include_background: bool = True,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Boundary loss (Kervadec et al., MIDL 2019 / MedIA 2021): the mean of :math:`p\,\phi` over the pixels.

    .. math::
        \frac{1}{|\Omega|} \sum_{x \in \Omega} p_c(x)\, \phi_c(x)

    per image and class, :math:`\phi_c` the target's signed distance map (negative inside, 0 on the boundary's
    inner pixels, positive outside; all 0 for an empty or full mask), :math:`\Omega` the pixels that are not
    ignored. Pass ``distance_map`` from :func:`seesaw_losses.transforms.signed_distance_map` (in the data
    pipeline); without it the loss computes one from the target (thresholded at 0.5) with SciPy's Euclidean
    distance transform on the CPU (a device-to-host copy and a sync, and a graph break under ``torch.compile``;
    needs the ``cli`` extra). The loss is
    negative at its minimum, so it is used beside a region loss with a weight that grows during training
    (``build_loss("dice+0.01*boundary")``, raising the factor each epoch); the paper's code scores the
    foreground classes only (``include_background=False`` with softmax). ``activation``,
    ``include_background``, ``class_weight``, ``ignore_index`` and ``reduction`` are as in :func:`cldice_loss`.

    Args:
        logits: raw scores (probabilities with ``activation=None``).
        target: sigmoid: the logits' shape, values in ``[0, 1]``; softmax: class indices; None: either.
        distance_map: signed distance maps, one channel per class (the logits' shape, channel 0 included);
            None computes them.

    Shape:
        - logits, distance_map: ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (or 1D ``(N, C, L)``); target: the
          logits' shape, or ``(N, *)``.
        - output: scalar; for ``reduction="none"`` ``(N, C')``.

    Examples:
        >>> from seesaw_losses.transforms import signed_distance_map
        >>> mask = torch.zeros(2, 1, 32, 32); mask[:, :, 8:24, 8:24] = 1
        >>> logits = torch.randn(2, 1, 32, 32, requires_grad=True)
        >>> boundary_loss(logits, mask, distance_map=signed_distance_map(mask, spatial_dims=2)).backward()
    """
    fn = "boundary_loss"
    _check_options(fn, activation=activation, reduction=reduction)
    return _boundary_loss(fn, logits, target, distance_map=distance_map, activation=activation,
                          include_background=include_background, class_weight=class_weight,
                          ignore_index=ignore_index, reduction=reduction)


def _boundary_loss(fn: str, logits: Tensor, target: Tensor, *, distance_map: Optional[Tensor],
                   activation: Optional[str], include_background: bool, class_weight: ClassWeight,
                   ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`boundary_loss` on validated options; the tensors are checked here, named ``fn``."""
    if distance_map is not None:
        distance_map = _check_map(fn, "distance_map", distance_map, logits,
                                  "one signed distance map per class channel; for class-index masks use "
                                  "signed_distance_map(mask, num_classes=C)")
        if not distance_map.is_floating_point():
            fail(fn, "distance_map", "a floating-point tensor", distance_map, error=TypeError)
    p, t, valid = _probabilities(fn, logits, target, activation, ignore_index, include_background)
    weight = _class_weight(fn, class_weight, logits, include_background, p)
    if distance_map is None:
        from ..transforms import signed_distance_map

        mask = (t >= 0.5).cpu()
        phi = signed_distance_map(mask, spatial_dims=mask.dim() - 2).to(device=p.device, dtype=p.dtype)
    else:
        phi = distance_map.to(p.dtype)
        if not include_background:
            phi = phi[:, 1:]
    total = (p * phi).flatten(2).sum(-1)
    if valid is None:
        loss = total / max(math.prod(p.shape[2:]), 1)
    else:
        count = valid.flatten(2).sum(-1).to(p.dtype)
        loss = total / torch.where(count > 0, count, 1)
    return reduce_rows(loss, reduction, True, weight)
