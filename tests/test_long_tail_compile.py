"""``torch.compile(fullgraph=True)`` on the long-tail losses' options and state beyond what test_compile derives
from the registry: dense inputs, class weights, ``tau`` on Seesaw, the post-hoc adjustment, EQLv2's background
channel and statistics, deferred re-weighting, and the state each module updates, over the same training steps as
test_compile (one graph)."""

import torch
from torch import nn

import seesaw_losses
from seesaw_losses import functional as F

from test_compile import STEPS, Training, assert_same_training, compiled_and_eager

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


def _runs():
    return {label: Training(call, [(x, t)] * (STEPS + 2), isinstance(call, nn.Module))
            for label, (call, x, t) in _calls().items()}


def test_compiled_training_losses_gradients_and_state_match_eager():
    compiled, eager, compiled_runs, _ = compiled_and_eager(_runs, "aot_eager")
    assert_same_training(compiled, eager)
    assert compiled_runs["LogitAdjustedLoss (counting)"].call.class_counts.sum() == 5 * (STEPS + 2)
    assert bool(compiled_runs["EQLv2Loss (background)"].call.neg_grad.sum() > 0)
