"""``torch.compile(fullgraph=True)`` on every long-tail loss, function and module: no graph break, and the same
losses, gradients and state updates as eager (one graph through dynamo and AOT autograd, as in test_compile)."""

import pytest
import torch

import seesaw_losses
from seesaw_losses import functional as F

from test_compile import _assert_same, _run

C = 4


def _inputs():
    gen = torch.Generator().manual_seed(0)
    multi = torch.randn(6, C, generator=gen) * 2
    target = torch.randint(0, C, (6,), generator=gen)
    target[0] = -100
    dense = torch.randn(2, C, 3, 3, generator=gen)
    dense_target = torch.randint(0, C, (2, 3, 3), generator=gen)
    labels = (torch.rand(6, C, generator=gen) < 0.3).float()
    boxes = torch.randint(0, C, (6,), generator=gen)
    return multi, target, dense, dense_target, labels, boxes


def _modules():
    counts = torch.tensor([300, 60, 9, 1])
    return {
        "LogitAdjustedLoss": seesaw_losses.LogitAdjustedLoss(C),
        "BalancedSoftmaxLoss": seesaw_losses.BalancedSoftmaxLoss(C, class_counts=counts),
        "LDAMLoss": seesaw_losses.LDAMLoss(C, scale=5.0),
        "ldam_drw": seesaw_losses.build_loss({"type": "ldam_drw", "num_classes": C, "class_counts": counts.tolist(),
                                              "start_epoch": 0, "scale": 5.0}),
        "AsymmetricLoss": seesaw_losses.AsymmetricLoss(gamma_pos=1.0),
        "EQLv2Loss": seesaw_losses.EQLv2Loss(C),
    }


def every_loss(multi, target, dense, dense_target, labels, boxes, modules):
    counts = torch.tensor([300, 60, 9, 1])
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    pos, neg = torch.tensor([1.0, 2.0, 0.5, 0.1]), torch.tensor([10.0, 5.0, 8.0, 9.0])
    return {
        "logit_adjusted_loss": F.logit_adjusted_loss(multi, target, counts, tau=1.5, class_weight=weight),
        "logit_adjusted_loss (dense)": F.logit_adjusted_loss(dense, dense_target, counts, reduction="sum"),
        "balanced_softmax_loss": F.balanced_softmax_loss(multi, target, counts),
        "adjust_logits": F.adjust_logits(multi, counts).sum(),
        "ldam_loss": F.ldam_loss(torch.tanh(multi), target, counts),
        "asymmetric_loss": F.asymmetric_loss(multi, labels),
        "asymmetric_loss (gammas, no clip)": F.asymmetric_loss(multi, labels, gamma_pos=0.5, gamma_neg=2.0, clip=0.0,
                                                               reduction="sum"),
        "eqlv2_loss": F.eqlv2_loss(multi, boxes, pos_grad=pos, neg_grad=neg),
        "seesaw_loss (tau)": F.seesaw_loss(dense, dense_target, counts, tau=1.0),
        "LogitAdjustedLoss": modules["LogitAdjustedLoss"](multi, target),
        "BalancedSoftmaxLoss": modules["BalancedSoftmaxLoss"](dense, dense_target),
        "LDAMLoss": modules["LDAMLoss"](torch.tanh(multi), target),
        "ldam_drw": modules["ldam_drw"](torch.tanh(multi), target),
        "AsymmetricLoss": modules["AsymmetricLoss"](multi, labels),
        "EQLv2Loss": modules["EQLv2Loss"](multi, boxes) + modules["EQLv2Loss"](multi, boxes),
    }


@pytest.fixture(scope="module")
def compiled_and_eager():
    torch._dynamo.reset()
    compiled = torch.compile(every_loss, fullgraph=True, dynamic=False, backend="aot_eager")
    return _run(compiled, _inputs, _modules), _run(every_loss, _inputs, _modules)


def test_compiled_losses_gradients_and_state_match_eager(compiled_and_eager):
    _assert_same(*compiled_and_eager)
    (_, _, modules), (_, _, eager_modules) = compiled_and_eager
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(value, eager_modules[name].state_dict()[key], msg=f"{name}.{key}")
    assert modules["LogitAdjustedLoss"].class_counts.sum() == 5
    assert bool(modules["EQLv2Loss"].neg_grad.sum() > 0)
