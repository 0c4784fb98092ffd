"""Every metric the evaluators produce, declared once: its key, its short header, the report table it belongs in,
and which variants of it exist (per class, at threshold 0.5, after logit adjustment, at a tolerance in pixels).

The evaluators build their keys with the functions here, and the report asks :func:`describe` how to show a key:
which table, under which header. A key declared nowhere here (a metric of the user's own ``train``) is shown under
its own name in the ranking table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Union

#: The report's tables of metrics, in the order it prints them: the ranking with the pooled metrics; topology
#: (printed with the costs); after post-hoc logit adjustment; at threshold 0.5; per class.
POOLED, TOPOLOGY, ADJUSTED, AT_HALF, PER_CLASS = "pooled", "topology", "adjusted", "at_half", "per_class"
TABLES = (POOLED, TOPOLOGY, ADJUSTED, AT_HALF, PER_CLASS)

CLASS_SEPARATOR = "/"  #: between a metric and its class: ``"iou/3"``, ``"accuracy/cat"``
HALF_SUFFIX = "@0.5"  #: binary metrics at threshold 0.5 (the plain keys use the validated threshold)
ADJUSTED_SUFFIX = "_adjusted"  #: metrics after post-hoc logit adjustment


@dataclass(frozen=True)
class Metric:
    """One metric: ``key`` as in ``run.metrics``, ``header`` a short column header, ``table`` one of
    :data:`TABLES`; ``per_class``: also one value per class (:func:`per_class_key`); ``at_half``: also at threshold
    0.5 (:func:`at_half_key`); ``adjusted``: also after logit adjustment (:func:`adjusted_key`); ``tolerance``:
    only at tolerances in pixels (:func:`tolerance_key`)."""

    key: str
    header: str
    table: str = POOLED
    per_class: bool = False
    at_half: bool = False
    adjusted: bool = False
    tolerance: bool = False


METRICS = (
    # binary segmentation, pooled over pixels; the ranking metrics, means over images
    Metric("image_dice", "Dice/img"),
    Metric("dice", "Dice", at_half=True, per_class=True),
    Metric("iou", "IoU", at_half=True, per_class=True),
    Metric("precision", "Prec.", at_half=True),
    Metric("recall", "Recall", at_half=True),
    Metric("average_precision", "AP"),
    Metric("threshold", "Thr"),
    # multi-class segmentation
    Metric("image_mean_iou", "mIoU/img"),
    Metric("mean_iou", "mIoU"),
    Metric("mean_dice", "mDice"),
    Metric("pixel_accuracy", "Pixel acc"),
    # topology and boundaries (binary)
    Metric("cldice", "clDice", TOPOLOGY),
    Metric("betti0_error", "Betti0 err", TOPOLOGY),
    Metric("betti1_error", "Betti1 err", TOPOLOGY),
    Metric("hd95", "HD95", TOPOLOGY),
    Metric("surface_dice", "SDice", TOPOLOGY, tolerance=True),
    # classification, and each class group's mean per-class accuracy (the groups of ``data.groups``)
    Metric("balanced_accuracy", "Bal. acc", adjusted=True),
    Metric("accuracy", "Accuracy", adjusted=True, per_class=True),
    Metric("macro_f1", "Macro F1", adjusted=True),
    Metric("many_shot_accuracy", "Many", adjusted=True),
    Metric("medium_shot_accuracy", "Medium", adjusted=True),
    Metric("few_shot_accuracy", "Few", adjusted=True),
)
BY_KEY: Dict[str, Metric] = {metric.key: metric for metric in METRICS}


def per_class_key(key: str, name: Union[int, str]) -> str:
    """``"iou/3"``: metric ``key`` of class ``name``."""
    return f"{key}{CLASS_SEPARATOR}{name}"


def at_half_key(key: str) -> str:
    """``"dice@0.5"``: metric ``key`` at threshold 0.5."""
    return key + HALF_SUFFIX


def adjusted_key(key: str) -> str:
    """``"balanced_accuracy_adjusted"``: metric ``key`` after post-hoc logit adjustment."""
    return key + ADJUSTED_SUFFIX


def tolerance_key(key: str, pixels: float) -> str:
    """``"surface_dice@1px"``: metric ``key`` at a tolerance of ``pixels``."""
    return f"{key}@{pixels:g}px"


def group_accuracy_key(group: str) -> str:
    """``"few_shot_accuracy"``: the mean per-class accuracy of a class group."""
    return f"{group}_accuracy"


@dataclass(frozen=True)
class Column:
    """How the report shows one metric key: under ``header`` in ``table``; ``metric`` is its declaration (None for
    a key declared nowhere here) and ``part`` the class of a per-class key or the tolerance of a surface metric."""

    key: str
    header: str
    table: str = POOLED
    metric: Optional[Metric] = None
    part: str = ""


def _fixed_columns() -> Dict[str, Column]:
    columns = {}
    for metric in METRICS:
        if not metric.tolerance:
            columns[metric.key] = Column(metric.key, metric.header, metric.table, metric)
        if metric.at_half:
            key = at_half_key(metric.key)
            columns[key] = Column(key, at_half_key(metric.header), AT_HALF, metric)
        if metric.adjusted:
            key = adjusted_key(metric.key)
            columns[key] = Column(key, f"{metric.header} adj.", ADJUSTED, metric)
    return columns


_FIXED = _fixed_columns()


def describe(key: str) -> Column:
    """The column of metric ``key``: a declared metric or one of its variants, else ``key`` itself in the ranking
    table."""
    if key in _FIXED:
        return _FIXED[key]
    name, separator, part = key.partition(CLASS_SEPARATOR)
    metric = BY_KEY.get(name)
    if separator and part and metric is not None and metric.per_class:
        return Column(key, f"{metric.header} {part}", PER_CLASS, metric, part)
    name, separator, part = key.partition("@")
    metric = BY_KEY.get(name)
    if separator and part.endswith("px") and metric is not None and metric.tolerance:
        return Column(key, f"{metric.header}@{part}", metric.table, metric, part[:-2])
    return Column(key, key)
