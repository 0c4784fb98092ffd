"""MMDetection and mmengine: the box-head form of Seesaw, and the library's losses in an mmengine registry.

Importing this module (``custom_imports=dict(imports=['seesaw_losses.integrations.mmdet'])`` in an MMDetection
config) registers every loss of :func:`seesaw_losses.available_losses` in :data:`MODELS`, an mmengine registry
with scope ``seesaw_losses``, under its registry name (``'dice'``, ``'focal'``...) and its class name
(``'DiceLoss'``...). ``SeesawLoss`` there is :class:`SeesawLoss` below, MMDetection's drop-in, so a config says::

    loss_cls=dict(type='seesaw_losses.SeesawLoss', p=0.8, q=2.0, num_classes=1203)

and the core Seesaw module is ``type='seesaw_losses.seesaw'``. Needs ``mmengine`` (``pip install mmengine``).
"""

from __future__ import annotations

import inspect
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..functional._targets import count_labels
from ..functional._validation import (
    REDUCTIONS, check_avg_factor, check_choice, check_element_weight, check_index_target, check_int, check_logits,
    check_number, fail,
)
from ..functional.seesaw import _seesaw_loss_unchecked, check_seesaw_options
from ..modules._class_counts import ClassCountsMixin
from ..registry import available_losses

try:
    from mmengine.registry import MODELS as _MMENGINE_MODELS
    from mmengine.registry import Registry
except ImportError as error:  # pragma: no cover - exercised in a subprocess without mmengine
    raise ImportError("seesaw_losses.integrations.mmdet needs mmengine; install it with `pip install mmengine`"
                      ) from error


def _accuracy(scores: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy in percent (0 for an empty batch), as MMDetection reports it."""
    if labels.numel() == 0:
        return scores.new_tensor(0.0)
    return (scores.argmax(-1) == labels).float().mean() * 100.0


class SeesawLoss(ClassCountsMixin):
    r"""MMDetection's ``SeesawLoss`` for a Mask R-CNN box head, on the library's Seesaw function.

    The logits hold ``C`` class scores followed by 2 objectness scores (object, background); labels lie in
    ``[0, C]`` with ``C`` meaning background. The Seesaw term (:func:`seesaw_losses.functional.seesaw_loss`) is
    computed over the positives, a 2-way objectness cross-entropy over all samples; both are scaled by
    ``loss_weight`` and returned as ``{"loss_cls_objectness", "loss_cls_classes"}`` (``return_dict=True``) or
    summed. In training mode the labels are counted first (background in the ``background_count`` buffer),
    once the call's arguments are all valid. ``get_cls_channels``, ``get_activation`` and ``get_accuracy`` have
    MMDetection's meaning. ``load_state_dict`` reads MMDetection's ``cum_samples`` buffer (``C + 1`` floats), and
    :attr:`cum_samples` shows the counts that way; they are saved as exact int64 ``class_counts`` and
    ``background_count``.

    Args:
        use_sigmoid: must be False (Seesaw is a softmax loss), as in MMDetection.
        p: mitigation exponent, ``>= 0``.
        q: compensation exponent, ``>= 0``.
        num_classes: number of classes ``C``, background excluded.
        eps: floor of the true class's probability in the compensation ratio.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        loss_weight: factor on both terms.
        return_dict: return the two terms as a dict (else their sum).
        sync_counts: sum the counts over processes, as in :class:`seesaw_losses.SeesawLoss`.
        process_group: the processes to sum over, as in :class:`seesaw_losses.SeesawLoss`.

    Shape:
        - cls_score: ``(N, C + 2)``; labels: ``(N,)`` integer in ``[0, C]``.
        - label_weights: per-sample weights broadcastable to ``(N,)``.
        - output: each term a scalar, or ``(N,)`` for ``reduction="none"`` (0 for background in the class term).

    Examples:
        >>> criterion = SeesawLoss(num_classes=8)
        >>> scores = torch.randn(16, criterion.get_cls_channels(8), requires_grad=True)
        >>> losses = criterion(scores, torch.randint(0, 9, (16,)))
        >>> sum(losses.values()).backward()
    """

    custom_cls_channels = True
    custom_activation = True
    custom_accuracy = True

    def __init__(self, use_sigmoid: bool = False, p: float = 0.8, q: float = 2.0, num_classes: int = 1203,
                 eps: float = 1e-2, reduction: str = "mean", loss_weight: float = 1.0, return_dict: bool = True,
                 *, sync_counts: Optional[bool] = None, process_group: Any = None) -> None:
        super().__init__()
        fn = "mmdet.SeesawLoss"
        if use_sigmoid:
            fail(fn, "use_sigmoid", "False", use_sigmoid, "Seesaw is a softmax loss")
        check_int(fn, "num_classes", num_classes, low=1)
        check_seesaw_options(fn, p, q, eps, reduction)
        check_number(fn, "loss_weight", loss_weight)
        self.use_sigmoid, self.num_classes, self.p, self.q, self.eps = use_sigmoid, num_classes, p, q, eps
        self.reduction, self.loss_weight, self.return_dict = reduction, loss_weight, return_dict
        self._init_counts(fn, num_classes, sync_counts=sync_counts, process_group=process_group, background=True)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, p={self.p}, q={self.q}, eps={self.eps}, "
                f"reduction={self.reduction!r}, loss_weight={self.loss_weight}")

    @property
    def cum_samples(self) -> Tensor:
        """The counts as MMDetection's ``cum_samples`` buffer holds them: ``C + 1`` floats, background last."""
        return torch.cat([self.class_counts, self.background_count.view(1)]).float()

    def get_cls_channels(self, num_classes: int) -> int:
        """Number of logits the classifier must output for ``num_classes`` classes: ``C + 2``."""
        if num_classes != self.num_classes:
            fail("mmdet.SeesawLoss.get_cls_channels", "num_classes",
                 f"equal to the loss's num_classes ({self.num_classes})", num_classes)
        return num_classes + 2

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """``[p(class) * p(object), p(background)]``, shape ``(N, C + 1)``."""
        classes, objectness = self._split(cls_score, "mmdet.SeesawLoss.get_activation")
        score_objectness = F.softmax(objectness, dim=-1)
        scores = F.softmax(classes, dim=-1) * score_objectness[..., :1]
        return torch.cat([scores, score_objectness[..., 1:]], dim=-1)

    def get_accuracy(self, cls_score: Tensor, labels: Tensor) -> dict:
        """Top-1 accuracy in percent: ``{"acc_objectness", "acc_classes"}``."""
        classes, objectness = self._split(cls_score, "mmdet.SeesawLoss.get_accuracy")
        positive = labels < self.num_classes
        return {
            "acc_objectness": _accuracy(objectness, (labels == self.num_classes).long()),
            "acc_classes": _accuracy(classes[positive], labels[positive]),
        }

    def _split(self, cls_score: Tensor, fn: str):
        if not isinstance(cls_score, Tensor) or cls_score.shape[-1:] != (self.num_classes + 2,):
            fail(fn, "cls_score", f"of {self.num_classes + 2} channels (C classes + 2 objectness) in the last "
                 "dimension", cls_score, "build the head with get_cls_channels(num_classes) outputs")
        return cls_score[..., :-2], cls_score[..., -2:]

    def forward(self, cls_score: Tensor, labels: Tensor, label_weights: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None,
                reduction_override: Optional[str] = None) -> Union[Tensor, dict]:
        fn = "mmdet.SeesawLoss.forward"
        if reduction_override is not None:
            check_choice(fn, "reduction_override", reduction_override, REDUCTIONS)
        reduction = reduction_override or self.reduction
        check_logits(fn, cls_score, min_dim=2)
        if cls_score.dim() != 2:
            fail(fn, "cls_score", f"a (N, {self.num_classes + 2}) tensor", cls_score)
        classes, objectness = self._split(cls_score, fn)
        check_index_target(fn, cls_score, labels, None, num_classes=self.num_classes + 1)
        check_element_weight(fn, label_weights, labels.shape)
        check_avg_factor(fn, avg_factor, reduction)
        if self.training:
            self.accumulate(count_labels(labels, self.num_classes + 1))
        background = labels == self.num_classes
        options = dict(eps=self.eps, class_weight=None, weight=label_weights, reduction=reduction,
                       avg_factor=avg_factor)
        loss_classes = _seesaw_loss_unchecked(classes, labels.masked_fill(background, -1), self.class_counts,
                                              p=self.p, q=self.q, ignore_index=-1, **options)
        loss_objectness = _seesaw_loss_unchecked(objectness, background.long(), None, p=0.0, q=0.0,
                                                 ignore_index=None, **options)   # p = q = 0: cross-entropy
        loss_classes, loss_objectness = loss_classes * self.loss_weight, loss_objectness * self.loss_weight
        if self.return_dict:
            return {"loss_cls_objectness": loss_objectness, "loss_cls_classes": loss_classes}
        return loss_classes + loss_objectness


MODELS = Registry("model", parent=_MMENGINE_MODELS, scope="seesaw_losses")
"""The library's losses, for mmengine-based frameworks (MMDetection, MMSegmentation, mmpretrain)."""


def _register_library() -> None:
    MODELS.register_module(name="SeesawLoss", module=SeesawLoss)
    for entry in available_losses():
        builder = entry.builder
        for name in (entry.name,) + entry.aliases:
            MODELS.register_module(name=name, module=builder)
        if inspect.isclass(builder) and builder.__name__ not in MODELS.module_dict:
            MODELS.register_module(name=builder.__name__, module=builder)


_register_library()

__all__ = ["MODELS", "SeesawLoss"]
