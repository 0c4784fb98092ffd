"""Pure loss functions. Stateful quantities (class counts) are arguments; the modules in
:mod:`seesaw_losses` own them."""

from ._targets import count_labels
from ._validation import set_value_checks, value_checks
from .binary_seesaw import binary_counts, binary_seesaw_loss
from .seesaw import seesaw_loss

__all__ = [
    "binary_counts",
    "binary_seesaw_loss",
    "count_labels",
    "seesaw_loss",
    "set_value_checks",
    "value_checks",
]
