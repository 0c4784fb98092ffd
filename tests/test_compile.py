"""``torch.compile(fullgraph=True)`` on every loss: no graph break, and the same losses and gradients as eager.

Compiling is slow on a small CPU, so one compiled function computes every loss at once (one graph, one
compile, shared by the tests of this module) on tiny tensors.
"""

import pytest
import torch

import seesaw_losses
from seesaw_losses import functional as F

NUM_CLASSES = 4


def _inputs():
    gen = torch.Generator().manual_seed(0)
    multi = torch.randn(2, NUM_CLASSES, 3, 3, generator=gen) * 2
    multi_target = torch.randint(0, NUM_CLASSES, (2, 3, 3), generator=gen)
    multi_target[0, 0, 0] = -100
    binary = torch.randn(2, 1, 4, 4, generator=gen) * 2
    binary_target = (torch.rand(2, 1, 4, 4, generator=gen) < 0.3).float()
    return multi, multi_target, binary, binary_target


def _modules():
    return {
        "SeesawLoss": seesaw_losses.SeesawLoss(NUM_CLASSES),
        "BinarySeesawLoss": seesaw_losses.BinarySeesawLoss(),
    }


def every_loss(multi, multi_target, binary, binary_target, modules):
    """Each loss of the library on the same inputs, as a dict of scalars."""
    counts = torch.tensor([300, 60, 9, 1])
    return {
        "seesaw_loss": F.seesaw_loss(multi, multi_target, counts),
        "seesaw_loss (weights, sum)": F.seesaw_loss(multi, multi_target, counts, weight=torch.tensor([0.5, 1.0, 2.0, 4.0]),
                                                    reduction="sum"),
        "binary_seesaw_loss": F.binary_seesaw_loss(binary, binary_target, torch.tensor([500, 20])),
        "binary_seesaw_loss (reweighted)": F.binary_seesaw_loss(binary, binary_target, None, variant="reweighted"),
        "binary_seesaw_loss (two logits)": F.binary_seesaw_loss(multi[:, :2], multi_target.clamp(0, 1),
                                                                torch.tensor([40, 9])),
        "SeesawLoss": modules["SeesawLoss"](multi, multi_target),
        "BinarySeesawLoss": modules["BinarySeesawLoss"](binary, binary_target),
    }


def _run(fn):
    inputs = [t.requires_grad_() if t.is_floating_point() and i in (0, 2) else t
              for i, t in enumerate(_inputs())]
    modules = _modules()
    losses = fn(*inputs, modules)
    grads = {}
    for name, loss in losses.items():
        grads[name] = torch.autograd.grad(loss, [inputs[0], inputs[2]], retain_graph=True, allow_unused=True)
    return losses, grads, modules


@pytest.fixture(scope="module")
def compiled_and_eager():
    torch._dynamo.reset()
    compiled = torch.compile(every_loss, fullgraph=True, dynamic=False)
    return _run(compiled), _run(every_loss)


def test_every_loss_compiles_without_graph_breaks(compiled_and_eager):
    (losses, _, _), _ = compiled_and_eager  # fullgraph=True raises on any graph break
    assert all(bool(torch.isfinite(v)) for v in losses.values())


def test_compiled_losses_and_gradients_match_eager(compiled_and_eager):
    (losses, grads, _), (eager_losses, eager_grads, _) = compiled_and_eager
    assert losses.keys() == eager_losses.keys()
    for name in losses:
        torch.testing.assert_close(losses[name], eager_losses[name], rtol=1e-5, atol=1e-6, msg=name)
        for compiled_grad, eager_grad in zip(grads[name], eager_grads[name]):
            if eager_grad is None:
                assert compiled_grad is None or not bool(compiled_grad.any())
            else:
                torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-5, atol=1e-6, msg=name)


def test_compiled_modules_update_their_counts(compiled_and_eager):
    (_, _, modules), (_, _, eager_modules) = compiled_and_eager
    for name, module in modules.items():
        assert bool(module.class_counts.sum() > 0)
        torch.testing.assert_close(module.class_counts, eager_modules[name].class_counts, msg=name)
