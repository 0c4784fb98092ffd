"""seesaw-losses: losses for class-imbalanced segmentation and classification."""

from . import functional
from ._version import __version__
from .functional import set_value_checks, value_checks
from .modules import BinarySeesawLoss, SeesawLoss

__all__ = [
    "BinarySeesawLoss",
    "SeesawLoss",
    "__version__",
    "functional",
    "set_value_checks",
    "value_checks",
]
