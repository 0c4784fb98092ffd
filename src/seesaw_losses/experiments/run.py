"""What ``train(criterion, run)`` sees: the :class:`Run` of one call, the :class:`Trainer` protocol the built-in
trainers follow, and :class:`Diverged` (raise it from ``train`` to mark a diverged run). A leaf: trainers and tests import it, never the orchestration in
:mod:`.api`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
from torch import nn

from . import DataError, Diverged

__all__ = ["Diverged", "Run", "SIGMOID", "SOFTMAX", "Trainer", "checked_metrics"]

SIGMOID, SOFTMAX = "sigmoid", "softmax"  #: a loss's target family: one logit per pixel, or one logit per class


@dataclass
class Run:
    """What one call of ``train(criterion, run)`` is: see the attributes; ``train`` reads them, calls
    :meth:`report` once per epoch (pruning, curves), and may fill :attr:`history`, :attr:`artifacts` and
    :meth:`record_samples`.

    Attributes:
        seed: initialisation and data order.
        tuning: True for a tuning trial (score on your validation split), False for a final run (held-out split).
        loss: the complete ``build_loss`` string of ``criterion`` (hyperparameters, counts-derived options).
        hyperparameters: the tuned values of this call (``{}`` for the defaults).
        trial: the ``optuna.Trial`` of a tuning trial, else None.
        device: the device this process trains on (``"cpu"``, ``"cuda:0"``, ...).
        family: ``"sigmoid"`` (``criterion`` takes one logit per pixel) or ``"softmax"`` (one logit per class).
        history: metric name -> one value per epoch (``"validation"`` from :meth:`report`, ``"train_loss"``).
        artifacts: anything the report can plot (held-out outputs, masks and images, ``epoch_seconds``,
            ``peak_mb``), never saved; the report reads nothing else of the data.
        samples: metric name -> ``(scores, groups)`` of :meth:`record_samples`.
        metrics: what ``train`` returned, as floats (filled by :func:`~seesaw_losses.experiments.api.compare`).
    """

    seed: int
    tuning: bool
    loss: str
    hyperparameters: Dict[str, Any]
    trial: Any = None
    device: str = "cpu"
    family: str = SOFTMAX
    history: Dict[str, List[float]] = field(default_factory=dict)
    artifacts: Dict[str, Any] = field(default_factory=dict)
    samples: Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]] = field(default_factory=dict)
    metrics: Dict[str, float] = field(default_factory=dict)
    seconds: float = math.nan
    on_progress: Callable[[str], None] = field(default=lambda text: None, repr=False)

    def __getstate__(self) -> Dict[str, Any]:
        """Picklable (sent to the other ranks under ``torchrun``): without the progress callback."""
        return {**self.__dict__, "on_progress": None, "trial": None}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state, on_progress=lambda text: None)

    @property
    def sigmoid(self) -> bool:
        """Whether ``criterion`` takes one logit per pixel (a one-channel model output)."""
        return self.family == SIGMOID

    def report(self, step: int, value: float) -> None:
        """An intermediate validation value (kept as ``history["validation"]``); raises ``optuna.TrialPruned``
        when the pruner stops this trial."""
        value = float(value)
        self.history.setdefault("validation", []).append(value)
        if self.trial is not None:
            self.trial.report(value, step)
            if self.trial.should_prune():
                import optuna

                raise optuna.TrialPruned(f"pruned at step {step} (validation {value:.4g})")

    def record_samples(self, name: str, scores: Sequence[float], groups: Optional[Sequence[int]] = None) -> None:
        """Per-held-out-sample scores of metric ``name`` (same samples, same order in every final run);
        ``groups`` (e.g. the true class) makes the statistic the mean of the group means.

        Shape:
            - scores, groups: ``(samples,)``.
        """
        self.samples[name] = (np.asarray(scores, dtype=np.float64),
                              None if groups is None else np.asarray(groups))

    def progress(self, text: str = "") -> None:
        """One epoch done, with a status text for the progress display."""
        self.on_progress(text)


@runtime_checkable
class Trainer(Protocol):
    """A built-in ``train(criterion, run)``: besides the call, what :func:`~seesaw_losses.experiments.api.compare`
    reads from it when its own arguments leave it out.

    Attributes:
        name: the comparison's name in the report's files.
        kind: what it trains (``BINARY``, ``MULTICLASS``, ``LONG_TAIL``, ``CLASSIFICATION``): the report's plots.
        metric: the returned metric that ranks the losses (maximised).
        families: the loss families it can train (``"sigmoid"``, ``"softmax"``).
        ignore_index: the mask value left out of losses and metrics, or None.
        epochs: epochs per call (deferred re-weighting, progress steps).
    """

    name: str
    kind: str
    metric: str
    families: Tuple[str, ...]
    ignore_index: Optional[int]
    epochs: int

    def class_counts(self) -> List[int]:
        """Training samples (pixels) per class."""

    def __call__(self, criterion: nn.Module, run: Run) -> Mapping[str, float]:
        """Train with ``criterion`` and return ``{metric name: value}``."""


def checked_metrics(returned: Any, metric: str, loss: str, *, seed: Optional[int] = None,
                    trial: Optional[int] = None) -> Dict[str, float]:
    """What one call of ``train`` returned as ``{name: float}``, refused unless it is a mapping of numbers whose
    ``metric`` is finite: a :class:`DataError` (a ``ValueError``) for a missing, NaN or infinite ``metric``, a
    ``TypeError`` for anything else, each naming the ``loss`` and the final run's ``seed`` or the tuning
    ``trial`` (numbered from 1). The other metrics may be NaN (undefined, e.g. an empty group)."""
    where = f"loss {loss!r}, " + (f"tuning trial {trial}" if trial is not None else f"seed {seed}")
    if not isinstance(returned, Mapping):
        raise TypeError(f"compare: train must return a mapping {{metric name: value}}, got "
                        f"{type(returned).__name__} ({where})")
    try:
        values = {str(key): float(value) for key, value in returned.items()}
    except (TypeError, ValueError) as error:
        raise TypeError(f"compare: train must return numbers as metric values, got {dict(returned)!r} ({error}; "
                        f"{where})") from None
    if metric not in values or not math.isfinite(values[metric]):
        found = "missing" if metric not in values else "NaN" if math.isnan(values[metric]) else f"{values[metric]}"
        raise DataError(f"compare: metric {metric!r} is {found} in what train returned (keys: "
                        f"{', '.join(values) or 'none'}) for {where}; return a finite number for every run, or "
                        "pass metric= one of these")
    return values
