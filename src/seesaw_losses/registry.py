"""The one list of the library's losses, and what everything else needs to know about each.

A loss is declared once, with :func:`register`, next to its module class (``modules/<family>.py``), one import
away from its function (``functional/<family>.py``: the plain formula; an elementwise loss also has a fused form
there and a branch of its family's Triton kernel in ``functional/_triton.py``, and tests pin the three to each
other). :func:`build_loss`, the ``seesaw`` command (``--loss`` parsing, ``seesaw losses``, ``seesaw plot``), the
benchmark, the compile and property tests and the README's loss table all read :func:`available_losses`; none
keeps a list of its own.

Adding a loss means: its function, one :class:`LossEntry`, its tests. An entry without a module class gets a
generic one (:class:`FunctionLoss`) that stores the options and calls the function.

This module imports nothing of the library: the modules register themselves when they are imported, and
``import seesaw_losses`` imports them all, so the registry is full whenever the package is.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from torch import Tensor, nn

TASKS = ("binary", "multi-label", "multi-class", "long-tailed", "detection")
"""Task kinds a loss can serve: binary segmentation/classification, multi-label, multi-class (segmentation or
classification), long-tailed classification, detection classification heads."""

TARGETS = ("binary", "index", "option")
"""The target a loss takes: ``"binary"`` one logit per element and a target of the logits' shape with values in
``[0, 1]`` (binary and multi-label); ``"index"`` ``(N, C, *)`` logits with ``(N, *)`` class indices (the softmax
losses, and EQLv2, a sigmoid loss whose one-vs-all targets come from class indices); ``"option"`` follows the
loss's ``activation`` option (the overlap and topology families: a target of the logits' shape unless
``activation="softmax"``; see :mod:`seesaw_losses.functional._activation`)."""

DEFAULT_LOSSES = {
    "binary": ("bce", "weighted_bce", "focal", "dice", "bce+dice", "binary_seesaw", "binary_seesaw+dice",
               "binary_seesaw+cldice", "dice+skeleton_recall"),
    # LDAM-DRW takes scale=1: the comparison's models have plain linear heads, not cosine classifiers;
    # balanced_softmax is logit_adjusted at its default tau = 1 (the same loss twice unless tau is tuned)
    "multi-class": ("ce", "class_balanced_ce", "softmax_focal", "seesaw", "logit_adjusted", "ldam_drw:scale=1"),
    "curves": ("bce", "weighted_bce", "focal:gamma=1", "focal:gamma=2", "focal:gamma=5", "binary_seesaw", "ce",
               "seesaw"),
}
"""The losses compared (``seesaw compare``, ``seesaw demo``) or plotted (``seesaw plot``) when none are named."""


@dataclass(frozen=True)
class Hyperparameter:
    """A tunable hyperparameter's search range: ``[low, high]`` (``log`` scale, ``integer`` values), or a
    categorical ``choices`` tuple (``low``/``high`` unused)."""

    low: float = 0.0
    high: float = 1.0
    log: bool = False
    integer: bool = False
    choices: Tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not self.choices and not self.low <= self.high:
            raise ValueError(f"Hyperparameter: low must be <= high, got {self.low} > {self.high}")
        if self.log and not self.choices and self.low <= 0:
            raise ValueError(f"Hyperparameter: low must be > 0 on a log scale, got {self.low}")


@dataclass(frozen=True)
class LossEntry:
    """One loss of the library and its metadata.

    Attributes:
        name: the name :func:`build_loss` and ``--loss`` take.
        function: the pure function (``functional.<name>_loss``); None only for losses PyTorch provides.
        module: the ``nn.Module`` class, or a factory taking keyword options and returning a module; None builds
            a :class:`FunctionLoss` around ``function``.
        tasks: the :data:`TASKS` it serves.
        summary: one line for ``seesaw losses`` and the README.
        reference: the paper (authors, venue, year), or where the formula comes from.
        target: the target it takes, one of :data:`TARGETS`.
        needs_counts: whether it uses the training data's class counts (given, or counted as it trains).
        counts_argument: the option that receives the training label counts when the ``seesaw`` command builds
            it (``"class_counts"``), or None when the loss counts by itself or needs none.
        derived_attribute: the module attribute computed from those counts, printed by the command (e.g.
            ``"pos_weight"``).
        region: whether a pixel's loss depends on the other pixels (no per-pixel curve in ``seesaw plot``).
        background_label: whether an index target also takes label ``C`` (``C`` logits), the background of a
            dense detection head (equalized focal loss).
        state: the module's buffers that training updates (``forward`` in training mode, ``set_epoch``), which a
            checkpoint must carry and the compile tests compare with eager training step by step; empty for a
            loss without state. Its ``forward`` reads them through ``read_state`` (``modules/_class_counts.py``),
            so that a compiled backward never sees them updated.
        defaults: the hyperparameters' default values, as the module's signature has them.
        search_space: a :class:`Hyperparameter` per tunable option (``seesaw compare --tune``).
        aliases: other names that build the same loss.
    """

    name: str
    function: Optional[Callable[..., Tensor]]
    tasks: Tuple[str, ...]
    summary: str
    reference: str
    module: Optional[Callable[..., nn.Module]] = None
    target: str = "binary"
    needs_counts: bool = False
    counts_argument: Optional[str] = None
    derived_attribute: Optional[str] = None
    region: bool = False
    background_label: bool = False
    state: Tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, Hyperparameter] = field(default_factory=dict)
    aliases: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        fn = f"LossEntry({self.name!r})"
        if not self.name.isidentifier():
            raise ValueError(f"{fn}: name must be an identifier, got {self.name!r}")
        if self.function is None and self.module is None:
            raise ValueError(f"{fn}: function or module must be given, got neither")
        if not self.tasks or set(self.tasks) - set(TASKS):
            raise ValueError(f"{fn}: tasks must be a non-empty tuple among {TASKS}, got {self.tasks!r}")
        if self.target not in TARGETS:
            raise ValueError(f"{fn}: target must be one of {TARGETS}, got {self.target!r}")
        if not isinstance(self.state, tuple) or not all(isinstance(b, str) and b.isidentifier() for b in self.state):
            raise ValueError(f"{fn}: state must be a tuple of buffer names, got {self.state!r}")
        accepted = self.options()
        unknown = sorted((set(self.defaults) | set(self.search_space)) - set(accepted))
        if unknown and not self._takes_any_option():
            raise ValueError(f"{fn}: defaults and search_space must name options of the loss "
                             f"({', '.join(accepted)}), got {unknown}")

    @property
    def activation(self) -> str:
        """Deprecated spelling of :attr:`target` (``"sigmoid"`` for ``"binary"``, ``"softmax"`` for ``"index"``);
        removed in the next release."""
        warnings.warn("LossEntry.activation is deprecated and will be removed in the next release; read "
                      "LossEntry.target ('binary' | 'index' | 'option')", DeprecationWarning, stacklevel=2)
        return {"binary": "sigmoid", "index": "softmax"}.get(self.target, self.target)

    @property
    def builder(self) -> Callable[..., nn.Module]:
        if self.module is not None:
            return self.module
        function = self.function
        assert function is not None
        return lambda **options: FunctionLoss(function, name=self.name, **options)

    def _signature_target(self) -> Callable[..., Any]:
        if self.module is None:
            assert self.function is not None
            return self.function
        return self.module.__init__ if inspect.isclass(self.module) else self.module

    def _takes_any_option(self) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(self._signature_target()).parameters.values())

    def options(self) -> Tuple[str, ...]:
        """The keyword options the loss accepts when built."""
        skipped = {"self"} | ({"logits", "target"} if self.module is None else set())
        return tuple(name for name, p in inspect.signature(self._signature_target()).parameters.items()
                     if name not in skipped and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

    def build(self, **options: Any) -> nn.Module:
        """The loss as a module, with ``options`` on top of its defaults."""
        return self.builder(**options)

    @property
    def kind(self) -> str:
        """The task kinds as one string, e.g. ``"binary, multi-label"``."""
        return ", ".join(self.tasks)


class FunctionLoss(nn.Module):
    """A module around a pure loss function: keeps the keyword options and calls ``function(logits, target,
    **options)``. What an entry without a module class builds.

    Shape:
        - whatever the function takes; output: the function's.
    """

    def __init__(self, function: Callable[..., Tensor], *, name: str = "", **options: Any) -> None:
        super().__init__()
        signature = inspect.signature(function)
        accepted = [n for n, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY]
        for key in options:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{name or function.__name__}: options must be among {', '.join(accepted)}, "
                                 f"got {key!r}{hint}")
        signature.bind_partial(None, None, **options)
        self.function, self.name, self.options = function, name or function.__name__, dict(options)

    def extra_repr(self) -> str:
        return ", ".join([self.name] + [f"{k}={v!r}" for k, v in self.options.items()])

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.function(logits, target, **self.options)


_ENTRIES: Dict[str, LossEntry] = {}
_ALIASES: Dict[str, str] = {}


def register(entry: LossEntry) -> LossEntry:
    """Add ``entry`` to the registry (its name and aliases must be new); returns it."""
    for name in (entry.name,) + entry.aliases:
        if name in _ENTRIES or name in _ALIASES:
            raise ValueError(f"register: name must be new, got {name!r} (already registered)")
    _ENTRIES[entry.name] = entry
    for alias in entry.aliases:
        _ALIASES[alias] = entry.name
    return entry


def unregister(name: str) -> None:
    """Remove a registered loss and its aliases (for tests and plugins that register temporarily)."""
    entry = _ENTRIES.pop(get_loss(name).name)
    for alias in entry.aliases:
        _ALIASES.pop(alias, None)


def available_losses() -> Tuple[LossEntry, ...]:
    """Every registered loss, in registration order (family by family)."""
    return tuple(_ENTRIES.values())


def loss_names(*, aliases: bool = False) -> Tuple[str, ...]:
    """The registered names (with ``aliases``, those too)."""
    return tuple(_ENTRIES) + (tuple(_ALIASES) if aliases else ())


def get_loss(name: object, *, fn: str = "get_loss", arg: str = "name") -> LossEntry:
    """The entry for ``name`` or one of its aliases; a ``ValueError`` with a "did you mean" otherwise."""
    if isinstance(name, str):
        if name in _ENTRIES:
            return _ENTRIES[name]
        if name in _ALIASES:
            return _ENTRIES[_ALIASES[name]]
    known = list(_ENTRIES) + list(_ALIASES)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{fn}: {arg} must be one of {', '.join(repr(k) for k in _ENTRIES)}, got {name!r}{hint}")


def default_losses(kind: str) -> Tuple[str, ...]:
    """The loss strings (:func:`seesaw_losses.build_loss` form) used when none are named: ``"binary"`` and
    ``"multi-class"`` for ``seesaw compare`` and ``seesaw demo``, ``"curves"`` for ``seesaw plot``."""
    if kind not in DEFAULT_LOSSES:
        close = difflib.get_close_matches(str(kind), list(DEFAULT_LOSSES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"default_losses: kind must be one of {', '.join(map(repr, DEFAULT_LOSSES))}, "
                         f"got {kind!r}{hint}")
    return DEFAULT_LOSSES[kind]


__all__ = ["DEFAULT_LOSSES", "TARGETS", "TASKS", "FunctionLoss", "Hyperparameter", "LossEntry", "available_losses",
           "default_losses", "get_loss", "loss_names", "register", "unregister"]
