"""Properties every registered loss has, checked from its registry entry alone.

:func:`check_entry` derives the inputs from the entry's metadata (``activation``, ``tasks``, ``needs_counts`` /
``counts_argument``, the options it accepts), so a loss is covered the moment it is registered. For the function
and the module form, on generated cases (1 to 3 spatial dimensions, batch 0 to 4, sparse or dense targets,
``ignore_index`` or not, logits up to +-1e4 in float32 / float16 / bfloat16, contiguous, channels-last or strided
inputs, each reduction) it checks that:

- the loss and its gradient are finite, and the gradient has the input's dtype;
- ignored elements get a zero gradient; an empty input gives a zero loss and a zero gradient;
- the result agrees with the float64 result on the same (rounded) inputs (the loss always; the gradient too,
  except for region losses, whose subgradient at ties may pick another order);
- channels-last and strided inputs give the values of contiguous ones, and two calls are bitwise identical.

Case generation is seeded by hypothesis (``derandomize``) and the tensors by a drawn seed, so a run is
reproducible and its time is bounded by ``MAX_EXAMPLES``.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seesaw_losses.registry import LossEntry

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SCALES = (1.0, 30.0, 1e4)
LAYOUTS = ("contiguous", "channels_last", "strided")
REDUCTIONS = ("mean", "sum", "none")
FORMS = ("module", "function")
IGNORE = 255
MAX_EXAMPLES = 50


@dataclass(frozen=True)
class Case:
    form: str
    activation: Optional[str]
    batch: int
    channels: int
    spatial: Tuple[int, ...]
    dtype: torch.dtype
    scale: float
    ignore: bool
    dense: bool
    per_image: bool
    reduction: str
    layout: str
    seed: int


_ACTIVATION = {"binary": "sigmoid", "index": "softmax"}


def activations(entry: LossEntry) -> tuple:
    """The activations an entry takes: its own, or for ``"option"`` each value of its ``activation`` option."""
    return ("sigmoid", "softmax", None) if entry.target == "option" else (_ACTIVATION[entry.target],)


def cases(entry: LossEntry):
    return st.builds(
        Case, form=st.sampled_from(FORMS if entry.function is not None else ("module",)),
        activation=st.sampled_from(activations(entry)),
        batch=st.integers(0, 4), channels=st.integers(1, 4),
        spatial=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), dtype=st.sampled_from(DTYPES),
        scale=st.sampled_from(SCALES), ignore=st.booleans(), dense=st.booleans(),
        per_image=st.booleans(), reduction=st.sampled_from(REDUCTIONS), layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**16))


def _index_targets(case: Case) -> bool:
    """Class-index targets (softmax; probability inputs with more than one channel) or masks of the input's shape."""
    return case.activation == "softmax" or (case.activation is None and case.channels > 1)


def _channels(entry: LossEntry, case: Case) -> int:
    if _index_targets(case):
        return max(case.channels, 2)
    if not {"multi-label", "multi-class"} & set(entry.tasks):
        return 1  # binary-only sigmoid losses: one logit per pixel
    return case.channels


def _counts(case: Case, channels: int) -> torch.Tensor:
    """Training label counts: ``[background, foreground]`` for sigmoid losses, else one per class (long-tailed)."""
    if not _index_targets(case) and case.activation != "softmax":
        return torch.tensor([900, 100])
    return torch.tensor([4 ** min(channels - c, 12) * 10 for c in range(channels)])  # int64 for 1,203 classes


@dataclass
class Inputs:
    logits: torch.Tensor
    target: torch.Tensor
    ignored: Optional[torch.Tensor]   # a mask of the logits' shape, True where the gradient must be 0
    call: object                      # (logits, target) -> loss
    options: dict                     # what the module was built with (module form)


def make_inputs(entry: LossEntry, case: Case, device: str = "cpu") -> Inputs:
    """Logits, target and a call of the entry (function or fresh module) for ``case``, on ``device``."""
    generator = torch.Generator().manual_seed(case.seed)
    channels = _channels(entry, case)
    shape = (case.batch, channels) + case.spatial
    raw = torch.randn(shape, generator=generator, dtype=torch.float64) * case.scale
    index = _index_targets(case)
    if case.activation is None:
        raw = torch.softmax(raw, 1) if index else torch.sigmoid(raw)
    logits = raw.to(case.dtype)
    rate = 0.5 if case.dense else 0.05
    if index:
        rare = torch.randint(1, channels, (case.batch,) + case.spatial, generator=generator)
        target = torch.where(torch.rand(rare.shape, generator=generator) < rate, rare, 0)
    else:
        target = (torch.rand(shape, generator=generator) < rate).float()
    options = {}
    accepted = entry.options()
    ignored = None
    ignore = case.ignore and "ignore_index" in accepted
    if ignore:
        drop = torch.rand(target.shape, generator=generator) < 0.25
        target = target.masked_fill(drop, IGNORE)
        ignored = drop.unsqueeze(1).expand(shape) if index else drop
        options["ignore_index"] = IGNORE
    if entry.target == "option":
        options["activation"] = case.activation
    if "per_image" in accepted:
        options["per_image"] = case.per_image
    if "reduction" in accepted:
        options["reduction"] = case.reduction
    counts = _counts(case, channels).to(device)
    if case.form == "function":
        call = _function_call(entry, options, counts)
    else:
        if "num_classes" in accepted:
            options["num_classes"] = channels
        if entry.counts_argument is not None:
            options[entry.counts_argument] = counts
        call = entry.build(**options).to(device)
    return Inputs(logits.to(device), target.to(device), None if ignored is None else ignored.to(device), call,
                  options)


def _function_call(entry: LossEntry, options: dict, counts: torch.Tensor):
    """``entry.function`` with the options it takes; its required arguments after ``(logits, target)`` (the
    class counts of a loss that needs them) get ``counts``."""
    assert entry.function is not None
    parameters = inspect.signature(entry.function).parameters
    required = [p for p in list(parameters.values())[2:]
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(required) <= 1 and (not required or entry.needs_counts), (entry.name, required)
    extra = (counts,) * len(required)
    keywords = {k: v for k, v in options.items() if k in parameters}
    return lambda logits, target: entry.function(logits, target, *extra, **keywords)


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last" and x.dim() in (4, 5):
        return x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    if layout == "contiguous":
        return x.contiguous()
    wide = torch.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    wide[..., ::2] = x
    return wide[..., ::2]


def _run(call, logits: torch.Tensor, target: torch.Tensor):
    """Loss (summed if unreduced) and gradient, on a fresh copy of a stateful module."""
    x = logits.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
    loss = copy.deepcopy(call)(x, target) if isinstance(call, torch.nn.Module) else call(x, target)
    total = loss.sum()
    total.backward()
    return total.detach(), x.grad


def check_case(entry: LossEntry, case: Case) -> None:
    """Every property of the module docstring, for one case."""
    inputs = make_inputs(entry, case)
    where = f"{entry.name} ({case})"
    x = _layout(inputs.logits, case.layout)
    loss, grad = _run(inputs.call, x, inputs.target)
    assert torch.isfinite(loss).all(), where
    assert grad.dtype == x.dtype and grad.shape == x.shape, where
    assert torch.isfinite(grad).all(), where
    if inputs.ignored is not None:
        assert (grad[inputs.ignored] == 0).all(), where
    if x.numel() == 0:
        assert loss.item() == 0, where
    contiguous_loss, contiguous_grad = _run(inputs.call, inputs.logits.contiguous(), inputs.target)
    torch.testing.assert_close(loss, contiguous_loss, msg=where)
    torch.testing.assert_close(grad, contiguous_grad, msg=where)
    again_loss, again_grad = _run(inputs.call, x, inputs.target)
    assert torch.equal(loss, again_loss) and torch.equal(grad, again_grad), where
    wide_loss, wide_grad = _run(inputs.call, inputs.logits.double(), inputs.target)
    half = case.dtype != torch.float32
    tolerance = dict(rtol=3e-2, atol=1e-2) if half else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss.double(), wide_loss, **tolerance, msg=where)
    if not entry.region and grad.numel():
        scale = wide_grad.abs().max().item()
        torch.testing.assert_close(grad.double(), wide_grad, rtol=tolerance["rtol"],
                                   atol=tolerance["atol"] * max(scale, 1e-3), msg=where)


def check_entry(entry: LossEntry, *, max_examples: int = MAX_EXAMPLES) -> None:
    """Check the properties of ``entry`` (function and module forms) on ``max_examples`` generated cases."""

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases(entry))
    def run(case: Case) -> None:
        check_case(entry, case)

    run()
