"""What the benchmark runs: the library's losses (every registered loss that fits the workload, as a module and
as its function), the same formulas under plain autograd, PyTorch's native losses (the practical floor) and
peers.

The peers that cannot be installed here are written out plainly from their published formulas: torchvision's
``sigmoid_focal_loss`` and MMDetection's Seesaw math (``cum_samples`` ratio matrix, softmax compensation,
``log`` of the weights added to the non-target logits, then ``cross_entropy``). MONAI and kornia run when
installed.
"""

from __future__ import annotations

from dataclasses import dataclass
import inspect
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..compose import build_loss
from ..functional._fused import plain_formula
from ..registry import LossEntry, available_losses
from .workloads import Workload

SEESAW_P, SEESAW_Q, SEESAW_EPS = 0.8, 2.0, 1e-2
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
COMPOSITIONS = ("bce+dice", "binary_seesaw+dice")
"""Combinations measured on the binary workloads, as ``build_loss`` builds them."""
PRECOMPUTED = {"skeleton": "tubed_skeleton", "distance_map": "signed_distance_map"}
"""Per-sample inputs a loss's ``forward`` can take precomputed (keyword -> the transform in
:mod:`seesaw_losses.transforms` a data pipeline would run): measured again with them given, as users should."""

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(logits, target, class_counts) -> scalar loss``."""


@dataclass(frozen=True)
class Candidate:
    """One implementation: ``group`` is ``"native"`` (the ratio baseline), ``"module"`` (a library loss as a
    module in training mode), ``"library"`` (its pure function), ``"plain"`` (that function's formula under
    plain autograd; ``pair`` names its library row) or ``"peer"``."""

    name: str
    group: str
    fn: LossFn
    pair: Optional[str] = None


def torchvision_sigmoid_focal(logits: Tensor, target: Tensor, alpha: float = FOCAL_ALPHA,
                              gamma: float = FOCAL_GAMMA) -> Tensor:
    """torchvision's ``sigmoid_focal_loss`` formula, ``reduction="mean"``."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * loss).mean()


def mmdet_seesaw(cls_score: Tensor, labels: Tensor, cum_samples: Tensor, p: float = SEESAW_P,
                 q: float = SEESAW_Q, eps: float = SEESAW_EPS) -> Tensor:
    """MMDetection's Seesaw math on ``(N, C)`` scores (dense inputs are flattened to that layout), mean over N."""
    if cls_score.dim() > 2:
        cls_score = cls_score.movedim(1, -1).reshape(-1, cls_score.shape[1])
        labels = labels.reshape(-1)
    num_classes = cls_score.shape[1]
    onehot = F.one_hot(labels, num_classes).to(cls_score.dtype)
    seesaw_weights = cls_score.new_ones(onehot.shape)
    if p > 0:
        counts = cum_samples.to(cls_score.dtype)
        ratio = counts[None, :].clamp(min=1) / counts[:, None].clamp(min=1)
        below = (ratio < 1.0).to(cls_score.dtype)
        sample_weights = ratio.pow(p) * below + (1 - below)
        seesaw_weights = seesaw_weights * sample_weights[labels, :]
    if q > 0:
        scores = F.softmax(cls_score.detach(), dim=1)
        self_scores = scores[torch.arange(len(scores), device=scores.device), labels]
        score_matrix = scores / self_scores[:, None].clamp(min=eps)
        above = (score_matrix > 1.0).to(cls_score.dtype)
        seesaw_weights = seesaw_weights * (score_matrix.pow(q) * above + (1 - above))
    cls_score = cls_score + seesaw_weights.log() * (1 - onehot)
    return F.cross_entropy(cls_score, labels)


def _plain(name: str, fn: LossFn) -> Candidate:
    def plain(logits: Tensor, target: Tensor, counts: Tensor) -> Tensor:
        with plain_formula():
            return fn(logits, target, counts)
    return Candidate(f"{name} (plain autograd)", "plain", plain, pair=name)


def _fits(entry: LossEntry, workload: Workload) -> bool:
    """Whether the entry serves the workload's task with the workload's activation."""
    return workload.task in entry.tasks and entry.target in (workload.target, "option")


def _options(entry: LossEntry, workload: Workload, accepted, counts: Optional[Tensor]) -> Dict[str, Any]:
    """The entry's defaults, with what the workload determines: the softmax activation of an ``"option"``
    loss, the number of classes, the training counts."""
    options = {k: v for k, v in entry.defaults.items() if k in accepted}
    if entry.target == "option" and workload.activation == "softmax":
        options["activation"] = "softmax"
    if "num_classes" in accepted:
        options["num_classes"] = workload.shape[1]
    if counts is not None and entry.counts_argument is not None and entry.counts_argument in accepted:
        options[entry.counts_argument] = counts
    return options


def _module_candidate(name: str, module: nn.Module, device: torch.device) -> Candidate:
    module.to(device).train()
    return Candidate(name, "module", lambda x, t, c: module(x, t))


def _precomputed_candidates(entry: LossEntry, module: nn.Module, workload: Workload) -> List[Candidate]:
    """The module again with each input of :data:`PRECOMPUTED` its ``forward`` takes, computed once per target
    (outside the timed calls after the first) as a data loader's workers would; none without the ``cli`` extra."""
    keywords = [k for k in PRECOMPUTED if k in inspect.signature(module.forward).parameters]
    try:
        from .. import transforms
        for keyword in keywords:
            getattr(transforms, PRECOMPUTED[keyword])(torch.zeros(1, 1, 2, 2), spatial_dims=2)
    except ImportError:
        return []
    rows = []
    for keyword in keywords:
        cache: Dict[tuple, Tensor] = {}
        transform = getattr(transforms, PRECOMPUTED[keyword])

        def call(x: Tensor, t: Tensor, c: Tensor, keyword=keyword, transform=transform, cache=cache) -> Tensor:
            key = (t.data_ptr(), tuple(t.shape))
            if key not in cache:
                cache.clear()
                classes = {"num_classes": workload.shape[1]} if workload.activation == "softmax" else {}
                value = transform(t.detach().cpu(), spatial_dims=len(workload.shape) - 2, **classes)
                cache[key] = torch.as_tensor(value).to(device=t.device)  # as the transform gives it (bool)
            return module(x, t, **{keyword: cache[key]})
        rows.append(Candidate(f"{entry.name} (module, {keyword} precomputed)", "module", call))
    return rows


def _function_candidate(entry: LossEntry, workload: Workload) -> Optional[Candidate]:
    """The entry's pure function with its default options (counts passed where it takes them), or None for a
    function PyTorch provides."""
    function = entry.function
    if function is None or not function.__module__.startswith("seesaw_losses."):
        return None
    parameters = inspect.signature(function).parameters
    keyword = [n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
    takes_counts = "class_counts" in parameters and "class_counts" not in keyword
    options = _options(entry, workload, keyword, None)
    suffix = " (softmax)" if options.get("activation") == "softmax" else ""

    def call(x: Tensor, t: Tensor, c: Tensor) -> Tensor:
        return function(x, t, c, **options) if takes_counts else function(x, t, **options)
    return Candidate(function.__name__ + suffix, "library", call)


def library_candidates(workload: Workload, counts: Tensor) -> List[Candidate]:
    """Every registered loss that fits the workload, as users call it (the module with default options, in
    training mode, counts from the workload where the command would fill them), and its pure function with
    the same options beside the same function under plain autograd. Functions shared by several entries
    appear once."""
    rows: List[Candidate] = []
    functions = set()
    for entry in available_losses():
        if not _fits(entry, workload):
            continue
        module = entry.build(**_options(entry, workload, entry.options(), counts))
        rows.append(_module_candidate(f"{entry.name} (module)", module, counts.device))
        rows += _precomputed_candidates(entry, module, workload)
        candidate = _function_candidate(entry, workload)
        if candidate is not None and candidate.name not in functions:
            functions.add(candidate.name)
            rows += [candidate, _plain(candidate.name, candidate.fn)]
    if workload.task == "binary":
        rows += [_module_candidate(f"build_loss({spec!r})", build_loss(spec), counts.device) for spec in COMPOSITIONS]
    return rows


def _binary_candidates() -> List[Candidate]:
    rows = [Candidate("torchvision focal formula", "peer", lambda x, t, c: torchvision_sigmoid_focal(x, t))]
    return rows + _monai_binary() + _kornia_binary()


def _multiclass_candidates(workload: Workload) -> List[Candidate]:
    dense = len(workload.shape) > 2
    rows = [Candidate("MMDetection Seesaw math", "peer", mmdet_seesaw)]
    if dense:
        rows += _monai_dense()
    return rows + _kornia_multiclass(dense)


def _monai_binary() -> List[Candidate]:
    try:
        from monai.losses import DiceLoss, FocalLoss
    except ImportError:
        return []
    focal = FocalLoss(gamma=FOCAL_GAMMA, alpha=FOCAL_ALPHA)
    dice = DiceLoss(sigmoid=True)
    return [Candidate("MONAI FocalLoss", "peer", lambda x, t, c: focal(x, t)),
            Candidate("MONAI DiceLoss(sigmoid)", "peer", lambda x, t, c: dice(x, t))]


def _monai_dense() -> List[Candidate]:
    try:
        from monai.losses import DiceLoss, FocalLoss
    except ImportError:
        return []
    focal = FocalLoss(gamma=FOCAL_GAMMA, to_onehot_y=True, use_softmax=True)
    dice = DiceLoss(softmax=True, to_onehot_y=True)
    return [Candidate("MONAI FocalLoss(softmax)", "peer", lambda x, t, c: focal(x, t.unsqueeze(1))),
            Candidate("MONAI DiceLoss(softmax)", "peer", lambda x, t, c: dice(x, t.unsqueeze(1)))]


def _kornia_binary() -> List[Candidate]:
    try:
        from kornia.losses import binary_focal_loss_with_logits
    except ImportError:
        return []
    return [Candidate("kornia binary_focal_loss_with_logits", "peer", lambda x, t, c: binary_focal_loss_with_logits(
        x, t, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, reduction="mean"))]


def _kornia_multiclass(dense: bool) -> List[Candidate]:
    try:
        from kornia.losses import dice_loss, focal_loss
    except ImportError:
        return []
    rows = [Candidate("kornia focal_loss", "peer", lambda x, t, c: focal_loss(
        x, t, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, reduction="mean"))]
    if dense:
        rows.append(Candidate("kornia dice_loss", "peer", lambda x, t, c: dice_loss(x, t)))
    return rows


def candidates(workload: Workload, counts: Tensor) -> List[Candidate]:
    """Every implementation that runs on ``workload`` (whose training ``counts`` the losses that need them get),
    the native baseline first."""
    if workload.activation == "sigmoid":
        native = Candidate("F.binary_cross_entropy_with_logits", "native",
                           lambda x, t, c: F.binary_cross_entropy_with_logits(x, t))
        peers = _binary_candidates() if workload.task == "binary" else []
    else:
        native = Candidate("F.cross_entropy", "native", lambda x, t, c: F.cross_entropy(x, t))
        peers = _multiclass_candidates(workload)
    return [native] + library_candidates(workload, counts) + peers
