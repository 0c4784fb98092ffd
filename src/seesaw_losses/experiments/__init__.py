"""Experiments behind the ``seesaw`` command: built-in datasets, a small U-Net, training, metrics, comparisons.

The submodules need the ``cli`` extra (numpy, matplotlib, pillow, rich, torchmetrics, optuna, scipy); this file
imports none of them, and ``import seesaw_losses`` never imports this package.
"""


class DataError(ValueError):
    """Data or settings an experiment cannot use; the message names the file or option and what to do."""
