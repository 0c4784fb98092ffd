"""One table of bad calls across the registry.

Each raises ``ValueError``/``TypeError`` whose message starts ``"<function>: <argument> "`` (the house format),
naming the loss (its function, module, factory or registry name) and the argument at fault, and leaves the
loss's state (its buffers, e.g. Seesaw's class counts) as it was. The generic rows are derived from each
entry's metadata, so a new loss gets them with its entry; the rows below them are specific to one loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import pytest
import torch

import seesaw_losses as sl
from properties import Case, activations, make_inputs

NAN = float("nan")


@dataclass
class Bad:
    id: str
    entry: str
    arg: str
    build: Callable[[], object]                         # the module (or anything) the call is made on
    call: Callable[[object], object]                    # the bad call
    names: Tuple[str, ...] = ()                         # function names the message may start with, besides the entry's
    error: Tuple[type, ...] = (ValueError, TypeError)


def _valid(entry, activation: Optional[str]):
    case = Case(form="module", activation=activation, batch=2, channels=3, spatial=(4, 4), dtype=torch.float32,
                scale=1.0, ignore=False, dense=True, per_image=False, reduction="mean", layout="contiguous", seed=0)
    return make_inputs(entry, case)


def _names(entry) -> Tuple[str, ...]:
    names = {entry.name, *entry.aliases}
    if entry.function is not None:
        names.add(entry.function.__name__)
    if entry.module is not None:
        names.add(entry.module.__name__)
    return tuple(names)


def _class_weight_option(entry) -> str:
    """The per-class weight option, whatever its spelling in this version (``class_weight``, or older names)."""
    return next(name for name in ("class_weight", "weight", "alpha") if name in entry.options())


def _with_first(target: torch.Tensor, value) -> torch.Tensor:
    """``target`` with its first element replaced by ``value``."""
    bad = target.clone()
    bad.view(-1)[0] = value
    return bad


def _generic_rows():
    """Bad calls every entry must reject, built from its metadata."""
    rows = []
    for entry in sl.available_losses():
        for i, activation in enumerate(a for a in activations(entry) if a is not None):
            inputs = _valid(entry, activation)
            x, t, options = inputs.logits, inputs.target, inputs.options
            module = (lambda entry=entry, options=options: entry.build(**options))
            built = (type(inputs.call).__name__,)
            tag = f"{entry.name}-{activation}"
            index = t.dim() == x.dim() - 1
            if i == 0:
                rows += [
                    Bad(f"{tag}-integer-logits", entry.name, "logits", module, lambda m, x=x, t=t: m(x.long(), t),
                        built),
                    Bad(f"{tag}-logits-a-list", entry.name, "logits", module, lambda m, x=x, t=t: m(x.tolist(), t),
                        built),
                ]
            rows.append(Bad(f"{tag}-target-shape", entry.name, "target", module,
                            lambda m, x=x, t=t: m(x, t[..., :-1]), built))
            if index:
                channels = x.shape[1] + entry.background_label     # the first label the loss must reject
                rows += [
                    Bad(f"{tag}-label-too-large", entry.name, "target", module,
                        lambda m, x=x, t=t, c=channels: m(x, _with_first(t, c)), built),
                    Bad(f"{tag}-negative-label", entry.name, "target", module,
                        lambda m, x=x, t=t: m(x, _with_first(t, -7)), built),
                    Bad(f"{tag}-float-labels", entry.name, "target", module, lambda m, x=x, t=t: m(x, t.float()),
                        built),
                ]
            else:
                for value in (NAN, float("inf")):
                    rows.append(Bad(f"{tag}-target-{value}", entry.name, "target", module,
                                    lambda m, x=x, bad=_with_first(t, value): m(x, bad), built))
        valid = _valid(entry, activations(entry)[0])
        options, built = valid.options, (type(valid.call).__name__,)
        if "reduction" in entry.options():
            rows.append(Bad(f"{entry.name}-reduction-typo", entry.name, "reduction",
                            lambda o=options: o, lambda o, e=entry: e.build(**{**o, "reduction": "meen"}), built))
        for name, space in entry.search_space.items():
            values = [NAN] + ([-1.0] if not space.choices and space.low >= 0 else [])
            for value in values:
                rows.append(Bad(f"{entry.name}-{name}-{value}", entry.name, name, lambda o=options: o,
                                lambda o, e=entry, n=name, v=value: e.build(**{**o, n: v}), built))
    return rows


def _module_call(name: str, options: dict, call):
    return lambda: sl.get_loss(name).build(**options), call


def _specific_rows():
    F = sl.functional
    z, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    x, mask = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) < 0.3).float()
    counts = torch.tensor([100, 10, 1])
    none = lambda: None  # noqa: E731  (a function call: no state)
    seesaw_weight = _class_weight_option(sl.get_loss("seesaw"))
    focal_weight = _class_weight_option(sl.get_loss("softmax_focal"))
    dice_weight = _class_weight_option(sl.get_loss("dice"))
    rows = [
        Bad("seesaw-counts-wrong-length", "seesaw", "logits", none, lambda _: F.seesaw_loss(z, labels, counts[:2])),
        Bad("seesaw-counts-nan", "seesaw", "class_counts", none,
            lambda _: F.seesaw_loss(z, labels, torch.tensor([1.0, NAN, 2.0]))),
        Bad("seesaw-counts-a-list", "seesaw", "class_counts", none, lambda _: F.seesaw_loss(z, labels, [1, 2, 3])),
        Bad("seesaw-p-negative", "seesaw", "p", none, lambda _: F.seesaw_loss(z, labels, counts, p=-0.5)),
        Bad("seesaw-eps-zero", "seesaw", "eps", none, lambda _: F.seesaw_loss(z, labels, counts, eps=0.0)),
        Bad("seesaw-num-classes-zero", "seesaw", "num_classes", none, lambda _: sl.SeesawLoss(0)),
        Bad("seesaw-num-classes-float", "seesaw", "num_classes", none, lambda _: sl.SeesawLoss(2.5)),
        Bad("seesaw-class-weight-wrong-length", "seesaw", seesaw_weight, none,
            lambda _: sl.SeesawLoss(3, **{seesaw_weight: torch.ones(2)})),
        Bad("seesaw-module-wrong-channels", "seesaw", "logits", lambda: sl.SeesawLoss(5),
            lambda m: m(torch.randn(3, 4), torch.tensor([0, 4, 1]))),
        Bad("seesaw-module-label-too-large", "seesaw", "target", lambda: sl.SeesawLoss(3),
            lambda m: m(z, torch.tensor([0, 1, 3, 1]))),
        Bad("seesaw-module-element-weight-shape", "seesaw", "weight", lambda: sl.SeesawLoss(3),
            lambda m: m(z, labels, torch.ones(3)), names=("seesaw_loss",)),
        Bad("seesaw-module-avg-factor-with-sum", "seesaw", "avg_factor", lambda: sl.SeesawLoss(3, reduction="sum"),
            lambda m: m(z, labels, avg_factor=2.0), names=("seesaw_loss",)),
        Bad("binary-seesaw-module-weight-shape", "binary_seesaw", "weight", lambda: sl.BinarySeesawLoss(),
            lambda m: m(x, mask, torch.ones(3))),
        Bad("softmax-focal-class-weight-wrong-length", "softmax_focal", focal_weight, none,
            lambda _: F.softmax_focal_loss(z, labels, **{focal_weight: torch.ones(4)})),
        Bad("softmax-focal-alpha-scalar", "softmax_focal", focal_weight, none,
            lambda _: F.softmax_focal_loss(z, labels, **{focal_weight: 0.25})),
        Bad("softmax-focal-element-weight-shape", "softmax_focal", "weight", none,
            lambda _: F.softmax_focal_loss(z, labels, weight=torch.ones(3))),
        Bad("focal-weight-shape", "focal", "weight", none,
            lambda _: F.sigmoid_focal_loss(x, mask, weight=torch.ones(3))),
        Bad("focal-normalizer-typo", "focal", "normalizer", none, lambda _: sl.SigmoidFocalLoss(normalizer="pos")),
        Bad("focal-alpha-minus-one", "focal", "alpha", none, lambda _: sl.SigmoidFocalLoss(alpha=-1)),
        Bad("bce-pos-weight-negative", "bce", "pos_weight", none, lambda _: sl.WeightedBCELoss(pos_weight=-2.0)),
        Bad("bce-pos-weight-1d-on-images", "bce", "pos_weight", none,
            lambda _: F.weighted_bce_loss(torch.randn(2, 3, 4, 4), torch.ones(2, 3, 4, 4), pos_weight=torch.ones(3))),
        Bad("bce-pos-weight-a-string", "bce", "pos_weight", none, lambda _: sl.WeightedBCELoss(pos_weight="9")),
        Bad("weighted-bce-counts-wrong-length", "weighted_bce", "class_counts", none,
            lambda _: sl.build_loss({"type": "weighted_bce", "class_counts": [90, 10, 1]})),
        Bad("weighted-bce-counts-and-pos-weight", "weighted_bce", "options", none,
            lambda _: sl.build_loss({"type": "weighted_bce", "class_counts": [90, 10], "pos_weight": 2.0})),
        Bad("dice-activation-typo", "dice", "activation", none, lambda _: sl.DiceLoss(activation="softmx")),
        Bad("dice-class-weight-negative", "dice", dice_weight, none,
            lambda _: sl.DiceLoss(**{dice_weight: [1.0, -1.0]})),
        Bad("dice-class-weight-wrong-length", "dice", dice_weight, none,
            lambda _: F.dice_loss(x, mask, **{dice_weight: torch.ones(2)})),
        Bad("dice-background-of-one-channel", "dice", "include_background", none,
            lambda _: F.dice_loss(x, mask, include_background=False)),
        Bad("dice-probabilities-out-of-range", "dice", "logits", none, lambda _: F.dice_loss(x, mask, activation=None)),
        Bad("tversky-log-loss-with-gamma", "tversky", "gamma", none,
            lambda _: F.tversky_loss(x, mask, gamma=2.0, log_loss=True)),
        Bad("generalized-dice-weight-type-typo", "generalized_dice", "weight_type", none,
            lambda _: sl.GeneralizedDiceLoss(weight_type="cube")),
        Bad("lovasz-softmax-classes-typo", "lovasz_softmax", "classes", none,
            lambda _: sl.LovaszSoftmaxLoss(classes="some")),
        Bad("lovasz-softmax-one-channel", "lovasz_softmax", "logits", none,
            lambda _: F.lovasz_softmax_loss(torch.randn(2, 1, 4), torch.zeros(2, 4, dtype=torch.long))),
        Bad("lovasz-hinge-soft-mask", "lovasz_hinge", "target", none,
            lambda _: F.lovasz_hinge_loss(x, mask * 0.5)),
        Bad("binary-seesaw-variant-typo", "binary_seesaw", "variant", none,
            lambda _: sl.BinarySeesawLoss(variant="pape")),
        Bad("binary-seesaw-temperature-with-paper", "binary_seesaw", "temperature", none,
            lambda _: F.binary_seesaw_loss(x, mask, torch.tensor([9, 1]), temperature=2.0)),
        Bad("binary-seesaw-counts-wrong-length", "binary_seesaw", "class_counts", none,
            lambda _: F.binary_seesaw_loss(x, mask, torch.tensor([9, 1, 1]))),
        Bad("binary-seesaw-three-channels", "binary_seesaw", "logits", lambda: sl.BinarySeesawLoss(),
            lambda m: m(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))),
        Bad("ce-class-weight-negative", "ce", "class_weight", none,
            lambda _: sl.build_loss({"type": "ce", "class_weight": [1.0, -1.0, 1.0]})),
        Bad("class-balanced-ce-strategy-typo", "class_balanced_ce", "strategy", none,
            lambda _: sl.build_loss({"type": "class_balanced_ce", "class_counts": [9, 1], "strategy": "balanced"}),
            names=("class_weights",)),
        Bad("combined-weights-a-list", "bce", "weights", none,
            lambda _: sl.CombinedLoss({"bce": sl.WeightedBCELoss()}, weights=[1.0]), names=("CombinedLoss",)),
        Bad("combined-weights-inf", "bce", "weights['bce']", none,
            lambda _: sl.CombinedLoss({"bce": sl.WeightedBCELoss()}, weights={"bce": float("inf")}),
            names=("CombinedLoss",)),
        Bad("pos-weight-from-counts-negative", "bce", "positive_counts", none,
            lambda _: sl.pos_weight_from_counts(torch.tensor([-1.0]), torch.tensor([2.0])),
            names=("pos_weight_from_counts",)),
    ]
    return rows


ROWS = _generic_rows() + _specific_rows()


def _buffers(module) -> dict:
    if not isinstance(module, torch.nn.Module):
        return {}
    return {name: value.clone() for name, value in module.state_dict().items()}


def test_the_table_is_large():
    assert len(ROWS) >= 60
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_bad_call_is_rejected_by_name_and_leaves_state_alone(row):
    entry = sl.get_loss(row.entry)
    subject = row.build()
    before = _buffers(subject)
    with pytest.raises(row.error) as caught:
        row.call(subject)
    names = "|".join(re.escape(name) for name in _names(entry) + row.names)
    term = rf"build_loss: term '{re.escape(entry.name)}': "       # what a loss built by build_loss adds in front
    pattern = rf"^({term})?({names})(\.\w+)?(\([^)]*\))?: {re.escape(row.arg)} "
    assert re.match(pattern, str(caught.value)), (str(caught.value), pattern)
    after = _buffers(subject)
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), f"{row.id}: the failed call changed {name}"
