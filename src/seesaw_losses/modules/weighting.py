"""Deferred re-weighting: a schedule that switches a loss's per-class weights on at a given epoch."""

from __future__ import annotations

from typing import Any, Dict, Sequence, Union

import torch
from torch import Tensor, nn

from ..functional._validation import check_int, fail
from ..functional.weighting import class_balanced_weights


class DeferredReweighting(nn.Module):
    r"""Deferred re-weighting (the "DRW" of Cao et al.'s LDAM-DRW, NeurIPS 2019) for any loss with per-class
    weights.

    Before ``start_epoch`` the wrapped loss trains with uniform weights (the features learn from every sample
    alike); from ``start_epoch`` on it uses class-balanced weights
    :math:`w_c \propto (1 - \beta) / (1 - \beta^{n_c})` (:func:`seesaw_losses.class_balanced_weights`), which
    move the decision boundaries towards the rare classes. Call :meth:`set_epoch` at the start of every epoch
    (the ``seesaw`` trainer calls it on every loss module that has it). The epoch is saved in ``state_dict``, so a
    resumed run continues with the right weights.

    Args:
        loss: a module with a ``class_weight`` buffer (e.g. :class:`LDAMLoss`, :class:`LogitAdjustedLoss`).
        class_counts: training samples per class.
        start_epoch: first epoch (0-based) with class-balanced weights, ``>= 0``.
        beta: see :func:`seesaw_losses.class_balanced_weights`, in ``[0, 1)``.

    Shape:
        - whatever ``loss`` takes and returns.

    Example:
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
        check_int(fn, "start_epoch", start_epoch, low=0)
        weights = class_balanced_weights(class_counts, beta)
        num_classes = getattr(loss, "num_classes", weights.numel())
        if weights.numel() != num_classes:
            fail(fn, "class_counts", f"a 1-D tensor of {num_classes} class counts (the loss's classes)",
                 f"{weights.numel()} counts")
        self.loss, self.start_epoch, self.beta, self.epoch = loss, start_epoch, beta, 0
        self.register_buffer("balanced_weight", weights)
        self._apply_epoch()

    def extra_repr(self) -> str:
        return f"start_epoch={self.start_epoch}, beta={self.beta}, epoch={self.epoch}"

    @property
    def reweighting(self) -> bool:
        """Whether the class-balanced weights are on (``epoch >= start_epoch``)."""
        return self.epoch >= self.start_epoch

    def set_epoch(self, epoch: int) -> None:
        """Enter ``epoch`` (0-based): uniform weights before ``start_epoch``, class-balanced from it on."""
        check_int("DeferredReweighting.set_epoch", "epoch", epoch, low=0)
        self.epoch = epoch
        self._apply_epoch()

    def _apply_epoch(self) -> None:
        weight = self.balanced_weight if self.reweighting else torch.ones_like(self.balanced_weight)
        self.loss.class_weight = weight.clone()

    def get_extra_state(self) -> Dict[str, Any]:
        return {"epoch": self.epoch}

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self._apply_epoch()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.loss(*args, **kwargs)
