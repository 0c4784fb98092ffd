"""Class weights from class counts, and counting classes over a data set.

Every strategy returns float32 weights normalised to sum to ``C`` (mean 1), ready for the ``weight=`` of
``cross_entropy`` and the overlap losses, the ``alpha=`` of :func:`softmax_focal_loss`, or (through
:func:`pos_weight_from_counts`) the ``pos_weight=`` of :func:`weighted_bce_loss`. Class balancing is a weighting,
not a loss: there is no ``ClassBalancedX`` per base loss.

Classes with zero samples are handled explicitly (``empty_classes``): they get the largest weight of the
classes that have samples (``"max"``, the default: a class that shows up later is treated as the rarest) or 0
(``"zero"``). Counts of all zeros give uniform weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from ._targets import count_labels
from ._validation import check_choice, check_counts, check_int, check_number, fail, value_range

EMPTY_CLASS_RULES = ("max", "zero")
STRATEGIES = ("class_balanced", "inverse_frequency", "inverse_sqrt", "blended", "uniform")
TARGET_KEYS = ("target", "mask", "label", "labels")

Counts = Union[Tensor, Sequence[float]]


def _as_counts(fn: str, counts: Counts, arg: str = "class_counts") -> Tensor:
    if not isinstance(counts, Tensor):
        try:
            counts = torch.as_tensor(counts, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            fail(fn, arg, "a 1-D tensor or sequence of class counts", counts, error=TypeError)
    with_values = check_counts(fn, counts, arg=arg)
    if not bool(torch.isfinite(with_values.double()).all()):
        fail(fn, arg, "finite", counts)
    return with_values.detach().to("cpu", torch.float64)


def _normalised(fn: str, raw: Tensor, counts: Tensor, empty_classes: str) -> Tensor:
    """Fill zero-count classes by the rule, then scale to sum to ``C``; all-empty counts give uniform weights."""
    check_choice(fn, "empty_classes", empty_classes, EMPTY_CLASS_RULES)
    present = counts > 0
    if not bool(present.any()):
        return torch.ones(counts.numel(), dtype=torch.float32)
    fill = raw[present].max() if empty_classes == "max" else raw.new_zeros(())
    weights = torch.where(present, raw, fill)
    return (weights * (counts.numel() / weights.sum())).float()


def class_balanced_weights(class_counts: Counts, beta: float = 0.9999, *, empty_classes: str = "max") -> Tensor:
    r"""Class-balanced weights (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", 2019).

    .. math::
        w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}}, \qquad \sum_c w_c = C

    ``beta = 0`` gives uniform weights; ``beta -> 1`` approaches inverse frequency. Equal to the weights of
    the ``cbloss`` package (and the paper's code) for classes with samples; zero-count classes follow
    ``empty_classes`` instead of producing ``inf``/NaN.

    Args:
        class_counts: samples (or pixels) per class, non-negative.
        beta: in ``[0, 1)``; typical values 0.9, 0.99, 0.999, 0.9999.
        empty_classes: ``"max"`` | ``"zero"``: the weight of classes with no samples.

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)`` float32.

    Examples:
        >>> class_balanced_weights(torch.tensor([5000, 500, 50]), beta=0.999)
        tensor([0.1256, 0.3170, 2.5574])
    """
    fn = "class_balanced_weights"
    check_number(fn, "beta", beta, low=0, high=1, high_open=True)
    counts = _as_counts(fn, class_counts)
    effective = -torch.expm1(counts * torch.log(torch.tensor(beta, dtype=torch.float64))) if beta > 0 else (
        (counts > 0).double())
    raw = torch.where(counts > 0, (1 - beta) / effective.clamp(min=1e-300), torch.zeros_like(counts))
    return _normalised(fn, raw, counts, empty_classes)


def log_prior(class_counts: Tensor, *, dtype: torch.dtype = torch.float32,
              device: Optional[torch.device] = None) -> Tensor:
    r"""``log(n_c / sum(n))`` per class, with a class of no samples counted as one (the rarest possible) and
    counts of all zeros giving the uniform ``0`` (no adjustment): never ``-inf`` or NaN.

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)`` in ``dtype``.
    """
    counts = class_counts.to(device=device if device is not None else class_counts.device, dtype=torch.float64)
    return (counts.clamp(min=1).log() - counts.sum().clamp(min=1).log()).to(dtype)


def inverse_frequency_weights(class_counts: Counts, *, empty_classes: str = "max") -> Tensor:
    r"""Inverse-frequency weights :math:`w_c \propto 1 / n_c`, normalised to sum to ``C``.

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)`` float32.
    """
    fn = "inverse_frequency_weights"
    counts = _as_counts(fn, class_counts)
    return _normalised(fn, torch.where(counts > 0, 1 / counts.clamp(min=1e-300), 0.0), counts, empty_classes)


def inverse_sqrt_weights(class_counts: Counts, *, empty_classes: str = "max") -> Tensor:
    r"""Inverse-square-root weights :math:`w_c \propto 1 / \sqrt{n_c}`, normalised to sum to ``C``.

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)`` float32.
    """
    fn = "inverse_sqrt_weights"
    counts = _as_counts(fn, class_counts)
    return _normalised(fn, torch.where(counts > 0, counts.clamp(min=1e-300).rsqrt(), 0.0), counts, empty_classes)


def blended_weights(class_counts: Counts, blend: float = 0.5, *, empty_classes: str = "max") -> Tensor:
    r"""A weighted average of inverse-frequency weights and uniform weights.

    .. math::
        w = \lambda\, w^{\mathrm{inv}} + (1 - \lambda)\, \mathbf{1}, \qquad \sum_c w_c = C

    ``blend = 0`` gives uniform weights, ``blend = 1`` :func:`inverse_frequency_weights`.

    Args:
        class_counts: samples (or pixels) per class, non-negative.
        blend: :math:`\lambda` in ``[0, 1]``.
        empty_classes: as in :func:`inverse_frequency_weights`.

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)`` float32.
    """
    fn = "blended_weights"
    check_number(fn, "blend", blend, low=0, high=1)
    inverse = inverse_frequency_weights(class_counts, empty_classes=empty_classes)
    return blend * inverse + (1 - blend) * torch.ones_like(inverse)


def class_weights(class_counts: Counts, strategy: str = "class_balanced", *, beta: float = 0.9999,
                  blend: float = 0.5, empty_classes: str = "max") -> Tensor:
    """Class weights by strategy name, for configuration-driven code.

    Args:
        class_counts: samples (or pixels) per class.
        strategy: ``"class_balanced"`` (uses ``beta``) | ``"inverse_frequency"`` | ``"inverse_sqrt"`` |
            ``"blended"`` (uses ``blend``) | ``"uniform"``.
        beta: see :func:`class_balanced_weights`.
        blend: see :func:`blended_weights`.
        empty_classes: ``"max"`` | ``"zero"``.

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)`` float32, summing to ``C``.
    """
    fn = "class_weights"
    check_choice(fn, "strategy", strategy, STRATEGIES)
    if strategy == "class_balanced":
        return class_balanced_weights(class_counts, beta, empty_classes=empty_classes)
    if strategy == "inverse_frequency":
        return inverse_frequency_weights(class_counts, empty_classes=empty_classes)
    if strategy == "inverse_sqrt":
        return inverse_sqrt_weights(class_counts, empty_classes=empty_classes)
    if strategy == "blended":
        return blended_weights(class_counts, blend, empty_classes=empty_classes)
    return torch.ones(_as_counts(fn, class_counts).numel(), dtype=torch.float32)


def pos_weight_from_counts(positive_counts: Union[Counts, float], negative_counts: Union[Counts, float], *,
                           max_weight: Optional[float] = None) -> Tensor:
    r"""``pos_weight = n_negative / n_positive`` per class, for :func:`weighted_bce_loss` (as PyTorch's
    ``BCEWithLogitsLoss`` documentation recommends).

    A class with no positives gets 1 (no reweighting: its positive term has nothing to weight in the counted
    data). ``max_weight`` caps the result (very rare classes otherwise get huge weights).

    For a binary mask counted as ``counts = class_counts(loader, 2)`` (``[background, foreground]``) use
    ``pos_weight_from_counts(counts[1], counts[0])``.

    Shape:
        - positive_counts, negative_counts: scalars or ``(C,)``; output: their broadcast shape, float32.
          Reshape to ``(C, 1, 1)`` for ``(N, C, H, W)`` logits.
    """
    fn = "pos_weight_from_counts"
    positive, negative = (_as_counts(fn, torch.as_tensor(c).reshape(-1), arg).reshape(torch.as_tensor(c).shape)
                          for c, arg in ((positive_counts, "positive_counts"), (negative_counts, "negative_counts")))
    if max_weight is not None:
        check_number(fn, "max_weight", max_weight, low=0, low_open=True)
    weight = torch.where(positive > 0, negative / positive.clamp(min=1e-300), torch.ones_like(negative + positive))
    if max_weight is not None:
        weight = weight.clamp(max=max_weight)
    return weight.float()


def _default_target(item: Any) -> Any:
    if isinstance(item, Mapping):
        for key in TARGET_KEYS:
            if key in item:
                return item[key]
        fail("class_counts", "each item", f"a tensor, an (input, target) pair or a dict with one of the keys "
             f"{', '.join(TARGET_KEYS)}", f"a dict with keys {sorted(item)}", "pass get_target=lambda item: ...")
    if isinstance(item, (tuple, list)):
        if len(item) < 2:
            fail("class_counts", "each item", "an (input, target) pair", f"a sequence of length {len(item)}",
                 "pass get_target=lambda item: ...")
        return item[1]
    return item


PROGRESS_DELAY = 1.0  #: seconds :func:`class_counts` counts before it shows a progress bar


def _progress(iterable: Iterable, enabled: bool, total: Optional[int]) -> Iterable:
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    # Shown only once counting has taken PROGRESS_DELAY seconds: a short list gets no bar flashing by.
    return tqdm(iterable, total=total, desc="counting classes", unit="item", leave=False, delay=PROGRESS_DELAY)


def class_counts(
    data: Iterable,
    num_classes: int,
    *,
    ignore_index: Optional[int] = None,
    get_target: Optional[Callable[[Any], Any]] = None,
    progress: bool = True,
) -> Tensor:
    """Count class labels over a data set or a data loader, for the weighting functions above.

    Each item (a dataset sample or a loader batch) is a target tensor, an ``(input, target, ...)`` pair, or a
    dict with a ``"target"``/``"mask"``/``"label"``/``"labels"`` key; ``get_target`` overrides that. Targets
    hold class indices (a binary mask counts as ``num_classes=2``: ``[background, foreground]``); float
    targets must hold whole numbers. Shows a ``tqdm`` progress bar when tqdm is installed (the ``cli`` extra),
    ``progress`` is true and counting takes longer than :data:`PROGRESS_DELAY` seconds.

    Args:
        data: an iterable (``Dataset`` with ``__len__``/``__getitem__``, ``DataLoader``, list, generator).
        num_classes: number of classes ``C``.
        ignore_index: label not counted (e.g. 255).
        get_target: function from an item to its target.
        progress: show a progress bar.

    Shape:
        - each target: any shape; output: ``(C,)`` int64.

    Examples:
        >>> masks = [torch.randint(0, 3, (4, 4)) for _ in range(5)]
        >>> class_counts(masks, 3, progress=False).sum()
        tensor(80)
    """
    fn = "class_counts"
    check_int(fn, "num_classes", num_classes, low=1)
    total: Optional[int] = None
    try:
        total = len(data)  # type: ignore[arg-type]
    except TypeError:
        total = None
    # A map-style Dataset has no __iter__ of its own; index it rather than rely on IndexError to stop.
    indexable = total is not None and hasattr(data, "__getitem__") and not hasattr(data, "__iter__")
    iterator = (data[i] for i in range(total)) if indexable else data  # type: ignore[index]
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for item in _progress(iterator, progress, total):
        target = (get_target or _default_target)(item)
        if not isinstance(target, Tensor):
            target = torch.as_tensor(target)
        if target.is_floating_point():
            if not bool((target == target.round()).all()):
                fail(fn, "target", "class indices (whole numbers)", target,
                     "soft masks cannot be counted; binarise them first, e.g. (mask > 0.5).long()")
            target = target.long()
        elif target.dtype == torch.bool:
            target = target.long()
        lo, hi = value_range(target, ignore_index) if target.numel() else (0, 0)
        if lo < 0 or hi >= num_classes:
            bad = int(lo if lo < 0 else hi)
            hint = f"if {bad} marks pixels to skip, pass ignore_index={bad}" if bad in (255, -1, -100) else ""
            fail(fn, "target", f"class indices in [0, {num_classes - 1}]", f"a label {bad}", hint)
        counts += count_labels(target.cpu(), num_classes, ignore_index)
    return counts
