"""``torch.compile(fullgraph=True)`` on every loss: no graph break, and the same losses and gradients as eager.

Compiling is slow on a small CPU, so one compiled function computes every loss at once (one graph, one
compile, shared by the tests of this module) on tiny tensors. That graph goes through dynamo and AOT autograd
(``backend="aot_eager"``: forward and backward graphs, no code generation); inductor's code generation is
exercised on one loss of each family.
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
        "CombinedLoss": seesaw_losses.build_loss("dice:activation=softmax,ignore_index=-100 + 0.5 * softmax_focal + ce"),
    }


def every_loss(multi, multi_target, binary, binary_target, modules):
    """Each loss of the library on the same inputs, as a dict of scalars."""
    counts = torch.tensor([300, 60, 9, 1])
    class_weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    return {
        "seesaw_loss": F.seesaw_loss(multi, multi_target, counts),
        "seesaw_loss (weights, sum)": F.seesaw_loss(multi, multi_target, counts, class_weight=class_weight,
                                                    reduction="sum"),
        "binary_seesaw_loss": F.binary_seesaw_loss(binary, binary_target, torch.tensor([500, 20])),
        "binary_seesaw_loss (reweighted)": F.binary_seesaw_loss(binary, binary_target, None, variant="reweighted"),
        "binary_seesaw_loss (two logits)": F.binary_seesaw_loss(multi[:, :2], multi_target.clamp(0, 1),
                                                                torch.tensor([40, 9])),
        "sigmoid_focal_loss": F.sigmoid_focal_loss(binary, binary_target),
        "sigmoid_focal_loss (gamma 1.5, ignore)": F.sigmoid_focal_loss(binary, binary_target, gamma=1.5,
                                                                       ignore_index=255, reduction="sum"),
        "softmax_focal_loss": F.softmax_focal_loss(multi, multi_target, class_weight=class_weight),
        "weighted_bce_loss": F.weighted_bce_loss(binary, binary_target, pos_weight=5.0),
        "dice_loss": F.dice_loss(binary, binary_target),
        "dice_loss (softmax)": F.dice_loss(multi, multi_target, activation="softmax", ignore_index=-100),
        "tversky_loss": F.tversky_loss(binary, binary_target),
        "jaccard_loss": F.jaccard_loss(binary, binary_target),
        "focal_tversky_loss": F.focal_tversky_loss(binary, binary_target),
        "generalized_dice_loss": F.generalized_dice_loss(multi, multi_target, activation="softmax",
                                                         ignore_index=-100),
        "lovasz_hinge_loss": F.lovasz_hinge_loss(binary, binary_target),
        "lovasz_softmax_loss": F.lovasz_softmax_loss(multi, multi_target, ignore_index=-100),
        "SeesawLoss": modules["SeesawLoss"](multi, multi_target),
        "BinarySeesawLoss": modules["BinarySeesawLoss"](binary, binary_target),
        "CombinedLoss": modules["CombinedLoss"](multi, multi_target),
    }


def _run(fn, make_inputs=_inputs, make_modules=_modules):
    """``fn``'s losses on fresh inputs and modules, with their gradients for the first and third input."""
    inputs = [t.requires_grad_() if t.is_floating_point() and i in (0, 2) else t
              for i, t in enumerate(make_inputs())]
    modules = make_modules()
    losses = fn(*inputs, modules)
    grads = {}
    for name, loss in losses.items():
        grads[name] = torch.autograd.grad(loss, [inputs[0], inputs[2]], retain_graph=True, allow_unused=True)
    return losses, grads, modules


@pytest.fixture(scope="module")
def compiled_and_eager():
    torch._dynamo.reset()
    compiled = torch.compile(every_loss, fullgraph=True, dynamic=False, backend="aot_eager")
    return _run(compiled), _run(every_loss)


def one_per_family(multi, multi_target, binary, binary_target, modules):
    return {name: loss for name, loss in every_loss(multi, multi_target, binary, binary_target, modules).items()
            if name in ("seesaw_loss", "sigmoid_focal_loss", "dice_loss (softmax)")}


def test_inductor_compiles_one_loss_per_family():
    torch._dynamo.reset()
    compiled = torch.compile(one_per_family, fullgraph=True, dynamic=False)
    _assert_same(_run(compiled), _run(one_per_family))


def test_every_loss_compiles_without_graph_breaks(compiled_and_eager):
    (losses, _, _), _ = compiled_and_eager  # fullgraph=True raises on any graph break
    assert all(bool(torch.isfinite(v)) for v in losses.values())


def _assert_same(compiled, eager):
    (losses, grads, _), (eager_losses, eager_grads, _) = compiled, eager
    assert losses.keys() == eager_losses.keys()
    for name in losses:
        torch.testing.assert_close(losses[name], eager_losses[name], rtol=1e-5, atol=1e-6, msg=name)
        for compiled_grad, eager_grad in zip(grads[name], eager_grads[name]):
            if eager_grad is None:
                assert compiled_grad is None or not bool(compiled_grad.any())
            else:
                torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-5, atol=1e-6, msg=name)


def test_compiled_losses_and_gradients_match_eager(compiled_and_eager):
    _assert_same(*compiled_and_eager)


def test_compiled_modules_update_their_counts(compiled_and_eager):
    (_, _, modules), (_, _, eager_modules) = compiled_and_eager
    for name, module in modules.items():
        if not hasattr(module, "class_counts"):
            continue
        assert bool(module.class_counts.sum() > 0)
        torch.testing.assert_close(module.class_counts, eager_modules[name].class_counts, msg=name)
