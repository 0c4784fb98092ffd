"""MMDetection and mmengine: the box-head form of Seesaw, the dense-head form of equalized focal loss, and the
library's losses in an mmengine registry.

Importing this module (``custom_imports=dict(imports=['seesaw_losses.integrations.mmdet'])`` in an MMDetection
config) registers every loss of :func:`seesaw_losses.available_losses` in :data:`MODELS`, an mmengine registry
with scope ``seesaw_losses``, under its registry name (``'dice'``, ``'focal'``...) and its class name
(``'DiceLoss'``...). ``SeesawLoss`` and ``EqualizedFocalLoss`` there are the classes below, which follow
MMDetection's loss protocol, so a two-stage config says::

    loss_cls=dict(type='seesaw_losses.SeesawLoss', p=0.8, q=2.0, num_classes=1203)

and a RetinaNet/FCOS config ``loss_cls=dict(type='seesaw_losses.EqualizedFocalLoss', use_sigmoid=True,
num_classes=1203)``; the core modules are ``type='seesaw_losses.seesaw'`` and ``'seesaw_losses.efl'``. Needs
``mmengine`` (``pip install mmengine``).
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
from ..modules.long_tail import EqualizedFocalLoss as CoreEqualizedFocalLoss
from ..registry import available_losses

try:
    from mmengine.registry import MODELS as _MMENGINE_MODELS
    from mmengine.registry import Registry
except ImportError as error:  # pragma: no cover - exercised in a subprocess without mmengine
    raise ImportError("seesaw_losses.integrations.mmdet needs mmengine; install it with `pip install mmengine`"
                      ) from error


def _accuracy(scores: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy in percent, shaped as MMDetection reports it: ``(1,)``, or a 0-d 0 for an empty batch."""
    if labels.numel() == 0:
        return scores.new_tensor(0.0)
    return (scores.argmax(-1) == labels).float().mean().reshape(1) * 100.0


class SeesawLoss(ClassCountsMixin):
    r"""MMDetection's ``SeesawLoss`` for a Mask R-CNN box head, on the library's Seesaw function.

    The logits hold ``C`` class scores followed by 2 objectness scores (object, background); labels lie in
    ``[0, C]`` with ``C`` meaning background. The Seesaw term (:func:`seesaw_losses.functional.seesaw_loss`) is
    computed over the positives, a 2-way objectness cross-entropy over all samples; both are scaled by
    ``loss_weight`` and returned as ``{"loss_cls_objectness", "loss_cls_classes"}`` (``return_dict=True``) or
    summed. In training mode the labels are counted first (background in the ``background_count`` buffer),
    once the call's arguments are all valid. ``get_cls_channels``, ``get_activation`` and ``get_accuracy`` have
    MMDetection's meaning. The counts are saved as exact int64 ``class_counts`` and ``background_count`` and,
    beside them, as MMDetection's ``cum_samples`` (``C + 1`` floats, :attr:`cum_samples`), so a checkpoint moves
    either way between this loss and MMDetection's: ``load_state_dict`` reads ``cum_samples`` when the int64
    counts are absent and skips it when they are there.

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

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "cum_samples"] = self.cum_samples

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        if prefix + "class_counts" in state_dict:
            state_dict.pop(prefix + "cum_samples", None)      # the float copy of the counts read next
        super()._load_from_state_dict(state_dict, prefix, *args)

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


class EqualizedFocalLoss(CoreEqualizedFocalLoss):
    r"""Equalized focal loss (:class:`seesaw_losses.EqualizedFocalLoss`) with MMDetection's loss protocol, for
    dense one-stage heads with one sigmoid logit per class (RetinaNet, FCOS, ATSS...): a drop-in for their
    ``FocalLoss``::

        loss_cls=dict(type='seesaw_losses.EqualizedFocalLoss', use_sigmoid=True, num_classes=1203,
                      gamma=2.0, alpha=0.25, scale=8.0, loss_weight=1.0)

    Labels lie in ``[0, C]`` with ``C`` meaning background; ``label_weights`` weigh the anchors (0 for the
    ignored ones) and ``avg_factor`` (the number of positives) divides the sum, as the head passes them. The
    statistics are the gradients of the loss before ``loss_weight``.

    Args:
        use_sigmoid: must be True (EFL is a sigmoid loss), as MMDetection's heads read it.
        num_classes: number of classes ``C``.
        gamma: as :class:`seesaw_losses.EqualizedFocalLoss`.
        scale: as :class:`seesaw_losses.EqualizedFocalLoss`.
        alpha: as :class:`seesaw_losses.EqualizedFocalLoss`.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        loss_weight: factor on the loss.
        sync_counts: as :class:`seesaw_losses.EqualizedFocalLoss`.
        process_group: as :class:`seesaw_losses.EqualizedFocalLoss`.

    Shape:
        - pred: ``(N, C)``; target: ``(N,)`` integer in ``[0, C]``; weight: broadcastable to ``(N,)``.
        - output: scalar, or ``(N, C)`` for ``reduction="none"``.
    """

    def __init__(self, use_sigmoid: bool = True, num_classes: int = 1203, gamma: float = 2.0, scale: float = 8.0,
                 alpha: Optional[float] = 0.25, reduction: str = "mean", loss_weight: float = 1.0, *,
                 sync_counts: Optional[bool] = None, process_group: Any = None) -> None:
        if not use_sigmoid:
            fail("mmdet.EqualizedFocalLoss", "use_sigmoid", "True", use_sigmoid, "EFL is a sigmoid loss")
        check_number("mmdet.EqualizedFocalLoss", "loss_weight", loss_weight)
        super().__init__(num_classes, gamma=gamma, scale=scale, alpha=alpha, ignore_index=None,
                         reduction=reduction, sync_counts=sync_counts, process_group=process_group)
        self.use_sigmoid, self.loss_weight = use_sigmoid, loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,  # type: ignore[override]
                avg_factor: Optional[Union[float, Tensor]] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        if reduction_override is not None:
            check_choice("mmdet.EqualizedFocalLoss.forward", "reduction_override", reduction_override, REDUCTIONS)
        return self.loss_weight * super().forward(pred, target, weight, avg_factor=avg_factor,
                                                  reduction=reduction_override)


MODELS = Registry("model", parent=_MMENGINE_MODELS, scope="seesaw_losses")
"""The library's losses, for mmengine-based frameworks (MMDetection, MMSegmentation, mmpretrain)."""


def _register_library() -> None:
    MODELS.register_module(name="SeesawLoss", module=SeesawLoss)
    MODELS.register_module(name="EqualizedFocalLoss", module=EqualizedFocalLoss)
    for entry in available_losses():
        builder = entry.builder
        for name in (entry.name,) + entry.aliases:
            MODELS.register_module(name=name, module=builder)
        if inspect.isclass(builder) and builder.__name__ not in MODELS.module_dict:
            MODELS.register_module(name=builder.__name__, module=builder)


_register_library()

__all__ = ["MODELS", "EqualizedFocalLoss", "SeesawLoss"]
