"""Topology loss modules: clDice, Skeleton Recall, boundary loss (formulas in
:mod:`seesaw_losses.functional.topology`)."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from torch import Tensor, nn

from ..functional._validation import check_class_weight
from ..functional.topology import (
    DEFAULT_SKELETON_ITERATIONS, _boundary_loss, _check_options, _cldice_loss, _skeleton_recall_loss, boundary_loss,
    cldice_loss, skeleton_recall_loss, smoothing,
)
from ..registry import Hyperparameter, LossEntry, register

_SHAPE_DOC = """
    Shape:
        - logits: ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (or 1D ``(N, C, L)``); target: the logits' shape
          (sigmoid) or ``(N, *)`` class indices (softmax); either with ``activation=None``.
        - output: scalar; for ``reduction="none"`` ``(N, C')`` (per image) or ``(C',)``.
"""


class _TopologyLoss(nn.Module):
    """Options validated at construction, ``class_weight`` a buffer, one call into the function."""

    class_weight: Optional[Tensor]

    def __init__(self, fn: str, *, class_weight: Optional[Union[Tensor, Sequence[float]]], **options: Any) -> None:
        super().__init__()
        _check_options(fn, activation=options["activation"], smooth_nr=options.get("smooth_nr", 0.0),
                       smooth_dr=options.get("smooth_dr", 0.0), reduction=options["reduction"],
                       iterations=options.get("iterations"), radius=options.get("radius"))
        if class_weight is not None:
            class_weight = check_class_weight(fn, class_weight, len(class_weight), arg="class_weight")
        self.register_buffer("class_weight", class_weight)
        self.options = options

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class ClDiceLoss(_TopologyLoss):
    __doc__ = r"""clDice loss (Shit et al., CVPR 2021); see :func:`seesaw_losses.functional.cldice_loss`.

    Args:
        iterations: soft-skeleton erosion steps.
        smooth_nr: added to the ratios' numerators.
        smooth_dr: added to the ratios' denominators.
        activation: ``"sigmoid"`` | ``"softmax"`` | ``None``.
        per_image: per-image scores.
        include_background: score channel 0.
        class_weight: per-class weights ``(C,)`` (buffer).
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        smooth: deprecated, sets ``smooth_nr`` and ``smooth_dr`` (removed in the next release).
""" + _SHAPE_DOC + r"""
    Examples:
        >>> criterion = ClDiceLoss(activation="softmax", include_background=False)
        >>> criterion(torch.randn(2, 3, 16, 16, requires_grad=True), torch.randint(0, 3, (2, 16, 16))).backward()
"""

    def __init__(self, *, iterations: int = 3, smooth_nr: float = 1.0, smooth_dr: float = 1.0,
                 activation: Optional[str] = "sigmoid", per_image: bool = False, include_background: bool = True,
                 class_weight: Optional[Union[Tensor, Sequence[float]]] = None, ignore_index: Optional[int] = None,
                 reduction: str = "mean", smooth: Optional[float] = None) -> None:
        smooth_nr, smooth_dr = smoothing("ClDiceLoss", smooth, smooth_nr, smooth_dr)
        super().__init__("ClDiceLoss", iterations=iterations, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                         activation=activation, per_image=per_image, include_background=include_background,
                         class_weight=class_weight, ignore_index=ignore_index, reduction=reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return _cldice_loss("ClDiceLoss.forward", logits, target, class_weight=self.class_weight, **self.options)


class SkeletonRecallLoss(_TopologyLoss):
    __doc__ = r"""Skeleton Recall loss (Kirchhoff et al., ECCV 2024); see
    :func:`seesaw_losses.functional.skeleton_recall_loss`. ``forward(logits, target, skeleton=None)`` takes the
    precomputed tubed skeleton (:func:`seesaw_losses.transforms.tubed_skeleton`); without it the skeleton is
    computed from the target in torch. The options not listed here are those of :class:`ClDiceLoss`.

    Args:
        radius: tube radius of the computed skeleton.
        iterations: erosion steps of the computed skeleton.
        smooth_nr: added to the recall's numerator.
        smooth_dr: added to the recall's denominator.
""" + _SHAPE_DOC

    def __init__(self, *, radius: int = 2, iterations: int = DEFAULT_SKELETON_ITERATIONS, smooth_nr: float = 1.0,
                 smooth_dr: float = 1.0, activation: Optional[str] = "sigmoid", per_image: bool = False,
                 include_background: bool = True, class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
                 ignore_index: Optional[int] = None, reduction: str = "mean", smooth: Optional[float] = None) -> None:
        smooth_nr, smooth_dr = smoothing("SkeletonRecallLoss", smooth, smooth_nr, smooth_dr)
        super().__init__("SkeletonRecallLoss", radius=radius, iterations=iterations, smooth_nr=smooth_nr,
                         smooth_dr=smooth_dr, activation=activation, per_image=per_image,
                         include_background=include_background, class_weight=class_weight,
                         ignore_index=ignore_index, reduction=reduction)

    def forward(self, logits: Tensor, target: Tensor, skeleton: Optional[Tensor] = None) -> Tensor:
        return _skeleton_recall_loss("SkeletonRecallLoss.forward", logits, target, skeleton=skeleton,
                                     class_weight=self.class_weight, **self.options)


class BoundaryLoss(_TopologyLoss):
    __doc__ = r"""Boundary loss (Kervadec et al., MIDL 2019); see :func:`seesaw_losses.functional.boundary_loss`.
    ``forward(logits, target, distance_map=None)`` takes the precomputed signed distance maps
    (:func:`seesaw_losses.transforms.signed_distance_map`); without them they are computed with SciPy on the CPU.
    ``activation``, ``include_background``, ``class_weight``, ``ignore_index`` and ``reduction`` are as in
    :class:`ClDiceLoss`.
""" + _SHAPE_DOC

    def __init__(self, *, activation: Optional[str] = "sigmoid", include_background: bool = True,
                 class_weight: Optional[Union[Tensor, Sequence[float]]] = None, ignore_index: Optional[int] = None,
                 reduction: str = "mean") -> None:
        super().__init__("BoundaryLoss", activation=activation, include_background=include_background,
                         class_weight=class_weight, ignore_index=ignore_index, reduction=reduction)

    def forward(self, logits: Tensor, target: Tensor, distance_map: Optional[Tensor] = None) -> Tensor:
        return _boundary_loss("BoundaryLoss.forward", logits, target, distance_map=distance_map,
                              class_weight=self.class_weight, **self.options)


_TOPOLOGY = dict(tasks=("binary", "multi-class"), target="option", region=True)

register(LossEntry(
    name="cldice", function=cldice_loss, module=ClDiceLoss, **_TOPOLOGY,
    summary="clDice: harmonic mean of soft-skeleton precision and sensitivity, for connected thin structures",
    reference="Shit et al., clDice, CVPR 2021", defaults={"iterations": 3, "smooth_nr": 1.0, "smooth_dr": 1.0},
    search_space={"iterations": Hyperparameter(1, 10, integer=True)}))
register(LossEntry(
    name="skeleton_recall", function=skeleton_recall_loss, module=SkeletonRecallLoss, **_TOPOLOGY,
    summary="Skeleton Recall: soft recall of the target's tubed skeleton (precomputed or computed in torch)",
    reference="Kirchhoff et al., Skeleton Recall Loss, ECCV 2024", defaults={"radius": 2},
    search_space={"radius": Hyperparameter(0, 4, integer=True)}))
register(LossEntry(
    name="boundary", function=boundary_loss, module=BoundaryLoss, **_TOPOLOGY,
    summary="boundary loss: probabilities weighted by the target's signed distance map (negative inside)",
    reference="Kervadec et al., Boundary loss for highly unbalanced segmentation, MIDL 2019"))
