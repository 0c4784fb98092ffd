"""Experiments behind the ``seesaw`` command: built-in datasets, a small U-Net, training, metrics, reports.

The submodules need the ``cli`` extra (numpy, matplotlib, tqdm, pillow); this file imports none of them, and
``import seesaw_losses`` never imports this package.
"""


class InputError(Exception):
    """Input the ``seesaw`` command cannot use; the message names the file or option and what to do."""
