"""The ``activation`` option of the losses that apply an activation only to compute probabilities (the overlap
family and the thin-structure losses), written once.

- ``"sigmoid"``: one logit per element; the target has the logits' shape (binary / multi-label masks).
- ``"softmax"``: ``(N, C, *)`` logits; the target holds ``(N, *)`` class indices (one-hot on the fly).
- ``None``: the inputs are already probabilities (the output of a model that ends in a sigmoid or a softmax, as
  MONAI and segmentation_models_pytorch users have); they are checked to lie in ``[0, 1]`` where value checks run,
  and the target is either of the two forms above: the input's shape, or ``(N, *)`` class indices.
"""

from __future__ import annotations

import difflib
from typing import Optional

import torch
from torch import Tensor

from ._validation import check_index_target, check_probability_target, fail, should_check_values, value_range

ACTIVATIONS = ("sigmoid", "softmax", None)


def check_activation(fn: str, activation: object) -> None:
    """``activation`` is ``"sigmoid"``, ``"softmax"`` or None (inputs are probabilities)."""
    if activation in ACTIVATIONS:
        return
    close = difflib.get_close_matches(str(activation), ("sigmoid", "softmax"), n=1)
    hint = f"did you mean {close[0]!r}?" if close else (
        "None itself, not a string, means the inputs are probabilities"
        if str(activation).lower() in ("none", "null", "identity") else "")
    fail(fn, "activation", "one of 'sigmoid', 'softmax' or None (inputs are probabilities)", repr(activation),
         hint)


def index_form(activation: Optional[str], logits: Tensor, target: Tensor) -> bool:
    """Whether the target holds class indices: always for ``"softmax"``; for None when it has one dimension less
    than the inputs (an integer ``(N, *)`` target)."""
    if activation is None:
        return target.dim() == logits.dim() - 1 and not target.is_floating_point()
    return activation == "softmax"


def check_activation_inputs(fn: str, logits: Tensor, target: object, activation: Optional[str],
                            ignore_index: Optional[int]) -> None:
    """Validate ``(logits, target)`` for ``activation`` (checked already): the target's form, its values, and for
    None that the inputs are probabilities. ``logits`` is a floating-point tensor of at least 2 dimensions."""
    channels = logits.shape[1]
    if isinstance(target, Tensor) and index_form(activation, logits, target):
        what = "activation='softmax'" if activation == "softmax" else "class-index targets"
        if channels < 2:
            fail(fn, "logits", f"of at least 2 channels (dim 1) for {what}", logits,
                 "a softmax over one channel is always 1; use activation='sigmoid' for one-logit outputs")
        one_hot = tuple(target.shape) == tuple(logits.shape)
        check_index_target(fn, logits, target, ignore_index, num_classes=channels, hint_float=(
            "got a target shaped like the logits (one-hot?); pass class indices with target.argmax(1)" if one_hot
            else "activation='softmax' takes class indices; for float masks of the logits' shape use "
                 "activation='sigmoid'"))
    else:
        check_probability_target(fn, logits, target, ignore_index, softmax_name="activation='softmax'")
    if activation is None and logits.numel() and should_check_values(logits):
        lo, hi = value_range(logits, None)
        if not (lo >= 0 and hi <= 1):
            bad = lo if not lo >= 0 else hi
            fail(fn, "logits", "probabilities in [0, 1] with activation=None", f"a value {bad:g}",
                 "pass raw scores with activation='sigmoid' or activation='softmax'")


def probabilities(logits: Tensor, activation: Optional[str], dtype: torch.dtype) -> Tensor:
    """The probabilities of validated ``(N, C, *)`` inputs in ``dtype``: a fresh tensor for ``"sigmoid"`` and
    ``"softmax"`` (safe to modify in place); for None the inputs themselves when already of ``dtype``."""
    if activation == "softmax":
        return torch.softmax(logits, dim=1, dtype=dtype)
    if activation == "sigmoid":
        return torch.sigmoid(logits) if logits.dtype == dtype else logits.to(dtype).sigmoid_()
    return logits.to(dtype)
