"""Lovasz loss modules."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from ..functional._validation import check_choice, check_reduction
from ..functional.binary_seesaw import binary_targets
from ..functional.lovasz import (
    CLASS_SETS, _lovasz_hinge_unchecked, _lovasz_softmax_unchecked, check_lovasz_softmax_tensors, lovasz_hinge_loss,
    lovasz_softmax_loss,
)
from ..registry import LossEntry, register


class LovaszHingeLoss(nn.Module):
    r"""Lovasz hinge loss for binary segmentation; see :func:`seesaw_losses.functional.lovasz_hinge_loss`.

    Args:
        per_image: one loss per image, averaged (else one over the batch).
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` over images.

    Shape:
        - logits: ``(N, *)``, ``(N, 1, *)`` (target of the same shape, ``{0, 1}``) or ``(N, 2, *)`` (target
          ``(N, *)`` indices).
        - output: scalar, or ``(N,)`` for ``per_image`` with ``reduction="none"``.
    """

    def __init__(self, *, per_image: bool = False, ignore_index: Optional[int] = None, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction("LovaszHingeLoss", reduction)
        self.per_image, self.ignore_index, self.reduction = per_image, ignore_index, reduction

    def extra_repr(self) -> str:
        return f"per_image={self.per_image}, ignore_index={self.ignore_index}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        x, t = binary_targets("LovaszHingeLoss.forward", logits, target, self.ignore_index)
        return _lovasz_hinge_unchecked(x, t, per_image=self.per_image, ignore_index=self.ignore_index,
                                       reduction=self.reduction)


class LovaszSoftmaxLoss(nn.Module):
    r"""Lovasz-softmax loss for multi-class segmentation; see
    :func:`seesaw_losses.functional.lovasz_softmax_loss`.

    Args:
        classes: ``"present"`` (classes in the target) | ``"all"``.
        per_image: one loss per image, averaged (else one over the batch).
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` over images.

    Shape:
        - logits: ``(N, C, d1, ..., dK)``; target: ``(N, d1, ..., dK)`` integer.
        - output: scalar, or ``(N,)`` for ``per_image`` with ``reduction="none"``.
    """

    def __init__(self, *, classes: str = "present", per_image: bool = False, ignore_index: Optional[int] = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        check_choice("LovaszSoftmaxLoss", "classes", classes, CLASS_SETS)
        check_reduction("LovaszSoftmaxLoss", reduction)
        self.classes, self.per_image, self.ignore_index, self.reduction = classes, per_image, ignore_index, reduction

    def extra_repr(self) -> str:
        return f"classes={self.classes!r}, per_image={self.per_image}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_lovasz_softmax_tensors("LovaszSoftmaxLoss.forward", logits, target, self.ignore_index)
        return _lovasz_softmax_unchecked(logits, target, classes=self.classes, per_image=self.per_image,
                                         ignore_index=self.ignore_index, reduction=self.reduction)


register(LossEntry(
    name="lovasz_hinge", function=lovasz_hinge_loss, module=LovaszHingeLoss, tasks=("binary",),
    summary="Lovasz hinge: a convex surrogate of the Jaccard index, optimised directly",
    reference="Berman et al., The Lovasz-Softmax loss, CVPR 2018", target="binary", region=True))
register(LossEntry(
    name="lovasz_softmax", function=lovasz_softmax_loss, module=LovaszSoftmaxLoss, tasks=("multi-class",),
    summary="Lovasz-softmax: the Jaccard surrogate on softmax probabilities, per class",
    reference="Berman et al., The Lovasz-Softmax loss, CVPR 2018", target="index", region=True))
