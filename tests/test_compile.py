"""``torch.compile(fullgraph=True)`` on every registered loss: no graph break, and the same losses and gradients
as eager.

The losses come from the registry, with inputs derived from each entry's metadata (``tests/properties.py``), so
a new loss is compiled the moment it is registered. Compiling is slow on a small CPU, so one compiled function
computes every loss at once (one graph, one compile, shared by the tests of this module) on tiny tensors. That
graph goes through dynamo and AOT autograd (``backend="aot_eager"``: forward and backward graphs, no code
generation); inductor's code generation is exercised on one loss of each family.
"""

import pytest
import torch

import seesaw_losses
from properties import Case, activations, make_inputs

NEEDS_EXTRA_INPUTS = ("boundary",)
"""Registered losses that cannot be compiled from logits and target alone: the boundary loss computes its distance
map with SciPy unless one is passed (compiled with a precomputed map in tests/test_topology.py)."""


def _case(entry, form, activation, seed):
    return Case(form=form, activation=activation, batch=2, channels=4, spatial=(5, 5), dtype=torch.float32,
                scale=2.0, ignore=True, dense=False, per_image=False, reduction="mean", layout="contiguous",
                seed=seed)


def _calls(device="cpu"):
    """``{label: (call, logits, target)}`` for every entry, activation and form, plus a composition, on
    ``device``."""
    calls = {}
    for seed, entry in enumerate(seesaw_losses.available_losses()):
        if entry.name in NEEDS_EXTRA_INPUTS:
            continue
        for activation in activations(entry):
            for form in ("function", "module") if entry.function is not None else ("module",):
                inputs = make_inputs(entry, _case(entry, form, activation, seed), device)
                calls[f"{entry.name} ({form}, {activation})"] = (inputs.call, inputs.logits, inputs.target)
    multi = next(v for k, v in calls.items() if k.startswith("seesaw (module"))
    combined = seesaw_losses.build_loss("dice:activation=softmax,ignore_index=255 + 0.5 * softmax_focal:"
                                        "ignore_index=255 + ce:ignore_index=255")
    calls["CombinedLoss"] = (combined.to(device), multi[1], multi[2])
    return calls


def every_loss(calls, logits):
    """Each loss on its inputs (``logits`` the leaf tensors, in the order of ``calls``), as a dict of scalars."""
    return {label: call(x, target).sum() for (label, (call, _, target)), x in zip(calls.items(), logits)}


def _run(fn, calls):
    logits = [x.detach().clone().requires_grad_() for _, x, _ in calls.values()]
    losses = fn(calls, logits)
    grads = {label: torch.autograd.grad(losses[label], x, retain_graph=True, allow_unused=True)[0]
             for label, x in zip(calls, logits)}
    return losses, grads


def compile_and_run(make_calls, backend="aot_eager"):
    """``((compiled results, calls), (eager results, calls))`` for two fresh sets of ``make_calls()``: one
    graph of every call compiled with ``backend``, and eager."""
    torch._dynamo.reset()
    eager_calls, compiled_calls = make_calls(), make_calls()
    compiled = torch.compile(every_loss, fullgraph=True, dynamic=False, backend=backend)
    return (_run(compiled, compiled_calls), compiled_calls), (_run(every_loss, eager_calls), eager_calls)


@pytest.fixture(scope="module")
def compiled_and_eager():
    return compile_and_run(_calls)


def _assert_same(compiled, eager):
    (losses, grads), (eager_losses, eager_grads) = compiled, eager
    assert losses.keys() == eager_losses.keys()
    for name in losses:
        torch.testing.assert_close(losses[name], eager_losses[name], rtol=1e-5, atol=1e-6, msg=name)
        if eager_grads[name] is None:
            assert grads[name] is None or not bool(grads[name].any())
        else:
            torch.testing.assert_close(grads[name], eager_grads[name], rtol=1e-5, atol=1e-6, msg=name)


def test_every_registered_loss_compiles_without_graph_breaks(compiled_and_eager):
    ((losses, _), _), _ = compiled_and_eager  # fullgraph=True raises on any graph break
    names = {label.split(" (")[0] for label in losses}
    assert names >= {entry.name for entry in seesaw_losses.available_losses()} - set(NEEDS_EXTRA_INPUTS)
    assert all(bool(torch.isfinite(v)) for v in losses.values())


def test_compiled_losses_and_gradients_match_eager(compiled_and_eager):
    (compiled, _), (eager, _) = compiled_and_eager
    _assert_same(compiled, eager)


def test_compiled_modules_update_their_counts(compiled_and_eager):
    (_, compiled_calls), (_, eager_calls) = compiled_and_eager
    for label, (call, _, _) in compiled_calls.items():
        if not hasattr(call, "class_counts"):
            continue
        assert bool(call.class_counts.sum() > 0), label
        torch.testing.assert_close(call.class_counts, eager_calls[label][0].class_counts, msg=label)


def test_inductor_compiles_one_loss_per_family():
    keep = ("seesaw (function, softmax)", "focal (function, sigmoid)", "dice (function, softmax)")
    calls = {label: value for label, value in _calls().items() if label in keep}
    assert len(calls) == len(keep)
    torch._dynamo.reset()
    compiled = torch.compile(every_loss, fullgraph=True, dynamic=False)
    _assert_same(_run(compiled, calls), _run(every_loss, calls))
