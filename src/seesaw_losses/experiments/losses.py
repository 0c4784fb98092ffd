"""``--loss name:key=value,...`` strings turned into constructed losses, with data-derived settings filled in.

Every loss is built by :func:`seesaw_losses.build_loss`. Settings that depend on the training data are computed
from its label counts unless the user gives them: weighted BCE's ``pos_weight`` (background / foreground pixels)
and class-balanced cross-entropy's class counts; Seesaw gets ``num_classes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from torch import nn

from . import InputError

SIGMOID, SOFTMAX = "sigmoid", "softmax"

#: How each loss reads the network's output: one logit per pixel (sigmoid) or one per class (softmax).
FAMILIES: Dict[str, str] = {
    "bce": SIGMOID,
    "weighted_bce": SIGMOID,
    "focal": SIGMOID,
    "dice": SIGMOID,
    "bce+dice": SIGMOID,
    "binary_seesaw": SIGMOID,
    "ce": SOFTMAX,
    "class_balanced_ce": SOFTMAX,
    "softmax_focal": SOFTMAX,
    "seesaw": SOFTMAX,
}

#: Losses whose value at one pixel depends on the other pixels (no per-pixel curve for ``seesaw plot``).
REGION_LOSSES = ("dice", "bce+dice")


class LossSpecError(InputError, ValueError):
    """A ``--loss`` string that cannot be parsed or built."""


@dataclass
class LossSpec:
    """A parsed ``--loss`` string: ``name`` plus keyword ``params``; ``text`` is what the user typed."""

    name: str
    params: Dict[str, object]
    text: str

    @property
    def family(self) -> str:
        return FAMILIES[self.name]


@dataclass
class BuiltLoss:
    spec: LossSpec
    module: nn.Module
    notes: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.spec.text


def _value(text: str) -> object:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_loss(text: str) -> LossSpec:
    """Parse ``"focal:gamma=2,alpha=0.25"`` (parameters after ``:``, separated by ``,`` or ``:``)."""
    name, _, rest = text.strip().partition(":")
    name = name.strip().lower().replace("-", "_")
    if name not in FAMILIES:
        import difflib

        close = difflib.get_close_matches(name, FAMILIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise LossSpecError(f"unknown loss {name!r} in --loss {text!r}: choose from {', '.join(FAMILIES)}{hint}")
    params: Dict[str, object] = {}
    for item in filter(None, (part.strip() for part in rest.replace(":", ",").split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise LossSpecError(f"bad parameter {item!r} in --loss {text!r}: write key=value, "
                                f"e.g. --loss focal:gamma=2,alpha=0.25")
        params[key.strip()] = _value(value.strip())
    return LossSpec(name, params, text.strip())


def parse_losses(texts: Sequence[str]) -> List[LossSpec]:
    specs = [parse_loss(text) for text in texts]
    seen = set()
    for spec in specs:
        if spec.text in seen:
            raise LossSpecError(f"--loss {spec.text!r} is given twice")
        seen.add(spec.text)
    return specs


def build(spec: LossSpec, class_counts: Sequence[int]) -> BuiltLoss:
    """Construct ``spec`` for a task whose training labels have ``class_counts`` (background first if binary).

    Raises :class:`LossSpecError` when the loss does not fit the task or rejects its parameters.
    """
    build_loss = _factory()
    counts = np.asarray(class_counts, dtype=np.int64)
    num_classes = len(counts)
    params = dict(spec.params)
    notes: List[str] = []
    if spec.family == SIGMOID and num_classes != 2:
        raise LossSpecError(f"--loss {spec.text!r} is a binary (one-logit) loss but the masks have {num_classes} "
                            "classes; use a softmax loss: ce, class_balanced_ce, softmax_focal, seesaw")
    if spec.name == "weighted_bce" and "pos_weight" not in params:
        params["pos_weight"] = float(counts[0] / max(counts[1], 1))
        notes.append(f"{spec.text}: pos_weight={params['pos_weight']:.1f} = background / foreground pixels "
                     "in the training masks")
    if spec.name == "class_balanced_ce" and "class_counts" not in params:
        params["class_counts"] = counts.tolist()
        notes.append(f"{spec.text}: class weights from the training label counts {counts.tolist()}")
    if spec.name == "seesaw":
        params.setdefault("num_classes", num_classes)
    try:
        module = build_loss({"type": spec.name, **params})
    except (TypeError, ValueError) as error:
        raise LossSpecError(f"--loss {spec.text!r}: {error}") from None
    return BuiltLoss(spec, module, notes)


def _factory():
    import seesaw_losses

    if hasattr(seesaw_losses, "build_loss"):
        return seesaw_losses.build_loss
    import torch

    def interim(config):
        config = dict(config)
        name = config.pop("type")
        if name == "bce":
            return nn.BCEWithLogitsLoss(**config)
        if name == "weighted_bce":
            return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(config.pop("pos_weight")), **config)
        if name == "ce":
            return nn.CrossEntropyLoss(**config)
        if name == "binary_seesaw":
            return seesaw_losses.BinarySeesawLoss(**config)
        if name == "seesaw":
            return seesaw_losses.SeesawLoss(**config)
        raise ValueError(f"{name} is not available yet")

    return interim
