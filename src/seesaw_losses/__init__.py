"""seesaw-losses: losses for class-imbalanced segmentation and classification."""

from . import functional, modules
from ._version import __version__
from .compose import CombinedLoss, build_loss
from .registry import LossEntry, available_losses, get_loss, register
from .functional import (
    adjust_logits, blended_weights, class_balanced_weights, class_counts, class_weights, inverse_frequency_weights,
    inverse_sqrt_weights, pos_weight_from_counts, set_value_checks, value_checks,
)
from .modules import (
    AsymmetricLoss, BalancedSoftmaxLoss, BinarySeesawLoss, BoundaryLoss, ClDiceLoss, DeferredReweighting, DiceLoss,
    EQLv2Loss, EqualizedFocalLoss, FocalTverskyLoss, GeneralizedDiceLoss, JaccardLoss, LDAMDRWLoss, LDAMLoss, LogitAdjustedLoss,
    LovaszHingeLoss, LovaszSoftmaxLoss, SeesawLoss, SigmoidFocalLoss, SkeletonRecallLoss, SoftmaxFocalLoss,
    TverskyLoss, WeightedBCELoss,
)

__all__ = [
    "CombinedLoss",
    "LossEntry",
    "__version__",
    "adjust_logits",
    "available_losses",
    "blended_weights",
    "build_loss",
    "class_balanced_weights",
    "class_counts",
    "class_weights",
    "functional",
    "get_loss",
    "inverse_frequency_weights",
    "inverse_sqrt_weights",
    "pos_weight_from_counts",
    "register",
    "set_value_checks",
    "value_checks",
    *modules.__all__,
]


def __getattr__(name: str):
    """``compare`` (the comparison of losses on your own model) is imported on first use: it needs the ``cli``
    extra (numpy, optuna, ...), which ``import seesaw_losses`` does not."""
    if name == "compare":
        from .experiments.api import compare

        return compare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
