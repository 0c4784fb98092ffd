"""Seesaw loss modules: they own the cumulative class counts and call the pure functions."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..functional._targets import count_labels
from ..functional._validation import (
    check_choice, check_class_weight, check_index_target, check_int, check_number, check_reduction, fail, REDUCTIONS,
)
from ..functional.binary_seesaw import VARIANTS, binary_counts, binary_seesaw_loss, binary_targets
from ..functional.seesaw import SeesawKernel, check_seesaw_factors, seesaw_loss, softmax_loss
from ._class_counts import ClassCountsMixin
from ..registry import Hyperparameter, LossEntry, register


def _accuracy(scores: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy in percent (0 for an empty batch), as MMDetection reports it."""
    if labels.numel() == 0:
        return scores.new_tensor(0.0)
    return (scores.argmax(-1) == labels).float().mean() * 100.0


class SeesawLoss(ClassCountsMixin):
    r"""Seesaw loss with cumulative class counts kept as state (Wang et al., CVPR 2021).

    See :func:`seesaw_losses.functional.seesaw_loss` for the formula. In training mode each batch's labels
    (ignored ones excluded) are added to the ``class_counts`` buffer **before** the loss is computed, as
    MMDetection does; in eval mode the counts are left alone.

    With ``objectness=True`` it is a drop-in for MMDetection's ``SeesawLoss`` in a Mask R-CNN box head: the
    logits hold ``C`` class scores followed by 2 objectness scores (object, background), labels lie in
    ``[0, C]`` with ``C`` meaning background; the Seesaw term is computed over positives only, a 2-way
    objectness cross-entropy over all samples, and the result is ``{"loss_cls_objectness",
    "loss_cls_classes"}`` (``return_dict=True``) or their sum. Background samples are counted in the extra
    ``background_count`` buffer. Without objectness it matches mmpretrain's classification ``SeesawLoss`` and
    also accepts dense ``(N, C, *)`` segmentation outputs.

    In a ``torch.distributed`` job the counts of each training batch are summed over the processes before they
    are added, so every process holds the counts of the global batch stream (see README, "Distributed
    training"); this is correct with the loss inside or outside a ``DistributedDataParallel`` module and with
    any ``broadcast_buffers`` (``forward_sync_buffers``). Every process must then run the same number of
    training-mode forwards.

    Args:
        num_classes: number of classes ``C`` (without background).
        p: mitigation exponent, ``>= 0``.
        q: compensation exponent, ``>= 0``.
        eps: floor of the true class's probability in the compensation ratio.
        weight: per-class weights ``(C,)`` (kept as a buffer), as in ``nn.CrossEntropyLoss``.
        ignore_index: label to skip: it is neither counted nor penalised.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        loss_weight: factor on the loss.
        objectness: MMDetection's box-head form with the extra objectness branch.
        return_dict: with ``objectness``, return the two terms as a dict (else their sum).
        sync_counts: sum each training batch's counts over the processes: ``None`` (default) when
            ``torch.distributed`` is initialised with more than one process, ``True`` always (an error if it is
            not initialised), ``False`` never (each process counts its own shard).
        process_group: the processes to sum over (default: all); from ``torch.distributed.new_group``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; ``(N, C + 2)`` with ``objectness``.
        - target: ``(N,)`` or ``(N, d1, ..., dK)`` class indices (``[0, C]`` with ``objectness``).
        - weight (forward): per-element weights broadcastable to the target (``label_weights``).
        - output: scalar, or the target's shape for ``reduction="none"``.

    Example:
        >>> criterion = SeesawLoss(num_classes=10)
        >>> loss = criterion(torch.randn(32, 10, requires_grad=True), torch.randint(0, 10, (32,)))
        >>> loss.backward()
    """

    def __init__(
        self,
        num_classes: int,
        *,
        p: float = 0.8,
        q: float = 2.0,
        eps: float = 1e-2,
        weight: Optional[Union[Tensor, Sequence[float]]] = None,
        ignore_index: Optional[int] = -100,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        objectness: bool = False,
        return_dict: bool = True,
        sync_counts: Optional[bool] = None,
        process_group: Any = None,
    ) -> None:
        super().__init__()
        fn = "SeesawLoss"
        check_int(fn, "num_classes", num_classes, low=1)
        check_seesaw_factors(fn, p, q, eps)
        check_reduction(fn, reduction)
        check_number(fn, "loss_weight", loss_weight)
        if ignore_index is not None and objectness and 0 <= ignore_index <= num_classes:
            fail(fn, "ignore_index", f"outside [0, {num_classes}] with objectness=True", ignore_index,
                 f"label {num_classes} means background in the objectness form")
        self.num_classes, self.p, self.q, self.eps = num_classes, p, q, eps
        self.ignore_index, self.reduction, self.loss_weight = ignore_index, reduction, loss_weight
        self.objectness, self.return_dict = objectness, return_dict
        self._init_counts(fn, num_classes, sync_counts=sync_counts, process_group=process_group,
                          background=objectness)
        self.register_buffer("weight", check_class_weight(fn, weight, num_classes))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, p={self.p}, q={self.q}, eps={self.eps}, "
                f"reduction={self.reduction!r}, objectness={self.objectness}")

    # MMDetection's custom-head interface ------------------------------------------------------------------

    def get_cls_channels(self, num_classes: int) -> int:
        """Number of logits the classifier must output for ``num_classes`` classes."""
        if num_classes != self.num_classes:
            fail("SeesawLoss.get_cls_channels", "num_classes", f"equal to the loss's num_classes "
                 f"({self.num_classes})", num_classes)
        return num_classes + 2 if self.objectness else num_classes

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Class probabilities; with objectness ``[p(class) * p(object), p(background)]``, shape ``(N, C + 1)``."""
        if not self.objectness:
            return F.softmax(cls_score, dim=-1)
        classes, objectness = self._split(cls_score, "SeesawLoss.get_activation")
        score_objectness = F.softmax(objectness, dim=-1)
        scores = F.softmax(classes, dim=-1) * score_objectness[..., :1]
        return torch.cat([scores, score_objectness[..., 1:]], dim=-1)

    def get_accuracy(self, cls_score: Tensor, labels: Tensor) -> dict:
        """Top-1 accuracy in percent: ``{"acc_objectness", "acc_classes"}`` with objectness, else ``{"acc"}``."""
        if not self.objectness:
            return {"acc": _accuracy(cls_score, labels)}
        classes, objectness = self._split(cls_score, "SeesawLoss.get_accuracy")
        positive = labels < self.num_classes
        return {
            "acc_objectness": _accuracy(objectness, (labels == self.num_classes).long()),
            "acc_classes": _accuracy(classes[positive], labels[positive]),
        }

    def _split(self, cls_score: Tensor, fn: str):
        if cls_score.shape[-1] != self.num_classes + 2:
            fail(fn, "cls_score", f"of {self.num_classes + 2} channels (C classes + 2 objectness) in the last "
                 "dimension", cls_score, "build the head with get_cls_channels(num_classes) outputs")
        return cls_score[..., :-2], cls_score[..., -2:]

    # forward ----------------------------------------------------------------------------------------------

    def forward(
        self,
        logits: Tensor,
        target: Tensor,
        weight: Optional[Tensor] = None,
        avg_factor: Optional[Union[float, Tensor]] = None,
        reduction_override: Optional[str] = None,
    ) -> Union[Tensor, dict]:
        if reduction_override is not None:
            check_choice("SeesawLoss.forward", "reduction_override", reduction_override, REDUCTIONS)
        reduction = reduction_override or self.reduction
        if self.objectness:
            return self._forward_objectness(logits, target, weight, avg_factor, reduction)
        if isinstance(logits, Tensor) and logits.dim() >= 2:
            if logits.shape[1] != self.num_classes:
                fail("SeesawLoss.forward", "logits", f"of {self.num_classes} channels (dim 1), one per class",
                     logits, f"the loss was built with num_classes={self.num_classes}")
            check_index_target("SeesawLoss.forward", logits, target, self.ignore_index,
                               num_classes=logits.shape[1])
            self.accumulate(count_labels(target, self.num_classes, self.ignore_index))
        loss = seesaw_loss(logits, target, self.class_counts, p=self.p, q=self.q, eps=self.eps,
                           weight=self.weight, element_weight=weight, ignore_index=self.ignore_index,
                           reduction=reduction, avg_factor=avg_factor)
        return loss * self.loss_weight

    def _forward_objectness(self, logits, target, weight, avg_factor, reduction):
        fn = "SeesawLoss.forward"
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            fail(fn, "logits", f"a (N, {self.num_classes + 2}) tensor with objectness=True", logits)
        classes, objectness = self._split(logits, fn)
        if not isinstance(target, Tensor) or target.is_floating_point():
            fail(fn, "target", "an integer tensor of labels", target, error=TypeError)
        check_index_target(fn, logits, target, self.ignore_index, num_classes=self.num_classes + 1)
        self.accumulate(count_labels(target, self.num_classes + 1, self.ignore_index))
        ignored = target == self.num_classes
        if self.ignore_index is not None:
            ignored = ignored | (target == self.ignore_index)
        positive_target = target.masked_fill(ignored, -1 if self.ignore_index is None else self.ignore_index)
        loss_classes = seesaw_loss(
            classes, positive_target, self.class_counts, p=self.p, q=self.q, eps=self.eps, weight=self.weight,
            element_weight=weight, ignore_index=-1 if self.ignore_index is None else self.ignore_index,
            reduction=reduction, avg_factor=avg_factor)
        object_target = (target == self.num_classes).long()
        if self.ignore_index is not None:
            object_target = object_target.masked_fill(target == self.ignore_index, self.ignore_index)
        loss_objectness = softmax_loss(
            fn, SeesawKernel(None, 0.0, 0.0, 1.0), objectness, object_target, weight=None, element_weight=weight,
            ignore_index=self.ignore_index, reduction=reduction, avg_factor=avg_factor)
        loss_classes, loss_objectness = loss_classes * self.loss_weight, loss_objectness * self.loss_weight
        if self.return_dict:
            return {"loss_cls_objectness": loss_objectness, "loss_cls_classes": loss_classes}
        return loss_classes + loss_objectness


class BinarySeesawLoss(ClassCountsMixin):
    r"""Binary Seesaw loss for binary segmentation, with cumulative ``[background, foreground]`` counts.

    See :func:`seesaw_losses.functional.binary_seesaw_loss` for both variants. In training mode each batch's
    pixels (ignored ones excluded) are added to ``class_counts`` before the loss is computed; in eval mode the
    counts are left alone. ``variant="reweighted"`` uses per-batch counts in its formula (the buffer is still
    kept, for inspection); in training mode in a ``torch.distributed`` job these are the global batch's.
    Counts are synchronised across processes as in :class:`SeesawLoss`, with the same options and rules.

    Args:
        p: mitigation exponent, ``>= 0``.
        q: compensation exponent, ``>= 0``.
        eps: floor of the true class's probability in the paper variant's compensation.
        ignore_index: target value to skip (e.g. 255).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        variant: ``"paper"`` | ``"reweighted"``.
        temperature: logit scale of the reweighted variant (default 3.0).
        sync_counts: sum each training batch's counts over the processes: ``None`` (default) when
            ``torch.distributed`` is initialised with more than one process, ``True`` always (an error if it is
            not initialised), ``False`` never (each process counts its own shard).
        process_group: the processes to sum over (default: all); from ``torch.distributed.new_group``.

    Shape:
        - one logit: logits ``(N, 1, *)`` or ``(N, *)``, target of the same shape, values in ``{0, 1}``.
        - two logits: logits ``(N, 2, *)``, target ``(N, *)`` integer, channel 1 = foreground.
        - weight (forward): per-element weights broadcastable to the target.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Example:
        >>> criterion = BinarySeesawLoss(p=0.8, q=2.0)
        >>> logits = torch.randn(2, 1, 64, 64, requires_grad=True)
        >>> criterion(logits, (torch.rand(2, 1, 64, 64) < 0.03).float()).backward()
    """

    def __init__(
        self,
        p: float = 0.8,
        q: float = 2.0,
        *,
        eps: float = 1e-2,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
        variant: str = "paper",
        temperature: Optional[float] = None,
        sync_counts: Optional[bool] = None,
        process_group: Any = None,
    ) -> None:
        super().__init__()
        fn = "BinarySeesawLoss"
        check_seesaw_factors(fn, p, q, eps)
        check_reduction(fn, reduction)
        check_choice(fn, "variant", variant, VARIANTS)
        if temperature is not None:
            if variant == "paper":
                fail(fn, "temperature", "None for variant='paper'", temperature,
                     "the temperature belongs to variant='reweighted'")
            check_number(fn, "temperature", temperature, low=0, low_open=True)
        self.p, self.q, self.eps, self.ignore_index = p, q, eps, ignore_index
        self.reduction, self.variant, self.temperature = reduction, variant, temperature
        self._init_counts(fn, 2, sync_counts=sync_counts, process_group=process_group)

    def extra_repr(self) -> str:
        return f"p={self.p}, q={self.q}, variant={self.variant!r}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        _, t = binary_targets("BinarySeesawLoss.forward", logits, target, self.ignore_index)
        batch_counts = self.accumulate(binary_counts(t, self.ignore_index))
        paper = self.variant == "paper"
        return binary_seesaw_loss(
            logits, target, self.class_counts if paper else None, p=self.p, q=self.q, eps=self.eps,
            variant=self.variant, temperature=self.temperature, weight=weight, ignore_index=self.ignore_index,
            reduction=self.reduction, batch_counts=None if paper else batch_counts)


_SEESAW_SPACE = {"p": Hyperparameter(0.0, 1.5), "q": Hyperparameter(0.0, 3.0)}

register(LossEntry(
    name="seesaw", function=seesaw_loss, module=SeesawLoss, tasks=("multi-class", "long-tailed", "detection"),
    summary="Seesaw: cross-entropy whose negative gradients on rarer classes are scaled down by count ratios "
            "(p) and up for misclassifications (q)",
    reference="Wang et al., Seesaw Loss for Long-Tailed Instance Segmentation, CVPR 2021", activation="softmax",
    needs_counts=True, defaults={"p": 0.8, "q": 2.0}, search_space=_SEESAW_SPACE))
register(LossEntry(
    name="binary_seesaw", function=binary_seesaw_loss, module=BinarySeesawLoss, tasks=("binary",),
    summary="Binary Seesaw: the two-class Seesaw for sparse foregrounds, with cumulative pixel counts",
    reference="Wang et al., CVPR 2021 (two-class case)", activation="sigmoid", needs_counts=True,
    defaults={"p": 0.8, "q": 2.0}, search_space=_SEESAW_SPACE))
