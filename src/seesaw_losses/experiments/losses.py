"""``--loss`` strings turned into constructed losses, with settings that depend on the training data filled in.

A ``--loss`` string is :func:`seesaw_losses.build_loss`'s string form: ``"focal:gamma=2,alpha=0.25"``,
``"bce+dice"``, ``"focal:gamma=2+0.5*dice"``. Unless the user gives them, weighted BCE's ``pos_weight`` comes from
the training masks' ``[background, foreground]`` pixel counts, class-balanced cross-entropy's weights from the
training label counts, and Seesaw's ``num_classes`` from the data.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from torch import nn

from ..compose import CombinedLoss, build_loss, config_text, parse_config, term_keys
from ..registry import Hyperparameter, default_losses, get_loss, loss_names
from . import DataError

from .run import SIGMOID, SOFTMAX

#: The losses ``seesaw demo`` and ``seesaw compare`` train when none are named (the registry's lists).
DEFAULT_BINARY_LOSSES = default_losses("binary")
DEFAULT_MULTICLASS_LOSSES = default_losses("multi-class")


DEFERRED_FRACTION = 0.8
"""Where a deferred schedule (``start_epoch``) starts when the user gives none: the paper's epoch 160 of 200."""


class LossSpecError(DataError):
    """A ``--loss`` string that cannot be parsed or built."""


def _family(term: Dict[str, object]) -> str:
    activation = {"binary": SIGMOID, "index": SOFTMAX}.get(get_loss(term["type"]).target, "option")
    if activation == "option":
        return SOFTMAX if term.get("activation") == SOFTMAX else SIGMOID
    return activation


def is_region_loss(spec: "LossSpec") -> bool:
    """Whether any term of ``spec`` is a region loss (a pixel's loss depends on the whole mask)."""
    return any(get_loss(name).region for name in spec.names)


@dataclass
class LossSpec:
    """A parsed ``--loss`` string: one config dict per ``+``-separated term; ``text`` is what the user typed."""

    text: str
    terms: List[Dict[str, object]]

    @property
    def names(self) -> List[str]:
        return [str(term["type"]) for term in self.terms]

    @property
    def family(self) -> str:
        """``"sigmoid"`` (one logit per pixel) or ``"softmax"`` (one logit per class)."""
        return _family(self.terms[0])


@dataclass
class BuiltLoss:
    """A constructed loss; ``config`` is the ``build_loss`` string that builds the same loss without the data
    (the data-derived settings written out)."""

    spec: LossSpec
    module: nn.Module
    config: str
    notes: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.spec.text


def parse_loss(text: str) -> LossSpec:
    """Parse one ``--loss`` string; unknown names, bad ``key=value`` items and mixed families are errors."""
    text = text.strip()
    try:
        terms = parse_config(text)
    except ValueError as error:
        raise LossSpecError(f"losses={text!r}: {error}") from None
    known = loss_names(aliases=True)
    for term in terms:
        if term["type"] not in known:
            close = difflib.get_close_matches(str(term["type"]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise LossSpecError(f"unknown loss {term['type']!r} in losses={text!r}: choose from "
                                f"{', '.join(loss_names())} (available_losses() lists them){hint}")
    if len({_family(term) for term in terms}) > 1:
        raise LossSpecError(f"losses={text!r} mixes one-logit (sigmoid) and per-class (softmax) losses; for a "
                            "combination with dice use dice:activation=softmax alongside ce or seesaw")
    return LossSpec(text, terms)


def canonical_text(spec: LossSpec) -> str:
    """One spelling per loss: registry names for aliases (``sigmoid_focal`` -> ``focal``), the registry's
    defaults written out (``focal`` is ``focal:gamma=2``), each term's options sorted, numbers as
    :func:`~seesaw_losses.compose.config_text` writes them (``gamma=2`` and ``gamma=2.0`` alike)."""
    terms = []
    for term in spec.terms:
        entry = get_loss(term["type"])
        options = {**entry.defaults, **{key: value for key, value in term.items() if key != "type"}}
        terms.append({"type": entry.name, **{key: options[key] for key in sorted(options)}})
    return config_text(terms)


def parse_losses(texts: Sequence[str]) -> List[LossSpec]:
    """Parse every ``--loss`` string; two that spell the same loss (an alias, another number format or option
    order) are a :class:`LossSpecError`: the loss would be trained and ranked twice."""
    specs = [parse_loss(text) for text in texts]
    seen: Dict[str, str] = {}
    for spec in specs:
        canonical = canonical_text(spec)
        if canonical in seen:
            same = "is given twice" if seen[canonical] == spec.text else \
                f"is the loss {seen[canonical]!r} again (both are {canonical!r})"
            raise LossSpecError(f"losses={spec.text!r} {same}; give each loss once")
        seen[canonical] = spec.text
    return specs


def term_prefixes(spec: LossSpec) -> List[str]:
    """Per term, the prefix of its hyperparameters' names: none for a single loss, in a combination its key in
    the :class:`~seesaw_losses.compose.CombinedLoss` (:func:`~seesaw_losses.compose.term_keys`) and a dot."""
    if len(spec.terms) == 1:
        return [""]
    return [key + "." for key in term_keys(spec.names)]


def search_space(spec: LossSpec) -> Dict[str, Hyperparameter]:
    """The registry's search space of every term of ``spec`` minus the options given in the string; in a
    combination the names are prefixed by term: ``{"focal.gamma": ..., "dice.smooth_nr": ...}``."""
    space: Dict[str, Hyperparameter] = {}
    for prefix, term in zip(term_prefixes(spec), spec.terms):
        for option, hyperparameter in get_loss(term["type"]).search_space.items():
            if option not in term:
                space[prefix + option] = hyperparameter
    return space


def with_hyperparameters(spec: LossSpec, values: Mapping[str, Any]) -> LossSpec:
    """``spec`` with ``values`` (keyed as :func:`search_space` names them) set in its terms; the text (the label
    of the loss in tables) stays the one given."""
    terms = [dict(term) for term in spec.terms]
    for prefix, term in zip(term_prefixes(spec), terms):
        for key, value in values.items():
            if key.startswith(prefix) and "." not in key[len(prefix):]:
                term[key[len(prefix):]] = value
    return LossSpec(spec.text, terms)


def _cap_text(term: Dict[str, Any], attribute: str, values: List[float]) -> str:
    """`` (capped by max_weight=12.5; the count ratio is 27.6)`` when a cap changed the counts-derived
    ``values`` of ``term``, else ``""``."""
    cap = "max_weight"
    if term.get(cap) is None:
        return ""
    uncapped = getattr(build_loss({k: v for k, v in term.items() if k != cap}), attribute).flatten().tolist()
    if all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(uncapped, values)):
        return ""
    return f" (capped by {cap}={term[cap]:g}; the count ratio is {', '.join(f'{v:.3g}' for v in uncapped)})"


def build(spec: LossSpec, class_counts: Optional[Sequence[int]], *, ignore_index: Optional[int] = None,
          epochs: Optional[int] = None) -> BuiltLoss:
    """Construct ``spec`` for a task whose training labels have ``class_counts`` (background first if binary;
    None: unknown, for losses that need no counts);
    ``ignore_index`` is passed to every term that does not set its own, and a term with a deferred schedule
    (``start_epoch``, e.g. LDAM-DRW) starts at :data:`DEFERRED_FRACTION` of ``epochs`` unless it sets its own.

    Raises :class:`LossSpecError` when the loss does not fit the task or rejects its parameters.
    """
    counts = None if class_counts is None else [int(c) for c in class_counts]
    if spec.family == SIGMOID and counts is not None and len(counts) != 2:
        raise LossSpecError(f"losses={spec.text!r} is a binary (one-logit) loss but the labels have {len(counts)} "
                            "classes; use ce, class_balanced_ce, softmax_focal, seesaw or dice:activation=softmax")
    terms, derived, scheduled = [], [], []
    for term in spec.terms:
        term = dict(term)
        entry = get_loss(term["type"])
        given = entry.derived_attribute in term or entry.counts_argument in term
        if entry.counts_argument is not None and not given:
            term[entry.counts_argument] = counts
            derived.append(entry.derived_attribute)
        else:
            derived.append(None)
        if "num_classes" in entry.options() and counts is not None:
            term.setdefault("num_classes", len(counts))
        if ignore_index is not None:
            term.setdefault("ignore_index", ignore_index)
        if epochs is not None and "start_epoch" in entry.options() and "start_epoch" not in term:
            term["start_epoch"] = int(round(DEFERRED_FRACTION * epochs))
            scheduled.append(f"{spec.text}: re-weighting from epoch {term['start_epoch']} of {epochs} "
                             f"({DEFERRED_FRACTION:.0%} of the budget, as in the paper)")
        terms.append(term)
    try:
        module = build_loss(terms if len(terms) > 1 else terms[0])
    except (TypeError, ValueError) as error:
        raise LossSpecError(f"losses={spec.text!r}: {error}") from None
    parts = module.losses.values() if isinstance(module, CombinedLoss) else [module]
    notes, exported = list(scheduled), []
    for term, part, attribute in zip(terms, parts, derived):
        term = dict(term)
        if attribute is not None:
            values = [round(v, 6) for v in getattr(part, attribute).flatten().tolist()]
            shown = ", ".join(f"{v:.3g}" for v in values) + _cap_text(term, attribute, values)
            notes.append(f"{spec.text}: {attribute} {shown} from the training label counts {counts}")
            if attribute in get_loss(term["type"]).options():
                del term[get_loss(term["type"]).counts_argument]
                term[attribute] = values[0] if len(values) == 1 else values
        exported.append(term)
    return BuiltLoss(spec, module, config_text(exported), notes)
