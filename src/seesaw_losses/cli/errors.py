"""The ``seesaw`` command's error: what :func:`seesaw_losses.cli.main` turns into one line on stderr and exit 2."""

from __future__ import annotations


class InputError(Exception):
    """Options or environment the ``seesaw`` command cannot use; the message names the option and what to do.

    The experiments below the command raise :class:`seesaw_losses.experiments.DataError` for data they cannot
    use; the command reports both the same way.
    """
