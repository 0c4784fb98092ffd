"""What the benchmark runs: the library's losses, the same formulas under plain autograd, PyTorch's native
losses (the practical floor) and peers.

The peers that cannot be installed here are written out plainly from their published formulas: torchvision's
``sigmoid_focal_loss`` and MMDetection's Seesaw math (``cum_samples`` ratio matrix, softmax compensation,
``log`` of the weights added to the non-target logits, then ``cross_entropy``). MONAI and kornia run when
installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import functional as L
from ..functional._fused import plain_formula
from .workloads import Workload

SEESAW_P, SEESAW_Q, SEESAW_EPS = 0.8, 2.0, 1e-2
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
BCE_POS_WEIGHT = 10.0

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(logits, target, class_counts) -> scalar loss``."""


@dataclass(frozen=True)
class Candidate:
    """One implementation: ``group`` is ``"native"`` (the ratio baseline), ``"library"``, ``"plain"`` (the
    library's formula under plain autograd; ``pair`` names its library row) or ``"peer"``."""

    name: str
    group: str
    fn: LossFn
    pair: Optional[str] = None


def torchvision_sigmoid_focal(logits: Tensor, target: Tensor, alpha: float = FOCAL_ALPHA,
                              gamma: float = FOCAL_GAMMA) -> Tensor:
    """torchvision's ``sigmoid_focal_loss`` formula, ``reduction="mean"``."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * loss).mean()


def mmdet_seesaw(cls_score: Tensor, labels: Tensor, cum_samples: Tensor, p: float = SEESAW_P,
                 q: float = SEESAW_Q, eps: float = SEESAW_EPS) -> Tensor:
    """MMDetection's Seesaw math on ``(N, C)`` scores (dense inputs are flattened to that layout), mean over N."""
    if cls_score.dim() > 2:
        cls_score = cls_score.movedim(1, -1).reshape(-1, cls_score.shape[1])
        labels = labels.reshape(-1)
    num_classes = cls_score.shape[1]
    onehot = F.one_hot(labels, num_classes).to(cls_score.dtype)
    seesaw_weights = cls_score.new_ones(onehot.shape)
    if p > 0:
        counts = cum_samples.to(cls_score.dtype)
        ratio = counts[None, :].clamp(min=1) / counts[:, None].clamp(min=1)
        below = (ratio < 1.0).to(cls_score.dtype)
        sample_weights = ratio.pow(p) * below + (1 - below)
        seesaw_weights = seesaw_weights * sample_weights[labels, :]
    if q > 0:
        scores = F.softmax(cls_score.detach(), dim=1)
        self_scores = scores[torch.arange(len(scores), device=scores.device), labels]
        score_matrix = scores / self_scores[:, None].clamp(min=eps)
        above = (score_matrix > 1.0).to(cls_score.dtype)
        seesaw_weights = seesaw_weights * (score_matrix.pow(q) * above + (1 - above))
    cls_score = cls_score + seesaw_weights.log() * (1 - onehot)
    return F.cross_entropy(cls_score, labels)


def _plain(name: str, fn: LossFn) -> Candidate:
    def plain(logits: Tensor, target: Tensor, counts: Tensor) -> Tensor:
        with plain_formula():
            return fn(logits, target, counts)
    return Candidate(f"{name} (plain autograd)", "plain", plain, pair=name)


def _library(name: str, fn: LossFn) -> List[Candidate]:
    return [Candidate(name, "library", fn), _plain(name, fn)]


def _binary_candidates() -> List[Candidate]:
    rows = [Candidate("F.binary_cross_entropy_with_logits", "native",
                      lambda x, t, c: F.binary_cross_entropy_with_logits(x, t))]
    rows += _library("sigmoid_focal_loss", lambda x, t, c: L.sigmoid_focal_loss(x, t, alpha=FOCAL_ALPHA,
                                                                                gamma=FOCAL_GAMMA))
    rows += _library("binary_seesaw_loss", lambda x, t, c: L.binary_seesaw_loss(x, t, c, p=SEESAW_P, q=SEESAW_Q))
    rows += _library("weighted_bce_loss", lambda x, t, c: L.weighted_bce_loss(x, t, pos_weight=BCE_POS_WEIGHT))
    rows += _library("dice_loss", lambda x, t, c: L.dice_loss(x, t))
    rows += _library("tversky_loss", lambda x, t, c: L.tversky_loss(x, t))
    rows.append(Candidate("torchvision focal formula", "peer", lambda x, t, c: torchvision_sigmoid_focal(x, t)))
    rows += _monai_binary() + _kornia_binary()
    return rows


def _multiclass_candidates(workload: Workload) -> List[Candidate]:
    rows = [Candidate("F.cross_entropy", "native", lambda x, t, c: F.cross_entropy(x, t))]
    rows += _library("seesaw_loss", lambda x, t, c: L.seesaw_loss(x, t, c, p=SEESAW_P, q=SEESAW_Q, eps=SEESAW_EPS))
    rows += _library("seesaw_loss p=q=0 (CE)", lambda x, t, c: L.seesaw_loss(x, t, c, p=0, q=0))
    rows += _library("softmax_focal_loss", lambda x, t, c: L.softmax_focal_loss(x, t, gamma=FOCAL_GAMMA))
    dense = len(workload.shape) > 2
    if dense:
        rows += _library("dice_loss (softmax)", lambda x, t, c: L.dice_loss(x, t, activation="softmax"))
    rows.append(Candidate("MMDetection Seesaw math", "peer", mmdet_seesaw))
    if dense:
        rows += _monai_dense()
    rows += _kornia_multiclass(dense)
    return rows


def _monai_binary() -> List[Candidate]:
    try:
        from monai.losses import DiceLoss, FocalLoss
    except ImportError:
        return []
    focal = FocalLoss(gamma=FOCAL_GAMMA, alpha=FOCAL_ALPHA)
    dice = DiceLoss(sigmoid=True)
    return [Candidate("MONAI FocalLoss", "peer", lambda x, t, c: focal(x, t)),
            Candidate("MONAI DiceLoss(sigmoid)", "peer", lambda x, t, c: dice(x, t))]


def _monai_dense() -> List[Candidate]:
    try:
        from monai.losses import DiceLoss, FocalLoss
    except ImportError:
        return []
    focal = FocalLoss(gamma=FOCAL_GAMMA, to_onehot_y=True, use_softmax=True)
    dice = DiceLoss(softmax=True, to_onehot_y=True)
    return [Candidate("MONAI FocalLoss(softmax)", "peer", lambda x, t, c: focal(x, t.unsqueeze(1))),
            Candidate("MONAI DiceLoss(softmax)", "peer", lambda x, t, c: dice(x, t.unsqueeze(1)))]


def _kornia_binary() -> List[Candidate]:
    try:
        from kornia.losses import binary_focal_loss_with_logits
    except ImportError:
        return []
    return [Candidate("kornia binary_focal_loss_with_logits", "peer", lambda x, t, c: binary_focal_loss_with_logits(
        x, t, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, reduction="mean"))]


def _kornia_multiclass(dense: bool) -> List[Candidate]:
    try:
        from kornia.losses import dice_loss, focal_loss
    except ImportError:
        return []
    rows = [Candidate("kornia focal_loss", "peer", lambda x, t, c: focal_loss(
        x, t, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, reduction="mean"))]
    if dense:
        rows.append(Candidate("kornia dice_loss", "peer", lambda x, t, c: dice_loss(x, t)))
    return rows


def candidates(workload: Workload) -> List[Candidate]:
    """Every implementation that runs on ``workload``, the native baseline first."""
    return _binary_candidates() if workload.kind == "binary" else _multiclass_candidates(workload)
