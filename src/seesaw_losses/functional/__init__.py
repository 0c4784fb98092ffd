"""Pure loss functions. Stateful quantities (class counts) are arguments; the modules in
:mod:`seesaw_losses` own them."""

from ._targets import count_labels
from ._triton_guard import use_triton
from ._validation import set_value_checks, value_checks
from .asymmetric import asymmetric_loss
from .bce import weighted_bce_loss
from .binary_seesaw import binary_counts, binary_seesaw_loss
from .efl import efl_gammas, equalized_focal_loss
from .eqlv2 import eqlv2_loss, eqlv2_weights
from .focal import sigmoid_focal_loss, softmax_focal_loss
from .ldam import ldam_loss, ldam_margins
from .logit_adjusted import adjust_logits, balanced_softmax_loss, logit_adjusted_loss
from .lovasz import lovasz_hinge_loss, lovasz_softmax_loss
from .overlap import dice_loss, focal_tversky_loss, generalized_dice_loss, jaccard_loss, tversky_loss
from .seesaw import seesaw_loss
from .topology import boundary_loss, cldice_loss, skeleton_recall_loss, soft_skeleton
from .weighting import (
    blended_weights, class_balanced_weights, class_counts, class_weights, inverse_frequency_weights,
    inverse_sqrt_weights, log_prior, pos_weight_from_counts,
)

__all__ = [
    "adjust_logits",
    "asymmetric_loss",
    "balanced_softmax_loss",
    "binary_counts",
    "binary_seesaw_loss",
    "blended_weights",
    "boundary_loss",
    "class_balanced_weights",
    "class_counts",
    "class_weights",
    "cldice_loss",
    "count_labels",
    "dice_loss",
    "efl_gammas",
    "eqlv2_loss",
    "eqlv2_weights",
    "equalized_focal_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "inverse_frequency_weights",
    "inverse_sqrt_weights",
    "jaccard_loss",
    "ldam_loss",
    "ldam_margins",
    "log_prior",
    "logit_adjusted_loss",
    "lovasz_hinge_loss",
    "lovasz_softmax_loss",
    "pos_weight_from_counts",
    "seesaw_loss",
    "set_value_checks",
    "sigmoid_focal_loss",
    "skeleton_recall_loss",
    "soft_skeleton",
    "softmax_focal_loss",
    "tversky_loss",
    "use_triton",
    "value_checks",
    "weighted_bce_loss",
]
