"""Overlap loss modules: Dice, Tversky, Jaccard, focal Tversky, generalized Dice."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..functional._validation import check_class_weight, fail
from ..functional.overlap import (
    DEFAULT_SMOOTH, _generalized_dice_unchecked, _tversky_unchecked, check_generalized_dice_options,
    check_overlap_options, check_overlap_tensors, dice_loss, focal_tversky_loss, generalized_dice_loss,
    jaccard_loss, tversky_loss,
)
from ..registry import Hyperparameter, LossEntry, register

_SHAPE_DOC = """
    Shape:
        - logits: ``(N, C, d1, ..., dK)``; target: the logits' shape (sigmoid) or ``(N, d1, ..., dK)`` class
          indices (softmax).
        - output: scalar; for ``reduction="none"`` ``(N, C')`` with ``per_image`` else ``(C',)``.
"""


class _OverlapLoss(nn.Module):
    """Shared configuration of the Tversky-family modules: options validated at construction, ``class_weight`` a
    buffer; ``_fixed`` holds the options a subclass fixes (Dice: ``alpha = beta = 0.5``)."""

    class_weight: Optional[Tensor]
    _fixed: Dict[str, Any] = {}

    def __init__(self, *, activation: Optional[str], per_image: bool, smooth_nr: float, smooth_dr: float,
                 include_background: bool, class_weight: Optional[Union[Tensor, Sequence[float]]],
                 ignore_index: Optional[int], reduction: str, **options: Any) -> None:
        super().__init__()
        fn = type(self).__name__
        self.options = dict(activation=activation, per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                            include_background=include_background, ignore_index=ignore_index, reduction=reduction,
                            **options)
        formula = {**self.options, **self._fixed}
        check_overlap_options(fn, alpha=formula["alpha"], beta=formula["beta"], smooth_nr=smooth_nr,
                              smooth_dr=smooth_dr, reduction=reduction, activation=activation,
                              gamma=formula.get("gamma", 1.0), log_loss=formula.get("log_loss", False))
        if class_weight is not None:
            class_weight = check_class_weight(fn, class_weight, torch.as_tensor(class_weight).numel())
        self.register_buffer("class_weight", class_weight)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        fn = f"{type(self).__name__}.forward"
        check_overlap_tensors(fn, logits, target, self.options["activation"], self.options["ignore_index"],
                              self.options["include_background"])
        if self.class_weight is not None and self.class_weight.numel() != logits.shape[1]:
            fail(fn, "logits", f"of {self.class_weight.numel()} channels (dim 1) to match class_weight", logits)
        return _tversky_unchecked(logits, target, class_weight=self.class_weight, **self.options, **self._fixed)


class TverskyLoss(_OverlapLoss):
    __doc__ = r"""Tversky loss; see :func:`seesaw_losses.functional.tversky_loss` for the formula and options.

    Args:
        alpha: weight of false positives.
        beta: weight of false negatives.
        activation: ``"sigmoid"`` | ``"softmax"`` | None (inputs are probabilities).
        per_image: per-image statistics (else whole batch).
        smooth_nr: numerator smoothing.
        smooth_dr: denominator smoothing.
        squared_denominator: V-Net denominator.
        log_loss: ``-log TI``.
        include_background: score channel 0.
        class_weight: per-class weights ``(C,)`` (buffer).
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
""" + _SHAPE_DOC
    _fixed = {"gamma": 1.0}

    def __init__(self, *, alpha: float = 0.3, beta: float = 0.7, activation: Optional[str] = "sigmoid",
                 per_image: bool = False,
                 smooth_nr: float = DEFAULT_SMOOTH, smooth_dr: float = DEFAULT_SMOOTH,
                 squared_denominator: bool = False, log_loss: bool = False, include_background: bool = True,
                 class_weight: Optional[Union[Tensor, Sequence[float]]] = None, ignore_index: Optional[int] = None,
                 reduction: str = "mean") -> None:
        super().__init__(alpha=alpha, beta=beta, activation=activation, per_image=per_image, smooth_nr=smooth_nr,
                         smooth_dr=smooth_dr, squared_denominator=squared_denominator, log_loss=log_loss,
                         include_background=include_background, class_weight=class_weight, ignore_index=ignore_index,
                         reduction=reduction)


class DiceLoss(_OverlapLoss):
    __doc__ = r"""Soft Dice loss (Tversky with alpha = beta = 0.5); see :func:`seesaw_losses.functional.dice_loss`.

    Args:
        activation: ``"sigmoid"`` | ``"softmax"`` | None (inputs are probabilities).
        per_image: per-image statistics (else whole batch).
        smooth_nr: numerator smoothing (half of MONAI's for the same effect).
        smooth_dr: denominator smoothing (half of MONAI's for the same effect).
        squared_denominator: V-Net denominator.
        log_loss: log-Dice.
        include_background: score channel 0.
        class_weight: per-class weights ``(C,)`` (buffer).
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
""" + _SHAPE_DOC + r"""
    Examples:
        >>> criterion = DiceLoss(activation="softmax", include_background=False)
        >>> criterion(torch.randn(2, 3, 8, 8, requires_grad=True), torch.randint(0, 3, (2, 8, 8))).backward()
"""
    _fixed = {"alpha": 0.5, "beta": 0.5}

    def __init__(self, *, activation: Optional[str] = "sigmoid", per_image: bool = False,
                 smooth_nr: float = DEFAULT_SMOOTH,
                 smooth_dr: float = DEFAULT_SMOOTH, squared_denominator: bool = False, log_loss: bool = False,
                 include_background: bool = True, class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
                 ignore_index: Optional[int] = None, reduction: str = "mean") -> None:
        super().__init__(activation=activation, per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                         squared_denominator=squared_denominator, log_loss=log_loss,
                         include_background=include_background, class_weight=class_weight, ignore_index=ignore_index,
                         reduction=reduction)


class JaccardLoss(_OverlapLoss):
    __doc__ = r"""Jaccard (soft IoU) loss (Tversky with alpha = beta = 1); see
    :func:`seesaw_losses.functional.jaccard_loss`. Arguments as in :class:`DiceLoss` (no squared denominator).
""" + _SHAPE_DOC
    _fixed = {"alpha": 1.0, "beta": 1.0}

    def __init__(self, *, activation: Optional[str] = "sigmoid", per_image: bool = False,
                 smooth_nr: float = DEFAULT_SMOOTH,
                 smooth_dr: float = DEFAULT_SMOOTH, log_loss: bool = False, include_background: bool = True,
                 class_weight: Optional[Union[Tensor, Sequence[float]]] = None, ignore_index: Optional[int] = None,
                 reduction: str = "mean") -> None:
        super().__init__(activation=activation, per_image=per_image, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                         log_loss=log_loss, include_background=include_background, class_weight=class_weight,
                         ignore_index=ignore_index, reduction=reduction)


class FocalTverskyLoss(_OverlapLoss):
    __doc__ = r"""Focal Tversky loss ``(1 - TI)^gamma``; see :func:`seesaw_losses.functional.focal_tversky_loss`.

    The options not listed here are those of :class:`TverskyLoss`.

    Args:
        alpha: weight of false positives.
        beta: weight of false negatives.
        gamma: exponent ``> 0`` (0.75 = the paper's 4/3).
""" + _SHAPE_DOC

    def __init__(self, *, alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75,
                 activation: Optional[str] = "sigmoid",
                 per_image: bool = False, smooth_nr: float = DEFAULT_SMOOTH, smooth_dr: float = DEFAULT_SMOOTH,
                 include_background: bool = True, class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
                 ignore_index: Optional[int] = None, reduction: str = "mean") -> None:
        super().__init__(alpha=alpha, beta=beta, gamma=gamma, activation=activation, per_image=per_image,
                         smooth_nr=smooth_nr, smooth_dr=smooth_dr, include_background=include_background,
                         class_weight=class_weight, ignore_index=ignore_index, reduction=reduction)


class GeneralizedDiceLoss(nn.Module):
    __doc__ = r"""Generalized Dice loss (Sudre et al. 2017); see
    :func:`seesaw_losses.functional.generalized_dice_loss`.

    The options not listed here are those of :class:`DiceLoss` (no ``class_weight``: the weights come from the
    target).

    Args:
        weight_type: ``"square"`` | ``"simple"`` | ``"uniform"``.

    Shape:
        - logits, target: as in :class:`DiceLoss`; output: scalar, or ``(N,)`` with ``per_image`` and
          ``reduction="none"``.
"""

    def __init__(self, *, weight_type: str = "square", activation: Optional[str] = "sigmoid",
                 per_image: bool = False,
                 smooth_nr: float = DEFAULT_SMOOTH, smooth_dr: float = DEFAULT_SMOOTH, include_background: bool = True,
                 ignore_index: Optional[int] = None, reduction: str = "mean") -> None:
        super().__init__()
        check_generalized_dice_options(type(self).__name__, weight_type=weight_type, smooth_nr=smooth_nr,
                                       smooth_dr=smooth_dr, reduction=reduction, activation=activation)
        self.options = dict(weight_type=weight_type, activation=activation, per_image=per_image, smooth_nr=smooth_nr,
                            smooth_dr=smooth_dr, include_background=include_background, ignore_index=ignore_index,
                            reduction=reduction)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_overlap_tensors("GeneralizedDiceLoss.forward", logits, target, self.options["activation"],
                              self.options["ignore_index"], self.options["include_background"])
        return _generalized_dice_unchecked(logits, target, **self.options)


_OVERLAP = dict(tasks=("binary", "multi-class", "multi-label"), target="option", region=True)
_SMOOTH = Hyperparameter(1e-3, 10.0, log=True)

register(LossEntry(
    name="dice", function=dice_loss, module=DiceLoss, **_OVERLAP,
    summary="soft Dice: one minus the overlap of probabilities and target, per class (Tversky 0.5/0.5)",
    reference="Milletari et al., V-Net, 3DV 2016", search_space={"smooth_nr": _SMOOTH}))
register(LossEntry(
    name="tversky", function=tversky_loss, module=TverskyLoss, **_OVERLAP,
    summary="Tversky: Dice with false positives weighted by alpha and false negatives by beta",
    reference="Salehi et al., Tversky loss function for image segmentation, MLMI 2017",
    defaults={"alpha": 0.3, "beta": 0.7},
    search_space={"alpha": Hyperparameter(0.05, 0.95), "beta": Hyperparameter(0.05, 0.95)}))
register(LossEntry(
    name="jaccard", function=jaccard_loss, module=JaccardLoss, **_OVERLAP,
    summary="soft Jaccard (IoU): Tversky with alpha = beta = 1",
    reference="Rahman and Wang, Optimizing intersection-over-union in deep neural networks, ISVC 2016"))
register(LossEntry(
    name="focal_tversky", function=focal_tversky_loss, module=FocalTverskyLoss, **_OVERLAP,
    summary="focal Tversky: (1 - Tversky index)^gamma, focusing on hard classes",
    reference="Abraham and Khan, A novel focal Tversky loss function, ISBI 2019",
    defaults={"alpha": 0.3, "beta": 0.7, "gamma": 0.75},
    search_space={"alpha": Hyperparameter(0.05, 0.95), "beta": Hyperparameter(0.05, 0.95),
                  "gamma": Hyperparameter(0.5, 3.0)}))
register(LossEntry(
    name="generalized_dice", function=generalized_dice_loss, module=GeneralizedDiceLoss, **_OVERLAP,
    summary="generalized Dice: per-class overlaps weighted by the inverse squared class volume",
    reference="Sudre et al., Generalised Dice overlap as a deep learning loss function, DLMIA 2017"))
