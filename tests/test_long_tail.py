"""Logit adjustment, Balanced Softmax, post-hoc adjustment, LDAM and deferred re-weighting."""

import pytest
import torch
import torch.nn.functional as F

import seesaw_losses
from seesaw_losses import (
    BalancedSoftmaxLoss, DeferredReweighting, LDAMDRWLoss, LDAMLoss, LogitAdjustedLoss, adjust_logits,
    class_balanced_weights,
)
from seesaw_losses.experiments.trainers.fit import _set_epoch
from seesaw_losses.functional import balanced_softmax_loss, ldam_loss, ldam_margins, logit_adjusted_loss

from long_tail_references import balanced_softmax_reference, ldam_reference, logit_adjusted_reference
from references import dense_to_rows

COUNTS = torch.tensor([900, 300, 60, 12, 3, 1])
C = COUNTS.numel()


def _inputs(shape=(40, C), ignore=0.15, dtype=torch.float64):
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(shape, generator=gen) * 3).to(dtype).requires_grad_()
    target_shape = (shape[0],) + tuple(shape[2:])
    target = torch.randint(0, C, target_shape, generator=gen)
    target[torch.rand(target_shape, generator=gen) < ignore] = -100
    return logits, target


WEIGHT = torch.tensor([0.2, 0.5, 1.0, 1.5, 2.0, 3.0])


# logit adjustment and Balanced Softmax --------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("class_weight", [None, WEIGHT], ids=["unweighted", "weighted"])
def test_logit_adjusted_matches_the_paper(tau, reduction, class_weight):
    logits, target = _inputs()
    ours = logit_adjusted_loss(logits, target, COUNTS, tau=tau, class_weight=class_weight, reduction=reduction)
    ref = logit_adjusted_reference(logits, target, COUNTS, tau, class_weight=class_weight, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    g_ours, = torch.autograd.grad(ours.sum(), logits)
    g_ref, = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g_ours, g_ref)


def test_dense_inputs_match_rows():
    logits, target = _inputs((3, C, 4, 5))
    rows, t = dense_to_rows(logits, target)
    ours = logit_adjusted_loss(logits, target, COUNTS, tau=1.5, reduction="none")
    assert ours.shape == target.shape
    torch.testing.assert_close(ours.reshape(-1), logit_adjusted_reference(rows, t, COUNTS, 1.5, reduction="none"))
    torch.testing.assert_close(ldam_loss(logits, target, COUNTS, scale=4.0),
                               ldam_reference(rows, t, COUNTS, 0.5, 4.0))


@pytest.mark.parametrize("shape", [(40, C), (3, C, 4, 5)], ids=["rows", "dense"])
def test_tau_zero_is_cross_entropy(shape):
    logits, target = _inputs(shape)
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            logit_adjusted_loss(logits, target, COUNTS, tau=0.0, class_weight=WEIGHT, reduction=reduction),
            F.cross_entropy(logits, target, weight=WEIGHT.double(), reduction=reduction))


def test_balanced_softmax_is_logit_adjustment_with_tau_one_and_the_papers_formula():
    logits, target = _inputs()
    ours = balanced_softmax_loss(logits, target, COUNTS, class_weight=WEIGHT)
    torch.testing.assert_close(ours, logit_adjusted_loss(logits, target, COUNTS, tau=1.0, class_weight=WEIGHT),
                               rtol=0, atol=0)
    torch.testing.assert_close(ours, balanced_softmax_reference(logits, target, COUNTS, class_weight=WEIGHT))
    module = BalancedSoftmaxLoss(C, class_counts=COUNTS, class_weight=WEIGHT)
    assert module.tau == 1.0
    torch.testing.assert_close(module(logits, target), ours)


def test_gradcheck():
    logits, target = _inputs((6, C))
    assert torch.autograd.gradcheck(lambda z: logit_adjusted_loss(z, target, COUNTS, tau=1.3, class_weight=WEIGHT),
                                    (logits,))
    assert torch.autograd.gradcheck(lambda z: ldam_loss(z, target, COUNTS, scale=3.0, class_weight=WEIGHT,
                                                        reduction="sum"), (logits,))
    dense, dense_target = _inputs((2, C, 3))
    assert torch.autograd.gradcheck(lambda z: logit_adjusted_loss(z, dense_target, COUNTS, reduction="none"),
                                    (dense,))


def test_zero_counts_are_finite_and_all_zero_counts_leave_the_logits_alone():
    logits, target = _inputs()
    counts = COUNTS.clone()
    counts[2] = 0
    for loss in (logit_adjusted_loss(logits, target, counts), ldam_loss(logits, target, counts)):
        assert torch.isfinite(loss)
        grad, = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad).all()
    ones = counts.clamp(min=1)  # an empty class counts as one sample
    torch.testing.assert_close(ldam_loss(logits, target, counts), ldam_loss(logits, target, ones))
    zeros = torch.zeros(C, dtype=torch.int64)
    torch.testing.assert_close(logit_adjusted_loss(logits, target, zeros), F.cross_entropy(logits, target))
    assert torch.isfinite(adjust_logits(logits, counts)).all()


def test_extreme_logits_and_half_precision():
    logits, target = _inputs(ignore=0.0)
    big = (logits.detach() * 1e4).float()
    assert torch.isfinite(logit_adjusted_loss(big, target, COUNTS))
    assert torch.isfinite(ldam_loss(big, target, COUNTS))
    half = logits.detach().to(torch.bfloat16).requires_grad_()
    loss = logit_adjusted_loss(half, target, COUNTS)
    loss.backward()
    assert half.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss, logit_adjusted_loss(half.detach().float(), target, COUNTS))


def test_float32_true_classes_with_vanishing_probability_keep_exact_losses():
    """A true class whose float32 softmax probability underflows (losses of 70 to 3e5) still gets the paper's
    loss and gradient: those positions take their loss from log_softmax, the rest from the softmax that is the
    gradient."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(96, C, generator=gen)
    target = torch.randint(0, C, (96,), generator=gen)
    logits.scatter_(1, target.unsqueeze(1), torch.linspace(-1e4, 5.0, 96).view(96, 1))
    cases = ((logit_adjusted_loss, {}, lambda z: logit_adjusted_reference(z, target, COUNTS, 1.0, reduction="sum")),
             (ldam_loss, {"scale": 30.0}, lambda z: ldam_reference(z, target, COUNTS, 0.5, 30.0, reduction="sum")))
    for fn, kwargs, reference in cases:
        for dense in (False, True):
            x = logits.clone().requires_grad_()
            z = x.unsqueeze(2).expand(-1, -1, 2) if dense else x    # (N, C, 2) dense logits: the strided kernels
            ours = fn(z, target.unsqueeze(1).expand(-1, 2) if dense else target, COUNTS, reduction="sum", **kwargs)
            expected = logits.double().requires_grad_()
            ref = reference(expected) * (2 if dense else 1)
            torch.testing.assert_close(ours.double(), ref.detach(), rtol=1e-5, atol=0)
            ours.backward(), ref.backward()
            torch.testing.assert_close(x.grad.double(), expected.grad, rtol=1e-4, atol=1e-6)


# post-hoc adjustment --------------------------------------------------------------------------------------


def test_adjust_logits_subtracts_the_log_prior():
    logits, _ = _inputs((4, C, 2))
    prior = COUNTS.double() / COUNTS.sum()
    torch.testing.assert_close(adjust_logits(logits, COUNTS, tau=0.7),
                               logits - 0.7 * prior.log().view(1, -1, 1))


def test_adjusting_a_cross_entropy_model_moves_its_predictions_to_the_tail():
    """A linear model trained with plain CE on long-tailed Gaussians: adjusting its logits turns some of its
    predictions into rarer classes (never commoner ones) and raises the balanced test accuracy."""
    gen = torch.Generator().manual_seed(0)
    counts = torch.tensor([1000, 100, 10])
    centres = torch.tensor([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5]])
    x = torch.cat([centres[c] + torch.randn(int(n), 2, generator=gen) for c, n in enumerate(counts)])
    y = torch.repeat_interleave(torch.arange(3), counts)
    model = torch.nn.Linear(2, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    test_x = torch.cat([centres[c] + torch.randn(500, 2, generator=gen) for c in range(3)])
    test_y = torch.arange(3).repeat_interleave(500)
    with torch.no_grad():
        logits = model(test_x)
    before, after = logits.argmax(1), adjust_logits(logits, counts).argmax(1)
    changed = before != after
    assert changed.sum() > 50
    assert bool((after[changed] > before[changed]).all())  # classes are sorted by decreasing count

    def balanced(prediction):
        return torch.stack([(prediction[test_y == c] == c).float().mean() for c in range(3)]).mean()

    assert balanced(after) > balanced(before) + 0.05
    assert (after[test_y == 2] == 2).float().mean() > (before[test_y == 2] == 2).float().mean()


# LDAM -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_margin, scale", [(0.5, 30.0), (1.0, 1.0), (0.3, 5.0)])
def test_ldam_matches_the_paper(max_margin, scale):
    logits, target = _inputs()
    cosines = torch.tanh(logits.detach()).requires_grad_()
    ours = ldam_loss(cosines, target, COUNTS, max_margin=max_margin, scale=scale, class_weight=WEIGHT)
    ref = ldam_reference(cosines, target, COUNTS, max_margin, scale, class_weight=WEIGHT)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(*(torch.autograd.grad(v, cosines)[0] for v in (ours, ref)))


def test_ldam_margins():
    margins = ldam_margins(COUNTS, 0.5, dtype=torch.float64)
    assert margins.max().item() == pytest.approx(0.5) and margins.argmax().item() == C - 1
    torch.testing.assert_close(margins / margins[0], (COUNTS[0] / COUNTS.double()).pow(0.25))


def test_ldam_without_margin_and_scale_is_cross_entropy():
    logits, target = _inputs()
    torch.testing.assert_close(ldam_loss(logits, target, COUNTS, max_margin=0.0, scale=1.0, class_weight=WEIGHT),
                               F.cross_entropy(logits, target, weight=WEIGHT.double()))


# modules: fixed or counted priors -------------------------------------------------------------------------


@pytest.mark.parametrize("module, function, options", [
    (LogitAdjustedLoss, logit_adjusted_loss, {"tau": 1.5}),
    (LDAMLoss, ldam_loss, {"max_margin": 0.4, "scale": 10.0}),
], ids=["logit_adjusted", "ldam"])
def test_module_with_fixed_counts_equals_the_function(module, function, options):
    logits, target = _inputs()
    criterion = module(C, class_counts=COUNTS.tolist(), class_weight=WEIGHT, **options)
    torch.testing.assert_close(criterion(logits, target),
                               function(logits, target, COUNTS, class_weight=WEIGHT, **options))
    assert torch.equal(criterion.class_counts, COUNTS.double())  # fixed: nothing is added
    restored = module(C, class_counts=torch.ones(C), class_weight=torch.ones(C), **options)
    restored.load_state_dict(criterion.state_dict())
    torch.testing.assert_close(restored(logits, target), criterion(logits, target))


@pytest.mark.parametrize("module", [LogitAdjustedLoss, BalancedSoftmaxLoss, LDAMLoss])
def test_module_without_counts_counts_like_seesaw(module):
    logits, target = _inputs()
    criterion = module(C)
    loss = criterion(logits, target)
    counts = torch.bincount(target[target != -100], minlength=C)
    assert criterion.class_counts.dtype == torch.int64 and torch.equal(criterion.class_counts, counts)
    expected = module(C, class_counts=counts)(logits, target)  # the batch is counted before its loss
    torch.testing.assert_close(loss, expected)
    criterion.eval()(logits, target)
    assert torch.equal(criterion.class_counts, counts)
    seesaw = seesaw_losses.SeesawLoss(C)
    seesaw(logits, target)
    assert torch.equal(seesaw.class_counts, criterion.class_counts)
    fresh = module(C)
    fresh.load_state_dict(criterion.state_dict())
    assert torch.equal(fresh.class_counts, counts)


def test_registry_builds_them_with_the_training_counts():
    from seesaw_losses.experiments.losses import build, parse_loss

    logits, target = _inputs()
    for name in ("logit_adjusted", "balanced_softmax", "ldam", "ldam_drw"):
        built = build(parse_loss(name), COUNTS.tolist())
        assert torch.isfinite(built.module(logits, target)), name
    drw = build(parse_loss("ldam_drw:start_epoch=1,scale=1"), COUNTS.tolist()).module
    assert isinstance(drw, LDAMDRWLoss) and drw.scale == 1 and drw.start_epoch == 1
    scheduled = build(parse_loss("ldam_drw"), COUNTS.tolist(), epochs=20)  # the command's budget
    assert scheduled.module.start_epoch == 16 and "re-weighting from epoch 16 of 20" in scheduled.notes[0]
    assert build(parse_loss("ldam_drw:start_epoch=3"), COUNTS.tolist(), epochs=20).module.start_epoch == 3


# deferred re-weighting ------------------------------------------------------------------------------------


def test_deferred_reweighting_switches_weights_at_start_epoch_and_resumes():
    logits, target = _inputs()
    drw = DeferredReweighting(LDAMLoss(C, class_counts=COUNTS, scale=1.0), COUNTS, start_epoch=2, beta=0.999)
    uniform = ldam_loss(logits, target, COUNTS, scale=1.0)
    balanced = class_balanced_weights(COUNTS, 0.999)
    for epoch in range(4):
        _set_epoch(drw, epoch)  # the demo trainer's hook
        expected = uniform if epoch < 2 else ldam_loss(logits, target, COUNTS, scale=1.0, class_weight=balanced)
        torch.testing.assert_close(drw(logits, target), expected)
        assert drw.reweighting == (epoch >= 2)
    resumed = DeferredReweighting(LDAMLoss(C, class_counts=COUNTS, scale=1.0), COUNTS, start_epoch=2, beta=0.999)
    assert not resumed.reweighting
    resumed.load_state_dict(drw.state_dict())
    assert int(resumed.epoch) == 3 and resumed.reweighting
    torch.testing.assert_close(resumed(logits, target), drw(logits, target))
    built_in = LDAMDRWLoss(C, class_counts=COUNTS, scale=1.0, start_epoch=2, beta=0.999)
    for epoch in (1, 2):
        built_in.set_epoch(epoch)
        drw.set_epoch(epoch)
        torch.testing.assert_close(built_in(logits, target), drw(logits, target))
    fresh = LDAMDRWLoss(C, class_counts=COUNTS, scale=1.0, start_epoch=2, beta=0.999)
    fresh.load_state_dict(built_in.state_dict())
    assert fresh.reweighting and torch.equal(fresh.class_weight, built_in.class_weight)
    with_logit_adjustment = DeferredReweighting(LogitAdjustedLoss(C, class_counts=COUNTS), COUNTS, start_epoch=0)
    torch.testing.assert_close(with_logit_adjustment(logits, target),
                               logit_adjusted_loss(logits, target, COUNTS,
                                                   class_weight=class_balanced_weights(COUNTS, 0.9999)))


# bad input ------------------------------------------------------------------------------------------------


def test_bad_input_raises_the_library_errors():
    logits, target = _inputs()
    with pytest.raises(ValueError, match=r"logit_adjusted_loss: tau must be in \[0, inf\], got -0.5"):
        logit_adjusted_loss(logits, target, COUNTS, tau=-0.5)
    with pytest.raises(ValueError, match=r"LogitAdjustedLoss: tau must be in \[0, inf\], got -1"):
        LogitAdjustedLoss(C, tau=-1)
    with pytest.raises(ValueError, match=r"adjust_logits: tau must be in \[0, inf\]"):
        adjust_logits(logits, COUNTS, tau=-1.0)
    with pytest.raises(ValueError, match=r"ldam_loss: max_margin must be in \[0, inf\], got -0.1"):
        ldam_loss(logits, target, COUNTS, max_margin=-0.1)
    with pytest.raises(ValueError, match=r"LDAMLoss: scale must be in \(0, inf\], got 0"):
        LDAMLoss(C, scale=0)
    with pytest.raises(ValueError, match=r"logit_adjusted_loss: class_counts must be a 1-D tensor of 6 class "
                                         r"counts \(one per channel of the logits\), got a tensor of shape \(5,\)"):
        logit_adjusted_loss(logits, target, COUNTS[:5])
    with pytest.raises(ValueError, match=r"LDAMLoss: class_counts must be a 1-D tensor of 6 class counts"):
        LDAMLoss(C, class_counts=[1, 2, 3])
    with pytest.raises(ValueError, match=r"ldam_loss: class_counts must be non-negative"):
        ldam_loss(logits, target, -COUNTS)
    bad = target.clone()
    bad[0] = C
    with pytest.raises(ValueError, match=r"logit_adjusted_loss: target must be class indices in \[0, 5\]"):
        logit_adjusted_loss(logits, bad, COUNTS)
    criterion = LogitAdjustedLoss(C)
    with pytest.raises(ValueError, match=r"LogitAdjustedLoss.forward: target must be class indices in \[0, 5\]"):
        criterion(logits, bad)
    assert criterion.class_counts.sum() == 0  # nothing counted from the failed call
    with pytest.raises(ValueError, match=r"LogitAdjustedLoss.forward: logits must be of 6 channels"):
        criterion(logits[:, :4], target.clamp(max=3))
    with pytest.raises(TypeError, match="DeferredReweighting: loss must be a loss module with a class_weight buffer"):
        DeferredReweighting(torch.nn.CrossEntropyLoss(), COUNTS, start_epoch=1)
    with pytest.raises(ValueError, match="DeferredReweighting: class_counts must be a 1-D tensor of 6 class counts"):
        DeferredReweighting(LDAMLoss(C), COUNTS[:3], start_epoch=1)
    with pytest.raises(ValueError, match=r"DeferredReweighting: start_epoch must be an int >= 0, got -1"):
        DeferredReweighting(LDAMLoss(C), COUNTS, start_epoch=-1)
    with pytest.raises(ValueError, match=r"LDAMDRWLoss: scale must be in \(0, inf\], got -1"):
        LDAMDRWLoss(C, class_counts=COUNTS, scale=-1)


# Seesaw on adjusted logits --------------------------------------------------------------------------------


def test_seesaw_tau_zero_is_todays_seesaw_and_tau_adjusts_the_logits_first():
    from references import seesaw_reference

    logits, target = _inputs()
    counts = COUNTS
    plain = seesaw_losses.functional.seesaw_loss(logits, target, counts, class_weight=WEIGHT)
    torch.testing.assert_close(seesaw_losses.functional.seesaw_loss(logits, target, counts, class_weight=WEIGHT,
                                                                    tau=0.0), plain, rtol=0, atol=0)
    prior = counts.double() / counts.sum()
    adjusted = seesaw_losses.functional.seesaw_loss(logits, target, counts, tau=0.7, reduction="none")
    torch.testing.assert_close(adjusted, seesaw_reference(logits + 0.7 * prior.log(), target, counts, 0.8, 2.0, 1e-2,
                                                          reduction="none"))
    torch.testing.assert_close(seesaw_losses.functional.seesaw_loss(logits, target, counts, p=0, q=0, tau=1.3),
                               logit_adjusted_loss(logits, target, counts, tau=1.3))
    dense, dense_target = _inputs((2, C, 3, 2))
    rows, t = dense_to_rows(dense, dense_target)
    torch.testing.assert_close(seesaw_losses.functional.seesaw_loss(dense, dense_target, counts, tau=0.5),
                               seesaw_losses.functional.seesaw_loss(rows, t, counts, tau=0.5))
    module, today = seesaw_losses.SeesawLoss(C, tau=0.0), seesaw_losses.SeesawLoss(C)
    torch.testing.assert_close(module(logits, target), today(logits, target), rtol=0, atol=0)
    counted = seesaw_losses.SeesawLoss(C, tau=0.7, reduction="none")
    loss = counted(logits, target)
    torch.testing.assert_close(loss, seesaw_losses.functional.seesaw_loss(logits, target, counted.class_counts,
                                                                          tau=0.7, reduction="none"))
    with pytest.raises(ValueError, match=r"SeesawLoss: tau must be in \[0, inf\], got -1"):
        seesaw_losses.SeesawLoss(C, tau=-1)
    with pytest.raises(ValueError, match=r"seesaw_loss: tau must be in \[0, inf\], got -0.1"):
        seesaw_losses.functional.seesaw_loss(logits, target, counts, tau=-0.1)
