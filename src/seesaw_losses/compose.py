"""Combining losses, and building any loss of the library from a plain configuration."""

from __future__ import annotations

import ast
import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor, nn

from .functional._validation import check_number, fail
from .functional.weighting import class_weights, pos_weight_from_counts
from .modules.bce import WeightedBCELoss
from .modules.focal import SigmoidFocalLoss, SoftmaxFocalLoss
from .modules.lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from .modules.overlap import DiceLoss, FocalTverskyLoss, GeneralizedDiceLoss, JaccardLoss, TverskyLoss
from .modules.seesaw import BinarySeesawLoss, SeesawLoss


class CombinedLoss(nn.Module):
    r"""A weighted sum of losses that all take the same ``(logits, target)``: :math:`\sum_k w_k \ell_k`.

    The losses are child modules (an ``nn.ModuleDict``), so stateful ones (Seesaw's class counts) keep their
    buffers in ``state_dict`` and move with ``.to()``.

    Args:
        losses: ``{name: module}`` (insertion order kept).
        weights: ``{name: factor}``; missing names get 1.

    Shape:
        - logits, target: whatever every component accepts (e.g. BCE + Dice: ``(N, 1, H, W)`` logits and a
          same-shape mask; Seesaw + Dice(softmax): ``(N, C, H, W)`` and ``(N, H, W)`` indices).
        - output: scalar (each component must reduce to a scalar).

    Example:
        >>> criterion = CombinedLoss({"bce": WeightedBCELoss(), "dice": DiceLoss()}, weights={"dice": 0.5})
        >>> logits = torch.randn(2, 1, 8, 8, requires_grad=True)
        >>> total, parts = criterion(logits, (torch.rand(2, 1, 8, 8) < 0.3).float(), return_components=True)
        >>> total.backward(); sorted(parts)
        ['bce', 'dice']
    """

    def __init__(self, losses: Mapping[str, nn.Module], weights: Optional[Mapping[str, float]] = None) -> None:
        super().__init__()
        fn = "CombinedLoss"
        if not isinstance(losses, Mapping) or not losses:
            fail(fn, "losses", "a non-empty dict {name: loss module}", losses, error=TypeError)
        for name, loss in losses.items():
            if not isinstance(loss, nn.Module):
                fail(fn, f"losses[{name!r}]", "an nn.Module", type(loss).__name__,
                     "wrap functions in a module, or use build_loss", error=TypeError)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(losses))
        if unknown:
            fail(fn, "weights", f"keyed by the loss names {sorted(losses)}", unknown)
        for name, factor in weights.items():
            check_number(fn, f"weights[{name!r}]", factor)
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = {name: float(weights.get(name, 1.0)) for name in losses}

    def extra_repr(self) -> str:
        return "weights=" + repr(self.weights)

    def forward(self, logits: Tensor, target: Tensor, return_components: bool = False):
        """The weighted total; with ``return_components`` also ``{name: unweighted component}`` for logging."""
        components = {name: loss(logits, target) for name, loss in self.losses.items()}
        for name, value in components.items():
            if not isinstance(value, Tensor) or value.dim() != 0:
                fail("CombinedLoss.forward", f"component {name!r}", "a scalar tensor (reduction 'mean' or 'sum')",
                     value)
        total = sum(self.weights[name] * value for name, value in components.items())
        return (total, components) if return_components else total


# --------------------------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------------------------


def _cross_entropy(*, weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean",
                   label_smoothing: float = 0.0) -> nn.Module:
    return nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing)


def _class_balanced_cross_entropy(*, class_counts: Any, strategy: str = "class_balanced", beta: float = 0.9999,
                                  blend: float = 0.5, ignore_index: int = -100, reduction: str = "mean",
                                  label_smoothing: float = 0.0) -> nn.Module:
    return _cross_entropy(weight=class_weights(class_counts, strategy, beta=beta, blend=blend),
                          ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)


def _weighted_bce(*, pos_weight: Optional[Union[float, Tensor]] = None, class_counts: Any = None,
                  max_weight: Optional[float] = None, ignore_index: Optional[int] = None,
                  reduction: str = "mean") -> nn.Module:
    if (pos_weight is None) == (class_counts is None):
        fail("build_loss", "'weighted_bce' options", "exactly one of pos_weight or class_counts "
             "([background, foreground])", {"pos_weight": pos_weight, "class_counts": class_counts},
             "use 'bce' for an unweighted BCE")
    if class_counts is not None:
        counts = torch.as_tensor(class_counts)
        if counts.shape != (2,):
            fail("build_loss", "class_counts", "[background, foreground] counts for 'weighted_bce'", counts)
        pos_weight = pos_weight_from_counts(counts[1], counts[0], max_weight=max_weight)
    return WeightedBCELoss(pos_weight=pos_weight, ignore_index=ignore_index, reduction=reduction)


LOSSES: dict = {
    "bce": WeightedBCELoss,
    "weighted_bce": _weighted_bce,
    "focal": SigmoidFocalLoss,
    "sigmoid_focal": SigmoidFocalLoss,
    "softmax_focal": SoftmaxFocalLoss,
    "dice": DiceLoss,
    "tversky": TverskyLoss,
    "jaccard": JaccardLoss,
    "focal_tversky": FocalTverskyLoss,
    "generalized_dice": GeneralizedDiceLoss,
    "lovasz_hinge": LovaszHingeLoss,
    "lovasz_softmax": LovaszSoftmaxLoss,
    "seesaw": SeesawLoss,
    "binary_seesaw": BinarySeesawLoss,
    "ce": _cross_entropy,
    "class_balanced_ce": _class_balanced_cross_entropy,
}
"""Loss names known to :func:`build_loss`, and what builds each."""

_TENSOR_OPTIONS = ("weight", "alpha", "pos_weight")
_RESERVED = ("type", "loss_weight", "name")


def _parse_value(text: str) -> Any:
    lowered = text.strip().lower()
    if text.strip() in ("None", "null"):  # lowercase "none" stays a string: it is a reduction
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def _split_top_level(text: str, separator: str) -> list:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[("
        depth -= char in "])"
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _parse_term(term: str) -> dict:
    """``"[factor*]name[:key=value,...]"`` -> a dict config."""
    config: dict = {}
    head, _, options = term.strip().partition(":")
    if "*" in head:
        factor, _, head = head.partition("*")
        try:
            config["loss_weight"] = float(factor)
        except ValueError:
            fail("build_loss", "config", "terms of the form 'factor*name:key=value,...'", term,
                 "the factor before '*' must be a number")
    config["type"] = head.strip()
    for option in _split_top_level(options, ",") if options.strip() else []:
        key, equals, value = option.partition("=")
        if not equals or not key.strip():
            fail("build_loss", "config", "options of the form key=value", option.strip(),
                 f"in {term.strip()!r}; separate options with ','")
        config[key.strip()] = _parse_value(value)
    return config


def _accepted(builder: Callable) -> list:
    target = builder.__init__ if inspect.isclass(builder) else builder
    return [name for name, parameter in inspect.signature(target).parameters.items()
            if name != "self" and parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)]


def _build_one(config: Mapping) -> tuple:
    """A ``{"type": name, ...}`` config -> ``(name, module, loss_weight)``."""
    fn = "build_loss"
    name = config.get("type")
    if not isinstance(name, str) or name not in LOSSES:
        close = difflib.get_close_matches(str(name), list(LOSSES), n=1)
        fail(fn, "type", f"one of {', '.join(repr(k) for k in LOSSES)}", name,
             f"did you mean {close[0]!r}?" if close else "")
    builder = LOSSES[name]
    options = {k: v for k, v in config.items() if k not in _RESERVED}
    accepted = _accepted(builder)
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            fail(fn, f"options of {name!r}", f"among {', '.join(accepted)}", key,
                 f"did you mean {close[0]!r}?" if close else "")
    for key in _TENSOR_OPTIONS:
        if isinstance(options.get(key), (list, tuple)):
            options[key] = torch.tensor(options[key], dtype=torch.float32)
    loss_weight = config.get("loss_weight", 1.0)
    check_number(fn, "loss_weight", loss_weight)
    return config.get("name", name), builder(**options), float(loss_weight)


def build_loss(config: Union[str, Mapping, Sequence, nn.Module]) -> nn.Module:
    """Build any loss of the library from a string, a dict or a list of them, for config-driven training code.

    Forms:

    - ``"dice"``, ``"focal:gamma=2,alpha=0.5"``: one loss, options as ``key=value`` (Python literals;
      ``None``/``null`` and ``true``/``false`` accepted; other words are strings, e.g. ``activation=softmax``,
      ``reduction=none``).
    - ``"bce+dice"``, ``"focal:gamma=2+0.5*dice"``: a :class:`CombinedLoss`; ``factor*`` weights a term.
    - ``{"type": "dice", "activation": "softmax"}``: one loss; ``"loss_weight"`` and ``"name"`` are used in a
      combination. ``{"type": "bce+dice"}`` is the string form.
    - ``[{"type": "ce"}, {"type": "dice", "activation": "softmax", "loss_weight": 0.5}]``: a combination.
    - an ``nn.Module`` is returned as is.

    Names: ``bce`` (:class:`WeightedBCELoss`), ``weighted_bce`` (BCE with ``pos_weight``, or ``class_counts``
    ``[background, foreground]`` to derive it as ``n_bg / n_fg``, optional ``max_weight``), ``focal`` /
    ``sigmoid_focal`` (:class:`SigmoidFocalLoss`), ``softmax_focal`` (:class:`SoftmaxFocalLoss`), ``dice``,
    ``tversky``, ``jaccard``, ``focal_tversky``, ``generalized_dice``, ``lovasz_hinge``, ``lovasz_softmax``,
    ``seesaw`` (:class:`SeesawLoss`, needs ``num_classes``), ``binary_seesaw`` (:class:`BinarySeesawLoss`),
    ``ce`` (``torch.nn.CrossEntropyLoss``), ``class_balanced_ce`` (cross-entropy with weights from
    ``class_counts``; ``strategy`` one of the :func:`class_weights` strategies, ``beta``, ``blend``).
    List-valued ``weight``/``alpha``/``pos_weight`` become float tensors.

    A single loss is returned as its module; several as a :class:`CombinedLoss` keyed by name (repeated names
    get ``_1``, ``_2``... suffixes).

    Example:
        >>> criterion = build_loss("bce+0.5*dice")
        >>> criterion.weights
        {'bce': 1.0, 'dice': 0.5}
    """
    fn = "build_loss"
    if isinstance(config, nn.Module):
        return config
    if isinstance(config, str):
        terms = [_parse_term(term) for term in _split_top_level(config, "+")]
    elif isinstance(config, Mapping):
        if isinstance(config.get("type"), str) and "+" in config["type"]:
            if len(config) > 1:
                fail(fn, "config", "only {'type': 'a+b'} for a combination given as a string", dict(config),
                     "give per-loss options in a list of dicts")
            return build_loss(config["type"])
        terms = [dict(config)]
    elif isinstance(config, Sequence) and config and all(isinstance(c, (Mapping, str)) for c in config):
        terms = [_parse_term(c) if isinstance(c, str) else dict(c) for c in config]
    else:
        fail(fn, "config", "a string, a dict with 'type', a non-empty list of them, or an nn.Module", config,
             error=TypeError)
        raise AssertionError  # unreachable
    built = [_build_one(term) for term in terms]
    if len(built) == 1 and built[0][2] == 1.0:
        return built[0][1]
    losses, weights, seen = {}, {}, {}
    for name, module, factor in built:
        key = name if name not in seen else f"{name}_{seen[name]}"
        seen[name] = seen.get(name, 0) + 1
        losses[key], weights[key] = module, factor
    return CombinedLoss(losses, weights)


__all__ = ["CombinedLoss", "LOSSES", "build_loss"]
