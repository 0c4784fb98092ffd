"""Each loss's value and gradient against the predicted probability of the true class, and Seesaw's factors.

Two classes stand for every imbalanced problem: a frequent one (background, head) with ``ratio`` times more
samples than a rare one (foreground, tail). Losses that need counts get these: weighted BCE ``pos_weight =
ratio``, class-balanced CE the two counts, and the Seesaw losses their ``class_counts`` buffer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from ..losses import SIGMOID, BuiltLoss, LossSpec, build, is_region_loss
from .plots import _colors, _plt, _save

RARE, FREQUENT = "rare", "frequent"


def two_class_counts(ratio: float, rare: int = 1000) -> List[int]:
    """``[frequent, rare]`` sample counts (index 0 is the background / head class)."""
    return [int(round(ratio * rare)), rare]


def build_for_curves(spec: LossSpec, ratio: float) -> BuiltLoss:
    """``spec`` built with ``reduction="sum"`` (so one sample's value keeps its class weight) and its counts set."""
    counts = two_class_counts(ratio)
    built = build(LossSpec(spec.text, [{"reduction": "sum", **term} for term in spec.terms]), counts)
    if hasattr(built.module, "class_counts"):
        built.module.class_counts.copy_(torch.tensor(counts))
    built.module.eval()
    return built


def loss_and_gradient(built: BuiltLoss, probabilities: np.ndarray, true_class: str) -> Tuple[np.ndarray, np.ndarray]:
    """Loss and ``|dL / d(true class's logit)|`` of one sample whose true class has each probability.

    Sigmoid losses: a pixel of class 1 (rare, foreground) with logit ``logit(p)``, or of class 0 (frequent,
    background) with logit ``-logit(p)``. Softmax losses: two logits ``z``, the true one ``logit(p)``, the other 0.
    """
    values, gradients = [], []
    label = 1 if true_class == RARE else 0
    for p in probabilities:
        margin = torch.tensor(float(np.log(p) - np.log1p(-p)), dtype=torch.float64, requires_grad=True)
        if built.spec.family == SIGMOID:
            logits = (margin if label == 1 else -margin).reshape(1, 1)
            target = torch.full((1, 1), float(label), dtype=torch.float64)
        else:
            logits = torch.zeros(2, dtype=torch.float64).index_put((torch.tensor(label),), margin).reshape(1, 2)
            target = torch.tensor([label])
        value = built.module(logits, target)
        (gradient,) = torch.autograd.grad(value, margin)
        values.append(float(value.detach()))
        gradients.append(abs(float(gradient)))
    return np.asarray(values), np.asarray(gradients)


def plot_losses(losses: Sequence[BuiltLoss], ratio: float, path: Path) -> Path:
    """Two panels: value and gradient magnitude against the true class's probability, for both classes."""
    plt = _plt()
    probabilities = np.linspace(0.005, 0.995, 199)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    for built, color in zip(losses, _colors(len(losses))):
        for true_class, style in ((RARE, "-"), (FREQUENT, "--")):
            values, gradients = loss_and_gradient(built, probabilities, true_class)
            label = built.label if true_class == RARE else None
            left.plot(probabilities, values, style, color=color, label=label)
            right.plot(probabilities, gradients, style, color=color, label=label)
    left.set(xlabel="predicted probability of the true class", ylabel="loss (log scale)", yscale="log",
             ylim=(1e-4, None), title="Loss")
    right.set(xlabel="predicted probability of the true class", yscale="log", ylim=(1e-4, None),
              ylabel="|gradient| on the true class's logit (log scale)", title="Gradient")
    left.legend(fontsize=8)
    for axis in (left, right):
        axis.grid(alpha=0.3, which="both")
    fig.suptitle(f"solid: sample of the rare class (foreground / tail); dashed: of the frequent class "
                 f"({ratio:g}x more samples)", fontsize=10)
    return _save(fig, path)


def plot_seesaw_factors(ps: Sequence[float], qs: Sequence[float], path: Path) -> Path:
    """Seesaw's mitigation ``M_ij = (n_j / n_i)^p`` (when ``n_j < n_i``) and compensation ``(s_j / s_i)^q``."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    count_ratio = np.logspace(-3, 1, 300)
    for p, color in zip(ps, _colors(len(ps))):
        left.plot(count_ratio, np.where(count_ratio < 1, count_ratio**p, 1.0), color=color, label=f"p = {p:g}")
    left.set(xscale="log", yscale="log", ylim=(1e-3, 2), xlabel="n_j / n_i: samples of the negative class j over "
             "the true class i", ylabel="mitigation factor M_ij",
             title="Mitigation: smaller penalty on rarer negative classes")
    probability_ratio = np.logspace(-1, 1, 300)
    for q, color in zip(qs, _colors(len(qs))):
        right.plot(probability_ratio, np.where(probability_ratio > 1, probability_ratio**q, 1.0), color=color,
                   label=f"q = {q:g}")
    right.set(xscale="log", yscale="log", xlabel="s_j / s_i: predicted probability of negative class j over the "
              "true class i", ylabel="compensation factor C_ij", title="Compensation: larger penalty on mistakes")
    for axis in (left, right):
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3, which="both")
    fig.suptitle("Seesaw loss: the logit of negative class j is shifted by log(M_ij * C_ij)", fontsize=10)
    return _save(fig, path)


def seesaw_exponents(losses: Sequence[BuiltLoss], defaults: Dict[str, Sequence[float]]) -> Dict[str, List[float]]:
    """The reference ``p`` and ``q`` values plus those of the Seesaw losses given, sorted."""
    found = {key: set(values) for key, values in defaults.items()}
    for built in losses:
        for key in found:
            value = getattr(built.module, key, None)
            if set(built.spec.names) & {"seesaw", "binary_seesaw"} and isinstance(value, (int, float)):
                found[key].add(float(value))
    return {key: sorted(values) for key, values in found.items()}


def skipped_region_losses(specs: Sequence[LossSpec]) -> List[str]:
    return [spec.text for spec in specs if is_region_loss(spec)]
