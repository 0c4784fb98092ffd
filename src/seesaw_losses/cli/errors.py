"""The ``seesaw`` command's error: what :func:`seesaw_losses.cli.main` turns into one line on stderr and exit 2."""

from __future__ import annotations

import re


class InputError(Exception):
    """Options or environment the ``seesaw`` command cannot use; the message names the option and what to do.

    The experiments below the command raise :class:`seesaw_losses.experiments.DataError` for data they cannot
    use; the command reports both the same way.
    """


#: The ``compare`` / data-loader parameter behind each flag: the experiments' messages name parameters as
#: ``name=value`` (``name=`` alone for a mention), and :func:`in_flags` says them as the command's flags.
FLAGS = {
    "losses": "--loss", "metric": "--metric", "direction": "--direction", "seeds": "--seeds", "tune": "--tune",
    "pruner": "--pruner", "resume": "--resume", "storage": "--storage", "workers": "--workers", "out": "--out",
    "artifacts": "--artifacts", "seed": "--seed",
    "fresh": "--force", "margin": "--margin", "class_counts": "--class-counts", "lr": "--lr", "epochs": "--epochs",
    "images": "--images", "masks": "--masks", "root": "--images", "test_images": "--test-images",
    "test_root": "--test-images", "test_masks": "--test-masks", "test_fraction": "--test-fraction",
    "val_fraction": "--val-fraction", "size": "--image-size", "patch_size": "--patch-size", "overlap": "--overlap",
    "mask_mode": "--mask-mode", "ignore_index": "--ignore-index", "allow_lossy": "--allow-lossy-masks",
}
CHOICES = ("mask_mode", "direction", "pruner")  #: said without quotes: ``--mask-mode binary``
_NAMES = "|".join(sorted(FLAGS, key=len, reverse=True))
_MENTION = re.compile(r"\b(" + _NAMES + r")=('[^']*'|[^\s,;)]*)")
_RULE = re.compile(r"^(?:\w+: )?(" + _NAMES + r") must be ")  #: "<function>: <argument> must be <rule>, got ..."


def in_flags(message: str) -> str:
    """``message`` with each ``parameter=value`` said as the command's flag: ``seeds=3`` -> ``--seeds 3``,
    ``resume=True`` -> ``--resume``, ``mask_mode='binary'`` -> ``--mask-mode binary``, ``size=None`` ->
    ``--no-resize``, ``test_fraction=`` -> ``--test-fraction``;
    the argument of a ``"<function>: <argument> must be <rule>"`` message is said as its flag, without the
    function."""

    def flag(match: re.Match) -> str:
        name, value = match.groups()
        if name == "size" and value.startswith("None"):
            return "--no-resize" + value[len("None"):]
        if value.startswith("True"):
            return FLAGS[name] + value[len("True"):]
        if name in CHOICES:
            value = value.strip("'")
        return FLAGS[name] + (" " + value if value else "")

    message = message.replace("available_losses() lists them", "seesaw losses lists them")
    message = _RULE.sub(lambda match: FLAGS[match.group(1)] + " must be ", message)
    return _MENTION.sub(flag, message.removeprefix("compare: "))
