"""Long-tail losses: logit adjustment, Balanced Softmax, LDAM (and LDAM-DRW) read the class prior; the asymmetric
loss, EQLv2 and equalized focal loss re-balance sigmoid heads."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..functional._targets import count_labels
from ..functional._validation import (
    check_avg_factor, check_class_weight, check_counts, check_int, check_reduction, fail,
)
from ..functional.asymmetric import (
    _asymmetric_unchecked, asymmetric_loss, check_asymmetric_args, check_asymmetric_tensors,
)
from ..functional.efl import _efl_unchecked, check_efl_args, check_efl_inputs, equalized_focal_loss
from ..functional.eqlv2 import _eqlv2_unchecked, check_eqlv2_args, check_eqlv2_inputs, eqlv2_loss
from ..functional.ldam import _ldam_unchecked, check_ldam_args, ldam_loss
from ..functional.logit_adjusted import (
    _logit_adjusted_unchecked, balanced_softmax_loss, check_prior_tensors, check_tau, logit_adjusted_loss,
)
from ..registry import Hyperparameter, LossEntry, register
from ._class_counts import ClassCountsMixin, SyncedState, read_state
from .weighting import DeferredWeights

Counts = Union[Tensor, Sequence[float]]


class PriorLoss(ClassCountsMixin):
    """A softmax loss that reads the class counts: given once (``class_counts``, kept fixed), or counted from
    the training labels as :class:`seesaw_losses.SeesawLoss` counts them (cumulative, before the loss, summed
    over the processes of a ``torch.distributed`` job, in the int64 ``class_counts`` buffer)."""

    class_weight: Optional[Tensor]

    def _init_prior(self, fn: str, num_classes: int, class_counts: Optional[Counts],
                    class_weight: Optional[Counts], ignore_index: Optional[int], reduction: str,
                    sync_counts: Optional[bool], process_group: Any) -> None:
        check_int(fn, "num_classes", num_classes, low=1)
        check_reduction(fn, reduction)
        self._init_counts(fn, num_classes, sync_counts=sync_counts, process_group=process_group)
        self.counting = class_counts is None
        if class_counts is not None:
            counts = class_counts if isinstance(class_counts, Tensor) else torch.as_tensor(class_counts)
            self.class_counts = check_counts(fn, counts, num_classes).detach().to(torch.float64).clone()
        self.register_buffer("class_weight", check_class_weight(fn, class_weight, num_classes, arg="class_weight"))
        self.num_classes, self.ignore_index, self.reduction = num_classes, ignore_index, reduction

    def _prior_counts(self, logits: Tensor, target: Tensor) -> Tensor:
        """Check the call's tensors (once), then return the counts for this batch: the fixed ones, or (training
        mode) the running ones with the batch added."""
        fn = f"{self._counts_owner}.forward"
        check_prior_tensors(fn, logits, target, self.ignore_index)
        if logits.shape[1] != self.num_classes:
            fail(fn, "logits", f"of {self.num_classes} channels (dim 1)", logits)
        if not self.counting:
            return self.class_counts
        if self.training:
            self.accumulate(count_labels(target, self.num_classes, self.ignore_index))
        return read_state(self.class_counts)


_PRIOR_ARGS = """        class_counts: the training set's labels per class (e.g. :func:`seesaw_losses.class_counts`), fixed;
            None counts the labels seen in training instead (as :class:`SeesawLoss` does).
        class_weight: per-class weights ``(C,)`` (a buffer), as ``cross_entropy``'s ``weight``.
        ignore_index: label that is neither counted nor penalised; None for none.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        sync_counts: as :class:`SeesawLoss` (counting only).
        process_group: as :class:`SeesawLoss` (counting only).

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; target: ``(N,)`` or ``(N, d1, ..., dK)`` class indices.
        - output: scalar, or the target's shape for ``reduction="none"``.
"""


class LogitAdjustedLoss(PriorLoss):
    __doc__ = r"""Logit-adjusted cross-entropy (Menon et al., ICLR 2021) with the class prior given or counted.

    See :func:`seesaw_losses.functional.logit_adjusted_loss`. Predict with the plain ``argmax`` of the model's
    logits: the adjustment belongs to training only.

    Args:
        num_classes: number of classes ``C``.
        tau: strength of the adjustment, ``>= 0``.
""" + _PRIOR_ARGS + """
    Examples:
        >>> criterion = LogitAdjustedLoss(4, class_counts=torch.tensor([500, 100, 20, 2]))
        >>> criterion(torch.randn(8, 4, requires_grad=True), torch.randint(0, 4, (8,))).backward()
    """

    def __init__(self, num_classes: int, *, tau: float = 1.0, class_counts: Optional[Counts] = None,
                 class_weight: Optional[Counts] = None, ignore_index: Optional[int] = -100,
                 reduction: str = "mean", sync_counts: Optional[bool] = None, process_group: Any = None) -> None:
        super().__init__()
        fn = type(self).__name__
        check_tau(fn, tau)
        self._init_prior(fn, num_classes, class_counts, class_weight, ignore_index, reduction, sync_counts,
                         process_group)
        self.tau = tau

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, tau={self.tau}, counting={self.counting}"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return _logit_adjusted_unchecked(logits, target, self._prior_counts(logits, target), tau=self.tau,
                                         class_weight=self.class_weight, ignore_index=self.ignore_index,
                                         reduction=self.reduction)


class BalancedSoftmaxLoss(LogitAdjustedLoss):
    __doc__ = r"""Balanced Softmax (Ren et al., NeurIPS 2020): :class:`LogitAdjustedLoss` with ``tau = 1``.

    Args:
        num_classes: number of classes ``C``.
""" + _PRIOR_ARGS

    def __init__(self, num_classes: int, *, class_counts: Optional[Counts] = None,
                 class_weight: Optional[Counts] = None, ignore_index: Optional[int] = -100,
                 reduction: str = "mean", sync_counts: Optional[bool] = None, process_group: Any = None) -> None:
        super().__init__(num_classes, tau=1.0, class_counts=class_counts, class_weight=class_weight,
                         ignore_index=ignore_index, reduction=reduction, sync_counts=sync_counts,
                         process_group=process_group)


class LDAMLoss(PriorLoss):
    __doc__ = r"""LDAM loss (Cao et al., NeurIPS 2019) with the class counts given or counted.

    See :func:`seesaw_losses.functional.ldam_loss` (what ``scale`` is for). Wrap it in
    :class:`seesaw_losses.DeferredReweighting` for LDAM-DRW.

    Args:
        num_classes: number of classes ``C``.
        max_margin: the rarest class's margin, ``>= 0``.
        scale: factor on the logits, ``> 0`` (30 for cosine logits, 1 for a plain linear classifier).
""" + _PRIOR_ARGS + """
    Examples:
        >>> criterion = LDAMLoss(4, class_counts=[500, 100, 20, 2], scale=1.0)
        >>> criterion(torch.randn(8, 4, requires_grad=True), torch.randint(0, 4, (8,))).backward()
    """

    def __init__(self, num_classes: int, *, max_margin: float = 0.5, scale: float = 30.0,
                 class_counts: Optional[Counts] = None, class_weight: Optional[Counts] = None,
                 ignore_index: Optional[int] = -100, reduction: str = "mean", sync_counts: Optional[bool] = None,
                 process_group: Any = None) -> None:
        super().__init__()
        fn = type(self).__name__
        check_ldam_args(fn, max_margin, scale)
        self._init_prior(fn, num_classes, class_counts, class_weight, ignore_index, reduction, sync_counts,
                         process_group)
        self.max_margin, self.scale = max_margin, scale

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, max_margin={self.max_margin}, scale={self.scale}, "
                f"counting={self.counting}")

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return _ldam_unchecked(logits, target, self._prior_counts(logits, target), max_margin=self.max_margin,
                               scale=self.scale, class_weight=self.class_weight, ignore_index=self.ignore_index,
                               reduction=self.reduction)


class LDAMDRWLoss(DeferredWeights, LDAMLoss):
    r"""LDAM-DRW (Cao et al., NeurIPS 2019): :class:`LDAMLoss` on fixed counts whose per-class weights follow
    :class:`DeferredReweighting`'s schedule (uniform, then class-balanced from ``start_epoch``; call
    :meth:`set_epoch` every epoch, as the ``seesaw`` trainer does). The paper trains 200 epochs and re-weights
    from 160.

    Args:
        num_classes: number of classes ``C``.
        class_counts: the training set's labels per class.
        max_margin: as :class:`LDAMLoss`.
        scale: as :class:`LDAMLoss` (``scale=1`` for a plain linear head).
        start_epoch: first epoch (0-based) with class-balanced weights, ``>= 0``.
        beta: see :func:`seesaw_losses.class_balanced_weights`, in ``[0, 1)``.
        ignore_index: as :class:`LDAMLoss`.
        reduction: as :class:`LDAMLoss`.

    Shape:
        - as :class:`LDAMLoss`.

    Examples:
        >>> criterion = LDAMDRWLoss(3, class_counts=[90, 9, 1], scale=1.0, start_epoch=2)
        >>> criterion.set_epoch(2)
        >>> criterion(torch.randn(4, 3, requires_grad=True), torch.tensor([0, 0, 1, 2])).backward()
    """

    def __init__(self, num_classes: int, *, class_counts: Counts, max_margin: float = 0.5, scale: float = 30.0,
                 start_epoch: int = 160, beta: float = 0.9999, ignore_index: Optional[int] = -100,
                 reduction: str = "mean") -> None:
        super().__init__(num_classes, max_margin=max_margin, scale=scale, class_counts=class_counts,
                         ignore_index=ignore_index, reduction=reduction)
        self._init_deferred(type(self).__name__, class_counts, num_classes, start_epoch, beta)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, start_epoch={self.start_epoch}, beta={self.beta}, epoch={int(self.epoch)}"


class AsymmetricLoss(nn.Module):
    r"""Asymmetric loss (Ridnik et al., ICCV 2021) for multi-label outputs.

    See :func:`seesaw_losses.functional.asymmetric_loss`; ``reduction="sum"`` gives the authors' (and timm's)
    value.

    Args:
        gamma_pos: focusing exponent of positives, ``>= 0``.
        gamma_neg: focusing exponent of negatives, ``>= 0``.
        clip: probability shift of negatives, in ``[0, 1)``.
        eps: floor of the probabilities inside the logs.
        ignore_index: target value to skip; None for none.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, *)``; target: the same shape, values in ``[0, 1]``.
        - weight (forward): per-element weights broadcastable to the target.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> criterion = AsymmetricLoss(gamma_neg=4.0, clip=0.05)
        >>> criterion(torch.randn(4, 10, requires_grad=True), (torch.rand(4, 10) < 0.2).float()).backward()
    """

    def __init__(self, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, eps: float = 1e-8,
                 ignore_index: Optional[int] = None, reduction: str = "mean") -> None:
        super().__init__()
        fn = "AsymmetricLoss"
        check_asymmetric_args(fn, gamma_pos, gamma_neg, clip, eps)
        check_reduction(fn, reduction)
        self.gamma_pos, self.gamma_neg, self.clip, self.eps = gamma_pos, gamma_neg, clip, eps
        self.ignore_index, self.reduction = ignore_index, reduction

    def extra_repr(self) -> str:
        return f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        target = check_asymmetric_tensors("AsymmetricLoss.forward", logits, target, weight, self.ignore_index)
        return _asymmetric_unchecked(logits, target, gamma_pos=self.gamma_pos, gamma_neg=self.gamma_neg,
                                     clip=self.clip, eps=self.eps, weight=weight, ignore_index=self.ignore_index,
                                     reduction=self.reduction)


class GradientStatistics(SyncedState):
    """The state of a gradient-balancing loss (EQLv2, EFL): the positive and negative gradient magnitudes per
    class accumulated in training, float64 buffers ``pos_grad`` and ``neg_grad``, summed over processes."""

    pos_grad: Tensor
    neg_grad: Tensor

    def _init_statistics(self, fn: str, num_classes: int, reduction: str, sync_counts: Optional[bool],
                         process_group: Any) -> None:
        check_int(fn, "num_classes", num_classes, low=1)
        check_reduction(fn, reduction)
        self._init_sync(fn, sync_counts, process_group)
        self.num_classes, self.reduction = num_classes, reduction
        for name in ("pos_grad", "neg_grad"):
            self.register_buffer(name, torch.zeros(num_classes, dtype=torch.float64))

    def reset_statistics(self) -> None:
        """Forget the accumulated gradients."""
        self.pos_grad.zero_()
        self.neg_grad.zero_()

    def _accumulate(self, statistics: Optional[Tensor]) -> None:
        """Add a batch's ``(2, C)`` statistics (None in eval mode), summed over the processes first.

        The buffers are replaced by new tensors, not updated in place: a backward still to come (gradient
        accumulation, or a compiled backward) must see the values its forward read."""
        if statistics is not None:
            statistics = self._sum_over_processes(statistics.to(self.pos_grad))
            self.pos_grad = self.pos_grad + statistics[0]
            self.neg_grad = self.neg_grad + statistics[1]


class EQLv2Loss(GradientStatistics):
    r"""Equalization loss v2 (Tan et al., CVPR 2021) with its gradient statistics kept as state.

    See :func:`seesaw_losses.functional.eqlv2_loss`. After each training-mode loss, the batch's positive and
    negative gradient magnitudes per class are added to the float64 buffers ``pos_grad`` and ``neg_grad``
    (saved in ``state_dict``, moved by ``.to()``); the next batch's weights come from them. In a
    ``torch.distributed`` job the batch's statistics are summed over the processes first, so every process holds
    the statistics of the global batch stream; on one process, or without ``torch.distributed``, nothing else
    changes (the authors' code calls ``all_reduce`` unconditionally and fails there). Eval mode leaves the
    statistics alone.

    Args:
        num_classes: number of classes ``C`` (without background).
        gamma: slope of the mapping function, ``>= 0``.
        mu: centre of the mapping function, ``>= 0``.
        alpha: extra weight of the positives, ``>= 0``.
        background_channel: the logits end with the background's (the authors' ``C + 1`` detection head).
        ignore_index: label that contributes neither loss nor statistics; None for none.
        reduction: ``"none"`` | ``"mean"`` (over samples) | ``"sum"``.
        sync_counts: as :class:`SeesawLoss`, for the statistics.
        process_group: as :class:`SeesawLoss`, for the statistics.

    Shape:
        - logits: ``(N, C)`` (``(N, C + 1)`` with background_channel), or with trailing ``(d1, ..., dK)``.
        - target: ``(N,)`` or ``(N, d1, ..., dK)`` class indices in ``[0, C)`` (``[0, C]`` with
          background_channel, ``C``: background).
        - output: scalar, or the logits' shape for ``reduction="none"``.

    Examples:
        >>> criterion = EQLv2Loss(5)
        >>> criterion(torch.randn(8, 5, requires_grad=True), torch.randint(0, 5, (8,))).backward()
    """

    def __init__(self, num_classes: int, *, gamma: float = 12.0, mu: float = 0.8, alpha: float = 4.0,
                 background_channel: bool = False, ignore_index: Optional[int] = -100, reduction: str = "mean",
                 sync_counts: Optional[bool] = None, process_group: Any = None) -> None:
        super().__init__()
        fn = "EQLv2Loss"
        check_eqlv2_args(fn, gamma, mu, alpha)
        self._init_statistics(fn, num_classes, reduction, sync_counts, process_group)
        self.gamma, self.mu, self.alpha = gamma, mu, alpha
        self.background_channel, self.ignore_index = background_channel, ignore_index

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, gamma={self.gamma}, mu={self.mu}, alpha={self.alpha}, "
                f"background_channel={self.background_channel}")

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        fn = "EQLv2Loss.forward"
        check_eqlv2_inputs(fn, logits, target, self.num_classes, self.background_channel, self.ignore_index)
        loss, statistics = _eqlv2_unchecked(
            logits, target, read_state(self.pos_grad), read_state(self.neg_grad), gamma=self.gamma, mu=self.mu,
            alpha=self.alpha, background_channel=self.background_channel, ignore_index=self.ignore_index,
            reduction=self.reduction, need_statistics=self.training)
        self._accumulate(statistics)
        return loss


class EqualizedFocalLoss(GradientStatistics):
    r"""Equalized focal loss (Li et al., CVPR 2022) with its gradient statistics kept as state.

    See :func:`seesaw_losses.functional.equalized_focal_loss`. As :class:`EQLv2Loss`: after each training-mode
    loss, the batch's positive and negative gradient magnitudes per class (of the reduced loss, as the authors'
    backward hook collects them) are summed over the processes of a ``torch.distributed`` job and added to the
    float64 buffers ``pos_grad`` and ``neg_grad`` (saved in ``state_dict``, moved by ``.to()``); the next
    batch's focusing factors come from them. The update replaces the buffers instead of writing into them, so
    the gradient is the same compiled or not. Eval mode leaves the statistics alone. A head that calls the
    loss once per feature level lets a batch's later levels see its earlier levels' statistics; the authors
    update once per batch.

    Args:
        num_classes: number of classes ``C`` (logits per sample; label ``C`` is background).
        gamma: the focal loss's focusing factor :math:`\gamma_b`, ``> 0``.
        scale: :math:`s`, the focusing factor added to a class with no positive gradient, ``>= 0``.
        alpha: the focal loss's balance of positives, in ``[0, 1]``; None for none.
        ignore_index: label that contributes neither loss nor statistics; None for none.
        reduction: ``"none"`` | ``"mean"`` (over samples, or ``avg_factor``) | ``"sum"``.
        sync_counts: as :class:`SeesawLoss`, for the statistics.
        process_group: as :class:`SeesawLoss`, for the statistics.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``.
        - target: ``(N,)`` or ``(N, d1, ..., dK)`` class indices in ``[0, C]`` (``C``: background).
        - weight (forward): per-sample weights broadcastable to the target.
        - output: scalar, or the logits' shape for ``reduction="none"``.

    Examples:
        >>> criterion = EqualizedFocalLoss(5)
        >>> criterion(torch.randn(8, 5, requires_grad=True), torch.randint(0, 6, (8,))).backward()
    """

    def __init__(self, num_classes: int, *, gamma: float = 2.0, scale: float = 8.0, alpha: Optional[float] = 0.25,
                 ignore_index: Optional[int] = -100, reduction: str = "mean", sync_counts: Optional[bool] = None,
                 process_group: Any = None) -> None:
        super().__init__()
        fn = "EqualizedFocalLoss"
        check_efl_args(fn, gamma, scale, alpha)
        self._init_statistics(fn, num_classes, reduction, sync_counts, process_group)
        self.gamma, self.scale, self.alpha, self.ignore_index = gamma, scale, alpha, ignore_index

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, gamma={self.gamma}, scale={self.scale}, alpha={self.alpha}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None, *,
                avg_factor: Optional[Union[float, Tensor]] = None, reduction: Optional[str] = None) -> Tensor:
        """``reduction`` overrides the module's for this call."""
        fn = "EqualizedFocalLoss.forward"
        reduction = self.reduction if reduction is None else reduction
        check_reduction(fn, reduction)
        check_avg_factor(fn, avg_factor, reduction)
        check_efl_inputs(fn, logits, target, self.num_classes, weight, self.ignore_index)
        loss, statistics = _efl_unchecked(
            logits, target, read_state(self.pos_grad), read_state(self.neg_grad), gamma=self.gamma,
            scale=self.scale, alpha=self.alpha, weight=weight, ignore_index=self.ignore_index, reduction=reduction,
            avg_factor=avg_factor, need_statistics=self.training)
        self._accumulate(statistics)
        return loss


_LONG_TAIL = ("multi-class", "long-tailed")
_COUNTS = dict(target="index", needs_counts=True, counts_argument="class_counts", state=("class_counts",))
_GRADIENT_STATISTICS = dict(tasks=("long-tailed", "detection"), target="index", state=("pos_grad", "neg_grad"))

register(LossEntry(
    name="logit_adjusted", function=logit_adjusted_loss, module=LogitAdjustedLoss, tasks=_LONG_TAIL,
    summary="logit-adjusted cross-entropy: CE of z + tau * log(prior), balanced argmax without post-processing",
    reference="Menon et al., Long-Tail Learning via Logit Adjustment, ICLR 2021", defaults={"tau": 1.0},
    search_space={"tau": Hyperparameter(0.0, 2.0)}, aliases=("la",), **_COUNTS))
register(LossEntry(
    name="balanced_softmax", function=balanced_softmax_loss, module=BalancedSoftmaxLoss, tasks=_LONG_TAIL,
    summary="Balanced Softmax: CE of the softmax weighted by the class counts (logit adjustment, tau = 1)",
    reference="Ren et al., Balanced Meta-Softmax for Long-Tailed Visual Recognition, NeurIPS 2020", **_COUNTS))
_LDAM_OPTIONS = dict(
    defaults={"max_margin": 0.5, "scale": 30.0},
    search_space={"max_margin": Hyperparameter(0.1, 1.0), "scale": Hyperparameter(1.0, 30.0, log=True)})
register(LossEntry(
    name="ldam", function=ldam_loss, module=LDAMLoss, tasks=_LONG_TAIL,
    summary="LDAM: CE after a margin proportional to n_c^(-1/4) on the true logit, logits times scale",
    reference="Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS 2019",
    **_LDAM_OPTIONS, **_COUNTS))
register(LossEntry(
    name="ldam_drw", function=ldam_loss, module=LDAMDRWLoss, tasks=_LONG_TAIL,
    summary="LDAM-DRW: LDAM with class-balanced weights deferred to a later epoch (set_epoch)",
    reference="Cao et al., NeurIPS 2019 (deferred re-weighting)",
    **_LDAM_OPTIONS, **{**_COUNTS, "state": ("epoch", "class_weight")}))
register(LossEntry(
    name="asymmetric", function=asymmetric_loss, module=AsymmetricLoss, tasks=("multi-label", "binary"),
    summary="asymmetric loss: focal-style weights with gamma_neg > gamma_pos and a probability shift on negatives",
    reference="Ridnik et al., Asymmetric Loss For Multi-Label Classification, ICCV 2021", target="binary",
    defaults={"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05}, aliases=("asl",),
    search_space={"gamma_neg": Hyperparameter(0.0, 6.0), "gamma_pos": Hyperparameter(0.0, 2.0),
                  "clip": Hyperparameter(0.0, 0.2)}))
register(LossEntry(
    name="eqlv2", function=eqlv2_loss, module=EQLv2Loss, **_GRADIENT_STATISTICS,
    summary="EQLv2: one-vs-all sigmoid CE with per-class weights that balance the accumulated positive and "
            "negative gradients",
    reference="Tan et al., Equalization Loss v2: A New Gradient Balance Approach for Long-tailed Object Detection, "
              "CVPR 2021",
    defaults={"gamma": 12.0, "mu": 0.8, "alpha": 4.0},
    search_space={"gamma": Hyperparameter(4.0, 16.0), "mu": Hyperparameter(0.5, 1.0),
                  "alpha": Hyperparameter(0.0, 8.0)}))
register(LossEntry(
    name="efl", function=equalized_focal_loss, module=EqualizedFocalLoss, **_GRADIENT_STATISTICS,
    background_label=True, aliases=("equalized_focal",),
    summary="equalized focal loss: sigmoid focal loss whose focusing factor and weight grow for classes whose "
            "accumulated positive gradient is small against their negative one (dense one-stage heads)",
    reference="Li et al., Equalized Focal Loss for Dense Long-Tailed Object Detection, CVPR 2022",
    defaults={"gamma": 2.0, "scale": 8.0, "alpha": 0.25},
    search_space={"gamma": Hyperparameter(1.0, 3.0), "scale": Hyperparameter(0.0, 16.0),
                  "alpha": Hyperparameter(0.1, 0.9)}))
