"""Experiments behind the ``seesaw`` command: :func:`compare` (losses ranked on your own ``train`` function),
built-in datasets and trainers, metrics, statistics, reports.

The submodules need the ``cli`` extra (numpy, matplotlib, pillow, rich, torchmetrics, optuna, scipy); this file
imports none of them (``compare``, ``Result``, ``Run`` and ``Trainer`` are imported on first use), and ``import seesaw_losses``
never imports this package.
"""


#: What a comparison trains (a trainer's ``kind``): the report draws the plots of that kind; ``CUSTOM`` for the
#: user's own ``train``.
BINARY, MULTICLASS, LONG_TAIL, CUSTOM = "binary_segmentation", "multiclass_segmentation", "long_tail", "custom"
CLASSIFICATION = "classification"  #: images in class folders (``LONG_TAIL``: the demo's generated features)


class DataError(ValueError):
    """Data or settings an experiment cannot use; the message names the file or option and what to do."""


class Diverged(ArithmeticError):
    """Training with these hyperparameters diverged (a loss that is not finite): a tuning trial ends pruned and
    the search goes on; a final run raises it. Not a :class:`DataError`: the data are fine."""


def __getattr__(name: str):
    if name in ("compare", "Result"):
        from . import api

        return getattr(api, name)
    if name in ("Run", "Trainer"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
