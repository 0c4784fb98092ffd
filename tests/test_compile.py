"""``torch.compile(fullgraph=True)`` on every registered loss: no graph break, and compiled training equals eager
training, step after step.

The losses come from the registry, with inputs derived from each entry's metadata (``tests/properties.py``), so
a new loss is compiled the moment it is registered. Each (function and module forms, every activation it takes;
a stateful module also from scratch, counting the classes itself) trains three steps, then one step of gradient
accumulation (two forwards, one backward), compiled and eagerly; after every step the losses, the input
gradients and the modules' whole ``state_dict`` agree. The buffers a module updates as it trains must be those
its registry entry declares as ``state``, and each declared buffer must change.

Compiling is slow on a small CPU, so one compiled function computes every loss at once (one graph, one compile)
on tiny tensors. The default run compiles the whole registry with ``backend="aot_eager"`` (dynamo, AOTAutograd's
forward and backward graphs and its partitioner, no code generation) and the stateful modules and one loss of
each family with inductor; the slow run compiles everything with inductor on channels-last and strided inputs,
3-D volumes with ``ignore_index`` and 1,203 classes.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
import torch
from torch import Tensor, nn

import seesaw_losses
from properties import Case, _layout, activations, make_inputs

TOLERANCE = dict(rtol=1e-5, atol=1e-6)
NEEDS_EXTRA_INPUTS = ("boundary",)
"""Registered losses that cannot be compiled from logits and target alone: the boundary loss computes its distance
map with SciPy unless one is passed (compiled with a precomputed map in tests/test_topology.py)."""


def every_loss(calls, logits, targets):
    """Each call on its inputs (in the order of ``calls``, ``logits`` the leaf tensors), as a dict of scalars:
    what is compiled."""
    return {label: call(x, t).sum() for (label, call), x, t in zip(calls.items(), logits, targets)}


STEPS = 3
"""Plain training steps; one step of gradient accumulation follows."""


class Training(NamedTuple):
    call: object                           # (logits, target) -> loss, the same object at every step
    steps: List[Tuple[Tensor, Tensor]]     # (logits, target) of each forward
    stateful: bool                         # a module whose declared state changes as it trains


def _from_scratch(entry, options: dict) -> Optional[nn.Module]:
    """The stateful module without its optional counts, so that it counts the classes as it trains; None when it
    takes none, or needs them (then they stay fixed)."""
    if not entry.state or entry.counts_argument not in options:
        return None
    try:
        return entry.build(**{k: v for k, v in options.items() if k != entry.counts_argument})
    except TypeError:
        return None


def training_runs(entries, *, spatial=(5, 5), channels=4, batch=2, layout="contiguous",
                  device="cpu") -> Dict[str, Training]:
    """``{label: Training}`` for every entry, form and activation, with ``STEPS + 2`` forwards of fresh inputs
    (same shapes) each."""
    runs = {}
    for index, entry in enumerate(entries):
        if entry.name in NEEDS_EXTRA_INPUTS:
            continue
        for activation in activations(entry):
            for form in ("function", "module") if entry.function is not None else ("module",):
                cases = [Case(form=form, activation=activation, batch=batch, channels=channels, spatial=spatial,
                              dtype=torch.float32, scale=2.0, ignore=True, dense=step % 2 == 1, per_image=False,
                              reduction="mean", layout=layout, seed=100 * index + step)
                         for step in range(STEPS + 2)]
                inputs = [make_inputs(entry, case, device) for case in cases]
                steps = [(_layout(i.logits, layout), i.target) for i in inputs]
                counting = _from_scratch(entry, inputs[0].options) if form == "module" else None
                stateful = form == "module" and bool(entry.state) and counting is None
                runs[f"{entry.name} ({form}, {activation})"] = Training(inputs[0].call, steps, stateful)
                if counting is not None:  # the module with fixed counts has no state that changes
                    runs[f"{entry.name} (module from scratch, {activation})"] = Training(counting.to(device), steps,
                                                                                         True)
    return runs


def _registry_runs(device: str = "cpu") -> Dict[str, Training]:
    """:func:`training_runs` of every registered loss, plus a composition."""
    runs = training_runs(seesaw_losses.available_losses(), device=device)
    combined = seesaw_losses.build_loss("dice:activation=softmax,ignore_index=255 + 0.5 * softmax_focal:"
                                        "ignore_index=255 + ce:ignore_index=255")
    runs["CombinedLoss"] = Training(combined.to(device), runs["seesaw (module, softmax)"].steps, False)
    return runs


def _calls(device: str = "cpu") -> Dict[str, Tuple[object, Tensor, Tensor]]:
    """``{label: (call, logits, target)}``: every run of :func:`_registry_runs` with its first inputs."""
    return {label: (run.call, *run.steps[0]) for label, run in _registry_runs(device).items()}


class Step(NamedTuple):
    losses: Dict[str, Tensor]
    grads: Dict[str, Optional[Tensor]]
    state: Dict[str, Dict[str, Tensor]]


def _enter_epoch(runs: Dict[str, Training], step: int) -> None:
    """Modules with an epoch schedule go through the epochs ``start_epoch - 1, start_epoch, ...``, so that the
    schedule switches during training."""
    for run in runs.values():
        if hasattr(run.call, "set_epoch"):
            run.call.set_epoch(max(run.call.start_epoch - 1 + step, 0))


def train(runs: Dict[str, Training], fn) -> Iterator[Step]:
    """``STEPS`` steps (forward, backward), then one of gradient accumulation (two forwards, one backward), with
    ``fn`` (:func:`every_loss`, compiled or not): the losses, input gradients and module states after each."""
    calls = {label: run.call for label, run in runs.items()}
    for step in range(STEPS + 1):
        _enter_epoch(runs, step)
        forwards = (step,) if step < STEPS else (step, step + 1)
        leaves, totals, losses = [], [], {}
        for k in forwards:
            logits = [run.steps[k][0].detach().clone(memory_format=torch.preserve_format).requires_grad_()
                      for run in runs.values()]
            out = fn(calls, logits, [run.steps[k][1] for run in runs.values()])
            leaves.append(logits)
            totals.append(sum(out.values()))
            losses.update({label: value.detach() + losses.get(label, 0) for label, value in out.items()})
        flat = [x for logits in leaves for x in logits]
        grads = torch.autograd.grad(sum(totals), flat, allow_unused=True)
        per_run = [grads[i::len(runs)] for i in range(len(runs))]
        yield Step(
            losses,
            {label: None if all(g is None for g in gs) else sum(g for g in gs if g is not None)
             for label, gs in zip(runs, per_run)},
            {label: {k: v.detach().clone() for k, v in run.call.state_dict().items()}
             for label, run in runs.items() if isinstance(run.call, nn.Module)})


def compiled_and_eager(make_runs, backend: str):
    """``(compiled history, eager history, compiled runs, eager runs)`` of two fresh sets of ``make_runs()``."""
    torch._dynamo.reset()
    compiled_runs, eager_runs = make_runs(), make_runs()
    compiled = torch.compile(every_loss, fullgraph=True, dynamic=False, backend=backend)
    return list(train(compiled_runs, compiled)), list(train(eager_runs, every_loss)), compiled_runs, eager_runs


def assert_same_training(compiled: List[Step], eager: List[Step]) -> None:
    for step, (c, e) in enumerate(zip(compiled, eager)):
        assert c.losses.keys() == e.losses.keys()
        for label in e.losses:
            where = f"{label}, step {step + 1}"
            torch.testing.assert_close(c.losses[label], e.losses[label], **TOLERANCE, msg=where)
            if e.grads[label] is None:
                assert c.grads[label] is None or not bool(c.grads[label].any()), where
            else:
                torch.testing.assert_close(c.grads[label], e.grads[label], **TOLERANCE, msg=where)
        for label, state in e.state.items():
            assert c.state[label].keys() == state.keys(), label
            for key, value in state.items():
                torch.testing.assert_close(c.state[label][key], value, **TOLERANCE,
                                           msg=f"{label}: {key}, step {step + 1}")


def _stateful_entries():
    return [entry for entry in seesaw_losses.available_losses() if entry.state]


@pytest.fixture(scope="module")
def registry_aot_eager():
    return compiled_and_eager(_registry_runs, "aot_eager")


def test_every_registered_loss_compiles_without_graph_breaks(registry_aot_eager):
    compiled, _, _, _ = registry_aot_eager  # fullgraph=True raises on any graph break
    names = {label.split(" (")[0] for label in compiled[0].losses}
    assert names == {e.name for e in seesaw_losses.available_losses()} - set(NEEDS_EXTRA_INPUTS) | {"CombinedLoss"}
    assert all(bool(torch.isfinite(v)) for step in compiled for v in step.losses.values())


def test_compiled_training_matches_eager_step_after_step(registry_aot_eager):
    compiled, eager, _, _ = registry_aot_eager
    assert_same_training(compiled, eager)


def test_buffers_that_training_updates_are_the_declared_state(registry_aot_eager):
    _, eager, _, _ = registry_aot_eager
    changed: Dict[str, set] = {}
    for label, run in training_runs(seesaw_losses.available_losses()).items():
        if not isinstance(run.call, nn.Module):
            continue
        name, built, trained = label.split(" (")[0], run.call.state_dict(), eager[-1].state[label]
        moved = {key for key, value in built.items() if not torch.equal(value, trained[key])}
        undeclared = moved - set(seesaw_losses.get_loss(name).state)
        assert not undeclared, f"{label} updates {sorted(undeclared)}: declare them in its entry's state"
        changed.setdefault(name, set()).update(moved)
    for entry in _stateful_entries():
        assert set(entry.state) <= changed.get(entry.name, set()), f"{entry.name}: {entry.state} never changed"


INDUCTOR_FAMILIES = ("seesaw (function, softmax)", "focal (function, sigmoid)", "dice (function, softmax)")
"""Losses that inductor compiles in the default run besides the stateful modules: one of each family."""


def test_inductor_trains_the_stateful_modules_and_one_loss_per_family():
    def runs():
        every = training_runs(seesaw_losses.available_losses())
        return {label: run for label, run in every.items() if run.stateful or label in INDUCTOR_FAMILIES}

    compiled, eager, compiled_runs, _ = compiled_and_eager(runs, "inductor")
    assert {e.name for e in _stateful_entries()} <= {label.split(" (")[0] for label in compiled_runs}
    assert set(INDUCTOR_FAMILIES) <= set(compiled_runs)
    assert_same_training(compiled, eager)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # inductor compiles one graph of every loss: minutes on a small CPU
@pytest.mark.parametrize("layout, spatial, channels", [
    ("channels_last", (4, 6), 4), ("strided", (5, 5), 3), ("contiguous", (3, 4, 5), 4)])
def test_every_registered_loss_trains_compiled_as_eager_with_inductor(layout, spatial, channels):
    compiled, eager, _, _ = compiled_and_eager(
        lambda: training_runs(seesaw_losses.available_losses(), spatial=spatial, channels=channels, layout=layout),
        "inductor")
    assert_same_training(compiled, eager)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_long_tailed_losses_train_compiled_as_eager_on_1203_classes():
    entries = [e for e in seesaw_losses.available_losses() if {"long-tailed", "detection"} & set(e.tasks)]
    compiled, eager, _, _ = compiled_and_eager(
        lambda: training_runs(entries, spatial=(), channels=1203, batch=16), "inductor")
    assert_same_training(compiled, eager)
