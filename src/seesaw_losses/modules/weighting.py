"""Deferred re-weighting: a schedule that switches a loss's per-class weights on at a given epoch."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..functional._validation import check_int, fail
from ..functional.weighting import class_balanced_weights


class DeferredWeights(nn.Module):
    """The schedule of deferred re-weighting, for a module whose ``class_weight`` buffer it sets (itself, or the
    loss that :meth:`_reweighted` returns): uniform weights before ``start_epoch``, class-balanced from it on.

    The epoch is a 0-d int64 buffer, so ``state_dict`` carries it and loading one restores the matching
    weights."""

    epoch: Tensor
    balanced_weight: Tensor

    def _init_deferred(self, fn: str, class_counts: Union[Tensor, Sequence[float]], num_classes: Optional[int],
                       start_epoch: int, beta: float) -> None:
        check_int(fn, "start_epoch", start_epoch, low=0)
        weights = class_balanced_weights(class_counts, beta)
        if num_classes is not None and weights.numel() != num_classes:
            fail(fn, "class_counts", f"a 1-D tensor of {num_classes} class counts (the loss's classes)",
                 f"{weights.numel()} counts")
        self.start_epoch, self.beta = start_epoch, beta
        self.register_buffer("balanced_weight", weights)
        self.register_buffer("epoch", torch.zeros((), dtype=torch.int64))
        self._apply_epoch()

    def _reweighted(self) -> nn.Module:
        return self

    @property
    def reweighting(self) -> bool:
        """Whether the class-balanced weights are on (``epoch >= start_epoch``)."""
        return int(self.epoch) >= self.start_epoch

    def set_epoch(self, epoch: int) -> None:
        """Enter ``epoch`` (0-based): uniform weights before ``start_epoch``, class-balanced from it on."""
        check_int(f"{type(self).__name__}.set_epoch", "epoch", epoch, low=0)
        self.epoch.fill_(epoch)
        self._apply_epoch()

    def _apply_epoch(self) -> None:
        weight = self.balanced_weight if self.reweighting else torch.ones_like(self.balanced_weight)
        self._reweighted().class_weight = weight.clone()

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._apply_epoch()


class DeferredReweighting(DeferredWeights):
    r"""Deferred re-weighting (the "DRW" of Cao et al.'s LDAM-DRW, NeurIPS 2019) for any loss with per-class
    weights.

    Before ``start_epoch`` the wrapped loss trains with uniform weights (the features learn from every sample
    alike); from ``start_epoch`` on it uses class-balanced weights
    :math:`w_c \propto (1 - \beta) / (1 - \beta^{n_c})` (:func:`seesaw_losses.class_balanced_weights`), which
    move the decision boundaries towards the rare classes. Call :meth:`set_epoch` at the start of every epoch
    (the ``seesaw`` trainer calls it on every loss module that has it). The epoch is saved in ``state_dict``, so a
    resumed run continues with the right weights. :class:`seesaw_losses.LDAMDRWLoss` is LDAM with this schedule
    built in.

    Args:
        loss: a module with a ``class_weight`` buffer (e.g. :class:`LDAMLoss`, :class:`LogitAdjustedLoss`).
        class_counts: training samples per class.
        start_epoch: first epoch (0-based) with class-balanced weights, ``>= 0``.
        beta: see :func:`seesaw_losses.class_balanced_weights`, in ``[0, 1)``.

    Shape:
        - whatever ``loss`` takes and returns.

    Examples:
        >>> criterion = DeferredReweighting(LDAMLoss(3, class_counts=[90, 9, 1]), [90, 9, 1], start_epoch=2)
        >>> criterion.set_epoch(2); criterion.loss.class_weight.sum()
        tensor(3.)
    """

    def __init__(self, loss: nn.Module, class_counts: Union[Tensor, Sequence[float]], *, start_epoch: int,
                 beta: float = 0.9999) -> None:
        super().__init__()
        fn = "DeferredReweighting"
        if not isinstance(loss, nn.Module) or "class_weight" not in loss._buffers:
            fail(fn, "loss", "a loss module with a class_weight buffer", type(loss).__name__,
                 "e.g. LDAMLoss or LogitAdjustedLoss", error=TypeError)
        self.loss = loss
        self._init_deferred(fn, class_counts, getattr(loss, "num_classes", None), start_epoch, beta)

    def _reweighted(self) -> nn.Module:
        return self.loss

    def extra_repr(self) -> str:
        return f"start_epoch={self.start_epoch}, beta={self.beta}, epoch={int(self.epoch)}"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.loss(*args, **kwargs)
