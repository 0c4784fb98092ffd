"""``torch.compile(fullgraph=True)`` on the long-tail losses' options and state beyond what test_compile derives
from the registry: dense inputs, class weights, ``tau`` on Seesaw, the post-hoc adjustment, EQLv2's background
channel and statistics, deferred re-weighting, and the state each module updates (same runner, one graph)."""

import pytest
import torch
from torch import nn

import seesaw_losses
from seesaw_losses import functional as F

from test_compile import _assert_same, compile_and_run

C = 4


def _calls():
    gen = torch.Generator().manual_seed(0)
    multi = torch.randn(6, C, generator=gen) * 2
    target = torch.randint(0, C, (6,), generator=gen)
    target[0] = -100
    dense = torch.randn(2, C, 3, 3, generator=gen)
    dense_target = torch.randint(0, C, (2, 3, 3), generator=gen)
    labels = (torch.rand(6, C, generator=gen) < 0.3).float()
    boxes = torch.randn(6, C + 1, generator=gen)
    box_labels = torch.randint(0, C + 1, (6,), generator=gen)
    counts = torch.tensor([300, 60, 9, 1])
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    stats = {"pos_grad": torch.tensor([1.0, 2.0, 0.5, 0.1]), "neg_grad": torch.tensor([10.0, 5.0, 8.0, 9.0])}
    drw = seesaw_losses.LDAMDRWLoss(C, class_counts=counts, scale=5.0, start_epoch=1)
    drw.set_epoch(1)
    return {
        "logit_adjusted_loss (dense, tau, class_weight)": (
            lambda x, t: F.logit_adjusted_loss(x, t, counts, tau=1.5, class_weight=weight, reduction="sum"),
            dense, dense_target),
        "adjust_logits": (lambda x, t: F.adjust_logits(x, counts, tau=0.5), multi, target),
        "ldam_loss (cosines)": (lambda x, t: F.ldam_loss(torch.tanh(x), t, counts), multi, target),
        "asymmetric_loss (gammas, no clip)": (
            lambda x, t: F.asymmetric_loss(x, t, gamma_pos=0.5, gamma_neg=2.0, clip=0.0), multi, labels),
        "eqlv2_loss (statistics, background)": (
            lambda x, t: F.eqlv2_loss(x, t, background_channel=True, **stats), boxes, box_labels),
        "seesaw_loss (tau)": (lambda x, t: F.seesaw_loss(x, t, counts, tau=1.0), dense, dense_target),
        "SeesawLoss (tau)": (seesaw_losses.SeesawLoss(C, tau=0.5), multi, target),
        "LogitAdjustedLoss (counting)": (seesaw_losses.LogitAdjustedLoss(C), multi, target),
        "EQLv2Loss (background)": (seesaw_losses.EQLv2Loss(C, background_channel=True), boxes, box_labels),
        "LDAMDRWLoss (re-weighting)": (drw, multi, target),
        "DeferredReweighting (logit adjustment)": (seesaw_losses.DeferredReweighting(
            seesaw_losses.LogitAdjustedLoss(C, class_counts=counts), counts, start_epoch=0), multi, target),
    }


@pytest.fixture(scope="module")
def compiled_and_eager():
    return compile_and_run(_calls)


def test_compiled_losses_gradients_and_state_match_eager(compiled_and_eager):
    (compiled, compiled_calls), (eager, eager_calls) = compiled_and_eager
    _assert_same(compiled, eager)
    for label, (call, _, _) in compiled_calls.items():
        if isinstance(call, nn.Module):
            for key, value in call.state_dict().items():
                torch.testing.assert_close(value, eager_calls[label][0].state_dict()[key], msg=f"{label}: {key}")
    assert compiled_calls["LogitAdjustedLoss (counting)"][0].class_counts.sum() == 5
    assert bool(compiled_calls["EQLv2Loss (background)"][0].neg_grad.sum() > 0)
