"""Combining losses, and building any loss of the library from a plain configuration."""

from __future__ import annotations

import ast
import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from .functional._validation import check_number, fail, shared_value_checks
from .registry import get_loss


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

    Examples:
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
        if weights is not None and not isinstance(weights, Mapping):
            fail(fn, "weights", "None or a dict {name: factor}", weights,
                 f"name the losses, e.g. weights={{{next(iter(losses))!r}: 0.5}}", error=TypeError)
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

    def forward(self, logits: Tensor, target: Tensor, return_components: bool = False, **inputs: Tensor):
        """The weighted total; with ``return_components`` also ``{name: unweighted component}`` for logging.

        The target's values are read once per rule for all the components (:func:`shared_value_checks`). Extra
        keyword ``inputs`` (a precomputed ``skeleton=`` or ``distance_map=``) go to the components whose
        ``forward`` takes them."""
        takes = {name: [key for key in inputs if key in inspect.signature(loss.forward).parameters]
                 for name, loss in self.losses.items()} if inputs else {}
        unused = sorted(set(inputs) - {key for keys in takes.values() for key in keys})
        if unused:
            fail("CombinedLoss.forward", "keyword inputs", "taken by at least one component's forward", unused)
        with shared_value_checks():
            components = {name: loss(logits, target, **{key: inputs[key] for key in takes.get(name, ())})
                          for name, loss in self.losses.items()}
        for name, value in components.items():
            if not isinstance(value, Tensor) or value.dim() != 0:
                fail("CombinedLoss.forward", f"component {name!r}", "a scalar tensor (reduction 'mean' or 'sum')",
                     value)
        total = sum(self.weights[name] * value for name, value in components.items())
        return (total, components) if return_components else total


# --------------------------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------------------------


_TENSOR_OPTIONS = ("class_weight", "pos_weight", "class_counts")
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


def _is_exponent_sign(text: str, index: int) -> bool:
    """Whether ``text[index]`` (a ``+`` or ``-``) is the sign of a number's exponent, as in ``1e+3``."""
    return (index >= 2 and text[index - 1] in "eE" and (text[index - 2].isdigit() or text[index - 2] == ".")
            and index + 1 < len(text) and text[index + 1].isdigit())


def _split_top_level(text: str, separator: str) -> list:
    """``text`` split at ``separator`` outside brackets (and, for ``+``, not in an exponent like ``1e+3``)."""
    parts, depth, current = [], 0, ""
    for index, char in enumerate(text):
        depth += char in "[("
        depth -= char in "])"
        if char == separator and depth == 0 and not _is_exponent_sign(text, index):
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


def parse_config(text: str) -> list:
    """A ``build_loss`` string -> one ``{"type": name, option: value, ...}`` dict per ``+``-separated term
    (``"loss_weight"`` holds a ``factor*``). Names are not looked up here."""
    return [_parse_term(term) for term in _split_top_level(text, "+")]


def _build_one(config: Mapping) -> tuple:
    """A ``{"type": name, ...}`` config -> ``(name, module, loss_weight)``; errors name ``build_loss`` and the
    term (``build_loss: term 'weighted_bce': ...``)."""
    entry = get_loss(config.get("type"), fn="build_loss", arg="type")
    name = str(config["type"])
    fn = f"build_loss: term {name!r}"
    options = {k: v for k, v in config.items() if k not in _RESERVED}
    accepted = entry.options()
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            fail(fn, "options", f"among {', '.join(accepted)}", key, f"did you mean {close[0]!r}?" if close else "")
    for key in _TENSOR_OPTIONS:
        if isinstance(options.get(key), (list, tuple)):
            options[key] = torch.tensor(options[key], dtype=torch.int64 if key == "class_counts" else torch.float32)
    loss_weight = config.get("loss_weight", 1.0)
    check_number(fn, "loss_weight", loss_weight)
    try:
        module = entry.build(**options)
    except (ValueError, TypeError) as error:
        raise (TypeError if isinstance(error, TypeError) else ValueError)(f"{fn}: {error}") from error
    return config.get("name", name), module, float(loss_weight)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


def config_text(terms: Sequence[Mapping[str, Any]]) -> str:
    """The ``build_loss`` string of config dicts, the inverse of :func:`parse_config`:
    ``"focal:gamma=2.5,alpha=0.3+0.5*dice"``."""
    parts = []
    for term in terms:
        weight = float(term.get("loss_weight", 1.0))
        options = ",".join(f"{k}={_format_value(v)}" for k, v in term.items() if k not in _RESERVED)
        parts.append(("" if weight == 1.0 else f"{weight:g}*") + str(term["type"]) + (f":{options}" if options else ""))
    return "+".join(parts)


def term_keys(names: Sequence[str]) -> list:
    """The key of each term of a combination in its :class:`CombinedLoss`: the loss's name, repeats suffixed
    ``_1``, ``_2``... (``["dice", "bce", "dice"]`` -> ``["dice", "bce", "dice_1"]``)."""
    return [name if not names[:k].count(name) else f"{name}_{names[:k].count(name)}" for k, name in enumerate(names)]


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

    Names: every loss of :func:`seesaw_losses.available_losses` (``seesaw losses`` prints them), e.g. ``bce``,
    ``weighted_bce`` (``pos_weight``, or ``class_counts`` ``[background, foreground]``), ``focal``, ``dice``,
    ``seesaw`` (needs ``num_classes``), ``ce``, ``class_balanced_ce`` (``class_counts``). List-valued
    ``class_weight``/``pos_weight`` become float tensors, ``class_counts`` an int64 tensor.

    A single loss is returned as its module; several as a :class:`CombinedLoss` keyed by name (repeated names
    get ``_1``, ``_2``... suffixes).

    Examples:
        >>> criterion = build_loss("bce+0.5*dice")
        >>> criterion.weights
        {'bce': 1.0, 'dice': 0.5}
    """
    fn = "build_loss"
    if isinstance(config, nn.Module):
        return config
    if isinstance(config, str):
        terms = parse_config(config)
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
    built = [_build_one(term) for term in terms]
    if len(built) == 1 and built[0][2] == 1.0:
        return built[0][1]
    keys = term_keys([name for name, _, _ in built])
    return CombinedLoss({key: module for key, (_, module, _) in zip(keys, built)},
                        {key: factor for key, (_, _, factor) in zip(keys, built)})


__all__ = ["CombinedLoss", "build_loss", "config_text", "parse_config", "term_keys"]
