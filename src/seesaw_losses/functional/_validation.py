"""Argument validation shared by every loss, written once.

Messages read ``"<function>: <argument> must be <rule>, got <value>"``, with a hint for the usual mistake.
Checks on metadata (shapes, dtypes, option strings) always run. Checks that read tensor values (label range,
binary masks) cost a device synchronisation on accelerators, so they run on CPU tensors always and on other
devices only while :func:`value_checks` is enabled; they never run while ``torch.compile`` traces.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Literal, NoReturn, Optional, Union

import torch
from torch import Tensor

from ._targets import mask_ignored

Reduction = Literal["none", "mean", "sum"]
REDUCTIONS = ("none", "mean", "sum")

_value_checks: Optional[bool] = (
    None if os.environ.get("SEESAW_LOSSES_VALUE_CHECKS") is None
    else os.environ["SEESAW_LOSSES_VALUE_CHECKS"] not in ("0", "false", "False", "")
)


def set_value_checks(enabled: Optional[bool]) -> None:
    """Turn the value checks on (``True``), off (``False``) or back to the default (``None``: CPU tensors only)."""
    global _value_checks
    _value_checks = enabled


@contextlib.contextmanager
def value_checks(enabled: Optional[bool] = True) -> Iterator[None]:
    """Context manager form of :func:`set_value_checks`."""
    global _value_checks
    previous = _value_checks
    _value_checks = enabled
    try:
        yield
    finally:
        _value_checks = previous


_shared: Optional[dict] = None
"""Inside :func:`shared_value_checks`: ``{(id, version, ignore_index): rules}`` of the targets already read."""

_IMPLIED = {"binary": ("binary", "probability")}
"""A target that passed a rule also passes these (``{0, 1}`` lies in ``[0, 1]``)."""


@contextlib.contextmanager
def shared_value_checks() -> Iterator[None]:
    """Within the block, each target's values are read once per rule, however many losses check them (the
    components of a :class:`~seesaw_losses.CombinedLoss` share one target)."""
    global _shared
    outer = _shared
    if outer is None:
        _shared = {}
    try:
        yield
    finally:
        _shared = outer


def already_checked(target: Tensor, rule: str, ignore_index: Optional[float]) -> bool:
    """Whether ``target``'s values already passed ``rule`` in this :func:`shared_value_checks` block. If not, the
    caller checks them now (and raises if they fail), so they are recorded as passing."""
    if _shared is None:
        return False
    passed = _shared.setdefault((id(target), target._version, ignore_index), set())
    if rule in passed:
        return True
    passed.update(_IMPLIED.get(rule, (rule,)))
    return False


def should_check_values(tensor: Tensor) -> bool:
    """Whether value checks run for ``tensor`` now (never while compiling)."""
    if torch.compiler.is_compiling():
        return False
    if _value_checks is None:
        return tensor.device.type == "cpu"
    return _value_checks


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, str):  # already a description
        return value
    return repr(value)


def fail(fn: str, arg: str, rule: str, got: object, hint: str = "", *, error: type = ValueError) -> NoReturn:
    """Raise ``error`` with the house message format. ``got`` is a value, a tensor, or a description (str)."""
    message = f"{fn}: {arg} must be {rule}, got {_describe(got)}"
    if hint:
        message += f"; {hint}"
    raise error(message)


def check_choice(fn: str, arg: str, value: object, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean {close[0]!r}?" if close else ""
        fail(fn, arg, f"one of {', '.join(repr(c) for c in choices)}", repr(value), hint)


def check_reduction(fn: str, reduction: object) -> None:
    check_choice(fn, "reduction", reduction, REDUCTIONS)


def check_number(
    fn: str, arg: str, value: object, *, low: Optional[float] = None, high: Optional[float] = None,
    low_open: bool = False, high_open: bool = False,
) -> None:
    """``value`` is a real number (not bool) within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(fn, arg, "a number", value, error=TypeError)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    rule = f"in {lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not math.isfinite(value):
        fail(fn, arg, "a finite number" if low is None and high is None else f"finite and {rule}", value)
    if low is not None and (value < low or (low_open and value == low)):
        fail(fn, arg, rule, value)
    if high is not None and (value > high or (high_open and value == high)):
        fail(fn, arg, rule, value)


def non_negative_and_finite(values: Tensor) -> bool:
    """Whether every entry is ``>= 0`` and finite (NaN fails ``>= 0``, so ``(values < 0).any()`` would miss it)."""
    return bool(((values >= 0) & torch.isfinite(values)).all())


def check_int(fn: str, arg: str, value: object, *, low: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(fn, arg, "an int", value, error=TypeError)
    if value < low:
        fail(fn, arg, f"an int >= {low}", value)


def check_logits(fn: str, logits: object, *, min_dim: int = 1) -> None:
    if not isinstance(logits, Tensor):
        fail(fn, "logits", "a torch.Tensor", type(logits).__name__, error=TypeError)
    if not logits.is_floating_point():
        fail(fn, "logits", "a floating-point tensor", logits,
             "pass the raw model output (logits), not labels or predictions", error=TypeError)
    if logits.dim() < min_dim:
        fail(fn, "logits", f"a tensor with at least {min_dim} dimension(s)", logits)


def check_index_target(
    fn: str, logits: Tensor, target: object, ignore_index: Optional[int], *, num_classes: int,
    hint_float: str = "",
) -> Tensor:
    """Class-index targets for ``(N, C, *)`` logits: shape ``(N, *)``, integer dtype, values in ``[0, C)``.

    Returns the target (unchanged). Ignored positions (``== ignore_index``) may hold any value.
    """
    if not isinstance(target, Tensor):
        fail(fn, "target", "a torch.Tensor", type(target).__name__, error=TypeError)
    expected = (logits.shape[0],) + tuple(logits.shape[2:])
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        hint = hint_float or (
            "class-index targets are needed; convert with target.long(), or for one-hot targets use "
            "target.argmax(1)")
        fail(fn, "target", "an integer tensor of class indices", target, hint, error=TypeError)
    if tuple(target.shape) != expected:
        hint = ""
        if tuple(target.shape) == tuple(logits.shape):
            hint = "got a target shaped like the logits; pass class indices of shape (N, *) (e.g. target.argmax(1))"
        elif target.dim() == len(expected) + 1 and target.shape[1] == 1:
            hint = "drop the channel dimension with target.squeeze(1)"
        fail(fn, "target", f"of shape {expected} for logits of shape {tuple(logits.shape)}", target, hint)
    if target.device != logits.device:
        fail(fn, "target", f"on the logits' device {logits.device}", f"device {target.device}")
    if target.numel() and should_check_values(target) \
            and not already_checked(target, f"index < {num_classes}", ignore_index):
        lo, hi = value_range(target, ignore_index)
        if lo < 0 or hi >= num_classes:
            bad = int(lo if lo < 0 else hi)
            hint = ""
            if ignore_index is not None and bad in (255, -1, -100) and bad != ignore_index:
                hint = f"if {bad} marks pixels to skip, pass ignore_index={bad}"
            fail(fn, "target", f"class indices in [0, {num_classes - 1}] (or ignore_index={ignore_index})",
                 f"a label {bad}", hint)
    return target


def value_range(target: Tensor, ignore_index: Optional[float]) -> tuple:
    """Smallest and largest value of ``target`` (ignored elements read as 0), in one pass (a host sync).

    A NaN anywhere makes both NaN (``aminmax`` propagates it): check with :func:`check_finite` first, since NaN
    fails every comparison and would pass a ``lo < 0 or hi > 1`` test.
    """
    if target.dtype == torch.bool:
        return 0, 1
    target, _ = mask_ignored(target, ignore_index)
    lo, hi = torch.aminmax(target)
    return lo.item(), hi.item()


def check_finite(fn: str, arg: str, lo: float, hi: float) -> None:
    """Fail when a range read by :func:`value_range` holds NaN or inf."""
    for value in (lo, hi):
        if not math.isfinite(value):
            fail(fn, arg, "finite (no NaN or inf)", f"a value {value}",
                 "replace them (e.g. torch.nan_to_num) or mark them with ignore_index")


def check_same_shape_target(fn: str, logits: Tensor, target: object, *, hint_index: str = "") -> Tensor:
    """Float targets with the shape of the logits (binary / multi-label). Returns the target."""
    if not isinstance(target, Tensor):
        fail(fn, "target", "a torch.Tensor", type(target).__name__, error=TypeError)
    if tuple(target.shape) != tuple(logits.shape):
        hint = ""
        if target.dim() == logits.dim() - 1 and logits.dim() >= 2 and logits.shape[1] == 1:
            hint = "add the channel dimension with target.unsqueeze(1)"
        elif target.dim() == logits.dim() - 1 and logits.dim() >= 2:
            hint = hint_index or "got a class-index-shaped target; this loss takes a target shaped like the logits"
        fail(fn, "target", f"of the logits' shape {tuple(logits.shape)}", target, hint)
    if target.device != logits.device:
        fail(fn, "target", f"on the logits' device {logits.device}", f"device {target.device}")
    if target.is_complex():
        fail(fn, "target", "a real tensor", target, error=TypeError)
    return target


def check_weight(fn: str, arg: str, weight: Optional[Tensor], shape: Sequence[int], rule: str) -> None:
    """A weight tensor broadcastable to ``shape`` (``rule`` describes the expected shape in the message)."""
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        fail(fn, arg, "a torch.Tensor or None", type(weight).__name__, error=TypeError)
    try:
        torch.broadcast_shapes(tuple(weight.shape), tuple(shape))
    except RuntimeError:
        fail(fn, arg, rule, weight)
    if tuple(torch.broadcast_shapes(tuple(weight.shape), tuple(shape))) != tuple(shape):
        fail(fn, arg, rule, weight)


def check_class_weight(fn: str, weight: Optional[Union[Tensor, Sequence[float]]], num_classes: int,
                       arg: str = "class_weight") -> Optional[Tensor]:
    """Per-class weights: a 1-D tensor (or sequence) of ``num_classes`` non-negative entries; returned as a tensor."""
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        try:
            weight = torch.as_tensor(weight, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            fail(fn, arg, "a 1-D tensor of per-class weights", weight, error=TypeError)
    if weight.dim() != 1 or weight.numel() != num_classes:
        fail(fn, arg, f"a 1-D tensor of {num_classes} per-class weights", weight)
    if not weight.is_floating_point():
        weight = weight.float()
    if weight.device.type == "cpu" and not torch.compiler.is_compiling() and not non_negative_and_finite(weight):
        fail(fn, arg, "non-negative and finite", weight)
    return weight


def check_element_weight(fn: str, weight: Optional[Tensor], target_shape: Sequence[int],
                         num_classes: Optional[int] = None) -> None:
    """Per-element weights broadcastable to the target's shape. For a softmax loss (``num_classes`` given), a
    ``(C,)`` tensor that is not shaped like the target is a per-class weight passed in the wrong argument."""
    if num_classes is not None and isinstance(weight, Tensor) and weight.dim() == 1 \
            and weight.numel() == num_classes and tuple(weight.shape) != tuple(target_shape):
        fail(fn, "weight", f"None or broadcastable to the target's shape {tuple(target_shape)}", weight,
             "per-class weights go in class_weight=")
    check_weight(fn, "weight", weight, target_shape,
                 f"None or broadcastable to the target's shape {tuple(target_shape)}")


def check_avg_factor(fn: str, avg_factor: object, reduction: str) -> None:
    """``avg_factor`` (MMDetection's denominator of "mean") is None, or a number or tensor with "mean"."""
    if avg_factor is None:
        return
    if reduction == "sum":
        fail(fn, "avg_factor", "None when reduction='sum'", avg_factor,
             "avg_factor divides the summed loss, so it only goes with reduction='mean'")
    if isinstance(avg_factor, bool) or not isinstance(avg_factor, (int, float, Tensor)):
        fail(fn, "avg_factor", "None, a number or a tensor", avg_factor, error=TypeError)


def check_counts(fn: str, counts: object, num_classes: Optional[int] = None, arg: str = "class_counts") -> Tensor:
    """Class counts: a 1-D tensor of non-negative numbers (of ``num_classes`` entries if given)."""
    if not isinstance(counts, Tensor):
        fail(fn, arg, "a 1-D torch.Tensor of class counts", type(counts).__name__, error=TypeError)
    if counts.dim() != 1 or (num_classes is not None and counts.numel() != num_classes):
        rule = f"a 1-D tensor of {num_classes} class counts" if num_classes else "a 1-D tensor of class counts"
        fail(fn, arg, rule, counts)
    if counts.is_complex() or counts.dtype == torch.bool:
        fail(fn, arg, "a real tensor", counts, error=TypeError)
    if should_check_values(counts) and counts.numel() and not non_negative_and_finite(counts):
        fail(fn, arg, "non-negative and finite", counts, "counts are numbers of samples (or pixels) per class")
    return counts


def check_probability_target(fn: str, logits: Tensor, target: object, ignore_index: Optional[int], *,
                             softmax_name: str) -> Tensor:
    """Targets for sigmoid losses: the logits' shape, values in ``[0, 1]`` (soft labels allowed) or
    ``ignore_index``. ``softmax_name`` names the loss to suggest when class indices are passed instead."""
    hint = f"got what looks like class indices; did you mean {softmax_name}?"
    if isinstance(target, Tensor) and not target.is_floating_point() and target.dtype != torch.bool \
            and tuple(target.shape) != tuple(logits.shape) and target.dim() == logits.dim() - 1:
        fail(fn, "target", f"of the logits' shape {tuple(logits.shape)} with values in [0, 1]", target, hint)
    target = check_same_shape_target(fn, logits, target, hint_index=hint)
    if target.numel() and should_check_values(target) and not already_checked(target, "probability", ignore_index):
        lo, hi = value_range(target, ignore_index)
        check_finite(fn, "target", lo, hi)
        if lo < 0 or hi > 1:
            bad = lo if lo < 0 else hi
            extra = f"if {bad:g} marks elements to skip, pass ignore_index={int(bad)}" \
                if bad in (255, -1, -100) else "targets are probabilities of the positive class"
            fail(fn, "target", "in [0, 1] (or ignore_index)", f"a value {bad:g}", extra)
    return target
