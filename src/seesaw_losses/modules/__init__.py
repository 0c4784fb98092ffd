"""``nn.Module`` forms of the losses: validated configuration, buffers, and one call into the function.

Each family's file also registers its losses (:mod:`seesaw_losses.registry`).
"""

from .bce import WeightedBCELoss
from .focal import SigmoidFocalLoss, SoftmaxFocalLoss
from .long_tail import (
    AsymmetricLoss, BalancedSoftmaxLoss, EQLv2Loss, EqualizedFocalLoss, LDAMDRWLoss, LDAMLoss, LogitAdjustedLoss,
)
from .lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from .overlap import DiceLoss, FocalTverskyLoss, GeneralizedDiceLoss, JaccardLoss, TverskyLoss
from .seesaw import BinarySeesawLoss, SeesawLoss
from .topology import BoundaryLoss, ClDiceLoss, SkeletonRecallLoss
from .weighting import DeferredReweighting
from . import cross_entropy  # noqa: E402,F401  (registers ce and class_balanced_ce)

__all__ = [
    "AsymmetricLoss",
    "BalancedSoftmaxLoss",
    "BinarySeesawLoss",
    "BoundaryLoss",
    "ClDiceLoss",
    "DeferredReweighting",
    "DiceLoss",
    "EQLv2Loss",
    "EqualizedFocalLoss",
    "FocalTverskyLoss",
    "GeneralizedDiceLoss",
    "JaccardLoss",
    "LDAMDRWLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "SeesawLoss",
    "SigmoidFocalLoss",
    "SkeletonRecallLoss",
    "SoftmaxFocalLoss",
    "TverskyLoss",
    "WeightedBCELoss",
]
