"""Seesaw loss modules: they own the cumulative class counts and call the pure functions."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from torch import Tensor

from ..functional._targets import count_labels
from ..functional._validation import check_class_weight, check_int, check_number
from ..functional.binary_seesaw import (
    _binary_seesaw_unchecked, binary_counts, binary_seesaw_loss, check_binary_seesaw_options,
    check_binary_seesaw_tensors,
)
from ..functional.seesaw import _seesaw_loss_unchecked, check_seesaw_options, check_seesaw_tensors, seesaw_loss
from ._class_counts import ClassCountsMixin, read_state
from ..registry import Hyperparameter, LossEntry, register


class SeesawLoss(ClassCountsMixin):
    r"""Seesaw loss with cumulative class counts kept as state (Wang et al., CVPR 2021).

    See :func:`seesaw_losses.functional.seesaw_loss` for the formula. In training mode each batch's labels
    (ignored ones excluded) are added to the ``class_counts`` buffer **before** the loss is computed, as
    MMDetection does, and only once the call's arguments are all valid (a rejected call counts nothing); in
    eval mode the counts are left alone. It matches mmpretrain's classification ``SeesawLoss`` and also accepts
    dense ``(N, C, *)`` segmentation outputs; MMDetection's box-head form (objectness branch, ``loss_weight``,
    ``get_*``) is :class:`seesaw_losses.integrations.mmdet.SeesawLoss`.

    In a ``torch.distributed`` job the counts of each training batch are summed over the processes before they
    are added, so every process holds the counts of the global batch stream (see the documentation's "Distributed
    training"); this is correct with the loss inside or outside a ``DistributedDataParallel`` module and with
    any ``broadcast_buffers`` (``forward_sync_buffers``). Every process must then run the same number of
    training-mode forwards.

    Args:
        num_classes: number of classes ``C``.
        p: mitigation exponent, ``>= 0``.
        q: compensation exponent, ``>= 0``.
        eps: floor of the true class's probability in the compensation ratio.
        tau: logit adjustment ``tau * log(prior)`` from the same counts before the Seesaw factors, ``>= 0``
            (0: Seesaw as published).
        class_weight: per-class weights ``(C,)`` (kept as a buffer), as ``weight`` of ``nn.CrossEntropyLoss``.
        ignore_index: label to skip: it is neither counted nor penalised.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        sync_counts: sum each training batch's counts over the processes: ``None`` (default) when
            ``torch.distributed`` is initialised with more than one process, ``True`` always (an error if it is
            not initialised), ``False`` never (each process counts its own shard).
        process_group: the processes to sum over (default: all); from ``torch.distributed.new_group``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``.
        - target: ``(N,)`` or ``(N, d1, ..., dK)`` class indices.
        - weight (forward): per-element weights broadcastable to the target.
        - avg_factor (forward): replaces the denominator of ``"mean"`` (MMDetection's convention).
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> criterion = SeesawLoss(num_classes=10)
        >>> loss = criterion(torch.randn(32, 10, requires_grad=True), torch.randint(0, 10, (32,)))
        >>> loss.backward()
    """

    class_weight: Optional[Tensor]

    def __init__(
        self,
        num_classes: int,
        *,
        p: float = 0.8,
        q: float = 2.0,
        eps: float = 1e-2,
        tau: float = 0.0,
        class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
        ignore_index: Optional[int] = -100,
        reduction: str = "mean",
        sync_counts: Optional[bool] = None,
        process_group: Any = None,
    ) -> None:
        super().__init__()
        fn = type(self).__name__
        check_int(fn, "num_classes", num_classes, low=1)
        check_seesaw_options(fn, p, q, eps, reduction)
        check_number(fn, "tau", tau, low=0)
        self.num_classes, self.p, self.q, self.eps, self.tau = num_classes, p, q, eps, tau
        self.ignore_index, self.reduction = ignore_index, reduction
        self._init_counts(fn, num_classes, sync_counts=sync_counts, process_group=process_group)
        self.register_buffer("class_weight", check_class_weight(fn, class_weight, num_classes))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, p={self.p}, q={self.q}, eps={self.eps}, tau={self.tau}, "
                f"reduction={self.reduction!r}")

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        check_seesaw_tensors("SeesawLoss.forward", logits, target, self.num_classes,
                             f"for num_classes={self.num_classes}", weight=weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, avg_factor=avg_factor)
        if self.training:
            self.accumulate(count_labels(target, self.num_classes, self.ignore_index))
        return _seesaw_loss_unchecked(logits, target, read_state(self.class_counts), p=self.p, q=self.q,
                                      eps=self.eps, class_weight=self.class_weight, weight=weight,
                                      ignore_index=self.ignore_index, reduction=self.reduction,
                                      avg_factor=avg_factor, tau=self.tau)


class BinarySeesawLoss(ClassCountsMixin):
    r"""Binary Seesaw loss for binary segmentation, with cumulative ``[background, foreground]`` counts.

    See :func:`seesaw_losses.functional.binary_seesaw_loss` for both variants. In training mode each batch's
    pixels (ignored ones excluded) are added to ``class_counts`` before the loss is computed, once the call's
    arguments are all valid; in eval mode the counts are left alone. ``variant="reweighted"`` uses per-batch
    counts in its formula (the buffer is still kept, for inspection); in training mode in a
    ``torch.distributed`` job these are the global batch's. Counts are synchronised across processes as in
    :class:`SeesawLoss`, with the same options and rules.

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

    Examples:
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
        check_binary_seesaw_options(fn, p, q, eps, reduction, variant, temperature)
        self.p, self.q, self.eps, self.ignore_index = p, q, eps, ignore_index
        self.reduction, self.variant, self.temperature = reduction, variant, temperature
        self._init_counts(fn, 2, sync_counts=sync_counts, process_group=process_group)

    def extra_repr(self) -> str:
        return f"p={self.p}, q={self.q}, variant={self.variant!r}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        x, t = check_binary_seesaw_tensors("BinarySeesawLoss.forward", logits, target, weight, self.ignore_index)
        paper = self.variant == "paper"
        batch_counts = None
        if self.training or not paper:
            batch_counts = self.accumulate(binary_counts(t, self.ignore_index))
        return _binary_seesaw_unchecked(
            x, t, read_state(self.class_counts) if paper else None, p=self.p, q=self.q, eps=self.eps,
            variant=self.variant, temperature=self.temperature, weight=weight, ignore_index=self.ignore_index, reduction=self.reduction,
            batch_counts=None if paper else batch_counts)


_SEESAW_SPACE = {"p": Hyperparameter(0.0, 1.5), "q": Hyperparameter(0.0, 3.0)}

register(LossEntry(
    name="seesaw", function=seesaw_loss, module=SeesawLoss, tasks=("multi-class", "long-tailed", "detection"),
    summary="Seesaw: cross-entropy whose negative gradients on rarer classes are scaled down by count ratios "
            "(p) and up for misclassifications (q)",
    reference="Wang et al., Seesaw Loss for Long-Tailed Instance Segmentation, CVPR 2021", target="index",
    needs_counts=True, state=("class_counts",), defaults={"p": 0.8, "q": 2.0}, search_space=_SEESAW_SPACE))
register(LossEntry(
    name="binary_seesaw", function=binary_seesaw_loss, module=BinarySeesawLoss, tasks=("binary",),
    summary="Binary Seesaw: the two-class Seesaw for sparse foregrounds, with cumulative pixel counts",
    reference="Wang et al., CVPR 2021 (two-class case)", target="binary", needs_counts=True,
    state=("class_counts",), defaults={"p": 0.8, "q": 2.0}, search_space=_SEESAW_SPACE))
