"""Focal loss modules."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from torch import Tensor, nn

from ..functional._validation import check_class_weight, fail
from ..functional.focal import (
    FocalAlpha, _sigmoid_focal_unchecked, _softmax_focal_unchecked, check_sigmoid_focal_options,
    check_sigmoid_focal_tensors, check_softmax_focal_options, check_softmax_focal_tensors, sigmoid_focal_loss, softmax_focal_loss,
)
from ..registry import Hyperparameter, LossEntry, register


class SigmoidFocalLoss(nn.Module):
    r"""Sigmoid focal loss for binary and multi-label outputs (Lin et al. 2017).

    See :func:`seesaw_losses.functional.sigmoid_focal_loss` for the formula; equal to torchvision's
    ``sigmoid_focal_loss``.

    Args:
        alpha: weight of the positives in ``[0, 1]`` (``1 - alpha`` for the negatives): one number, or one per
            class (a ``(C,)`` tensor or list along dimension 1, kept as a buffer), or None to disable.
            Per-element factors go in ``weight`` (forward).
        gamma: focusing exponent, ``>= 0``.
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        normalizer: ``"elements"`` | ``"positives"`` (RetinaNet: divide the sum by the number of positives).

    Shape:
        - logits: ``(N, *)`` (``(N, C, *)`` with a per-class ``alpha``); target: the same shape, values in
          ``[0, 1]``.
        - weight (forward): per-element weights broadcastable to the target.
        - output: scalar, or ``(N, *)`` for ``reduction="none"``.

    Examples:
        >>> criterion = SigmoidFocalLoss(alpha=[0.25, 0.5, 0.9], gamma=2.0)
        >>> logits = torch.randn(4, 3, requires_grad=True)
        >>> criterion(logits, (torch.rand(4, 3) < 0.3).float()).backward()
    """

    alpha: Optional[Union[float, Tensor]]

    def __init__(self, *, alpha: FocalAlpha = 0.25, gamma: float = 2.0, ignore_index: Optional[int] = None,
                 reduction: str = "mean", normalizer: str = "elements") -> None:
        super().__init__()
        alpha = check_sigmoid_focal_options(type(self).__name__, alpha, gamma, reduction, normalizer)
        if isinstance(alpha, Tensor):
            self.register_buffer("alpha", alpha.detach().clone())
        else:
            self.alpha = alpha
        self.gamma, self.ignore_index, self.reduction, self.normalizer = gamma, ignore_index, reduction, normalizer

    def extra_repr(self) -> str:
        alpha = ("[" + ", ".join(f"{v:g}" for v in self.alpha.tolist()) + "]" if isinstance(self.alpha, Tensor)
                 else self.alpha)
        return f"alpha={alpha}, gamma={self.gamma}, reduction={self.reduction!r}, normalizer={self.normalizer!r}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        check_sigmoid_focal_tensors("SigmoidFocalLoss.forward", logits, target, weight, self.ignore_index,
                                    self.alpha)
        return _sigmoid_focal_unchecked(logits, target, alpha=self.alpha, gamma=self.gamma, weight=weight,
                                        ignore_index=self.ignore_index, reduction=self.reduction,
                                        normalizer=self.normalizer)


class SoftmaxFocalLoss(nn.Module):
    r"""Softmax focal loss for multi-class outputs with class-index targets.

    See :func:`seesaw_losses.functional.softmax_focal_loss`. ``class_weight`` is kept as a buffer.

    Args:
        num_classes: number of classes ``C`` (checked against the logits); None to take any.
        class_weight: per-class factors ``(C,)`` (e.g. :func:`~seesaw_losses.functional.class_balanced_weights`),
            as ``cross_entropy``'s ``weight`` (``"mean"`` divides by the summed weights), or None.
        gamma: focusing exponent, ``>= 0``.
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; target: ``(N,)`` or ``(N, d1, ..., dK)`` integer.
        - weight (forward): per-element weights broadcastable to the target.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> criterion = SoftmaxFocalLoss(num_classes=3, gamma=2.0)
        >>> criterion(torch.randn(4, 3, requires_grad=True), torch.tensor([0, 2, 1, 0])).backward()
    """

    class_weight: Optional[Tensor]

    def __init__(self, num_classes: Optional[int] = None, *,
                 class_weight: Optional[Union[Tensor, Sequence[float]]] = None, gamma: float = 2.0,
                 ignore_index: Optional[int] = -100, reduction: str = "mean") -> None:
        super().__init__()
        fn = type(self).__name__
        check_softmax_focal_options(fn, gamma, reduction)
        if class_weight is not None:
            size = num_classes if num_classes is not None else len(class_weight)
            class_weight = check_class_weight(fn, class_weight, size)
            num_classes = size
        self.register_buffer("class_weight", class_weight)
        self.num_classes, self.gamma, self.ignore_index, self.reduction = num_classes, gamma, ignore_index, reduction

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, gamma={self.gamma}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        fn = "SoftmaxFocalLoss.forward"
        if self.num_classes is not None and isinstance(logits, Tensor) and logits.dim() >= 2 \
                and logits.shape[1] != self.num_classes:
            fail(fn, "logits", f"of {self.num_classes} channels (dim 1)", logits)
        check_softmax_focal_tensors(fn, logits, target, weight, self.ignore_index)
        return _softmax_focal_unchecked(logits, target, class_weight=self.class_weight, gamma=self.gamma,
                                        weight=weight, ignore_index=self.ignore_index, reduction=self.reduction)


register(LossEntry(
    name="focal", function=sigmoid_focal_loss, module=SigmoidFocalLoss, tasks=("binary", "multi-label", "detection"),
    summary="sigmoid focal loss: BCE down-weighted by (1 - p_t)^gamma on easy elements, alpha for positives",
    reference="Lin et al., Focal Loss for Dense Object Detection, ICCV 2017", target="binary",
    defaults={"alpha": 0.25, "gamma": 2.0}, aliases=("sigmoid_focal",),
    search_space={"gamma": Hyperparameter(0.0, 5.0), "alpha": Hyperparameter(0.05, 0.95)}))
register(LossEntry(
    name="softmax_focal", function=softmax_focal_loss, module=SoftmaxFocalLoss,
    tasks=("multi-class", "long-tailed"),
    summary="softmax focal loss: cross-entropy down-weighted by (1 - p_t)^gamma, optional class_weight",
    reference="Lin et al., Focal Loss for Dense Object Detection, ICCV 2017", target="index",
    defaults={"gamma": 2.0}, search_space={"gamma": Hyperparameter(0.0, 5.0)}))
