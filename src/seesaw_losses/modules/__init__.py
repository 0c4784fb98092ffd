"""``nn.Module`` forms of the losses: validated configuration, buffers, and one call into the function."""

from .bce import WeightedBCELoss
from .focal import SigmoidFocalLoss, SoftmaxFocalLoss
from .lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from .overlap import DiceLoss, FocalTverskyLoss, GeneralizedDiceLoss, JaccardLoss, TverskyLoss
from .seesaw import BinarySeesawLoss, SeesawLoss

__all__ = [
    "BinarySeesawLoss",
    "DiceLoss",
    "FocalTverskyLoss",
    "GeneralizedDiceLoss",
    "JaccardLoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "SeesawLoss",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
    "TverskyLoss",
    "WeightedBCELoss",
]
