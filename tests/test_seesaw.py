import pytest
import torch
import torch.nn.functional as F

import seesaw_losses
from seesaw_losses import SeesawLoss
from seesaw_losses.functional import count_labels, seesaw_loss

from references import dense_to_rows, seesaw_reference

COUNTS = torch.tensor([5000, 1200, 300, 40, 3, 0])


def _inputs(shape=(32, 6), dtype=torch.float64, ignore=0.0):
    logits = (torch.randn(shape, dtype=torch.float64) * 3).to(dtype).requires_grad_()
    target_shape = (shape[0],) + tuple(shape[2:])
    target = torch.randint(0, shape[1], target_shape)
    if ignore:
        target[torch.rand(target_shape) < ignore] = -100
    return logits, target


@pytest.mark.parametrize("p,q", [(0.8, 2.0), (0.0, 2.0), (0.8, 0.0), (1.5, 0.5)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_float64_reference(p, q, reduction):
    logits, target = _inputs(ignore=0.2)
    ours = seesaw_loss(logits, target, COUNTS, p=p, q=q, reduction=reduction)
    ref = seesaw_reference(logits, target, COUNTS, p, q, 1e-2, reduction=reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    g_ours, = torch.autograd.grad(ours.sum(), logits)
    g_ref, = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-12)


def test_dense_matches_rows():
    logits, target = _inputs((2, 6, 5, 7, 3), ignore=0.1)
    weight = torch.rand(6, dtype=torch.float64)
    ours = seesaw_loss(logits, target, COUNTS, class_weight=weight, reduction="none")
    rows, t = dense_to_rows(logits, target)
    ref = seesaw_reference(rows, t, COUNTS, 0.8, 2.0, 1e-2, weight=weight, reduction="none")
    torch.testing.assert_close(ours.reshape(-1), ref)
    mean = seesaw_loss(logits, target, COUNTS, class_weight=weight)
    torch.testing.assert_close(mean, seesaw_reference(rows, t, COUNTS, 0.8, 2.0, 1e-2, weight=weight))


@pytest.mark.parametrize("shape", [(16, 6), (2, 6, 4, 5)])
def test_gradcheck_mitigation(shape):
    # The compensation factor depends on the (detached) logits, so a finite-difference check is only valid with
    # q = 0; q > 0 is checked against autograd of the reference formula above and below.
    logits, target = _inputs(shape, ignore=0.2)
    weight = torch.rand(6, dtype=torch.float64)
    element_weight = torch.rand(target.shape, dtype=torch.float64)
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda z: seesaw_loss(z, target, COUNTS, q=0.0, class_weight=weight, weight=element_weight,
                                  reduction=reduction), (logits,))


def test_analytic_gradient_equals_autograd_of_formula_with_compensation():
    logits, target = _inputs((3, 6, 8, 8), ignore=0.1)
    ours, = torch.autograd.grad(seesaw_loss(logits, target, COUNTS, q=3.0), logits)
    rows, t = dense_to_rows(logits, target)
    ref, = torch.autograd.grad(seesaw_reference(rows, t, COUNTS, 0.8, 3.0, 1e-2), logits)
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("shape", [(40, 6), (3, 6, 9, 4)])
def test_p_q_zero_is_cross_entropy(shape):
    logits, target = _inputs(shape, ignore=0.3)
    weight = torch.rand(6, dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        ours = seesaw_loss(logits, target, COUNTS, p=0, q=0, class_weight=weight, reduction=reduction)
        ce = F.cross_entropy(logits, target, weight=weight, reduction=reduction)
        torch.testing.assert_close(ours, ce)
        g1, = torch.autograd.grad(ours.sum(), logits)
        g2, = torch.autograd.grad(ce.sum(), logits)
        torch.testing.assert_close(g1, g2)


def test_ignored_elements_have_zero_gradient_and_are_not_counted():
    logits, target = _inputs((4, 6, 6, 6), ignore=0.4)
    criterion = SeesawLoss(6)
    criterion(logits, target).backward()
    ignored = target == -100
    assert (logits.grad.movedim(1, -1)[ignored] == 0).all()
    assert (logits.grad.movedim(1, -1)[~ignored] != 0).any()
    expected = torch.bincount(target[~ignored], minlength=6)
    assert torch.equal(criterion.class_counts, expected)


def test_all_ignored_mean_is_zero_not_nan():
    logits, _ = _inputs((4, 6))
    target = torch.full((4,), -100)
    loss = seesaw_loss(logits, target, COUNTS)
    loss.backward()
    assert loss.item() == 0 and (logits.grad == 0).all()


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_finite_at_extreme_logits(scale):
    logits = (torch.randn(64, 6).sign() * scale).requires_grad_()
    target = torch.randint(0, 6, (64,))
    loss = seesaw_loss(logits, target, COUNTS)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and loss >= 0


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_float32_gradient_at_extreme_logits_with_large_factors_is_float64s(reduction):
    """``log S`` (here up to 20 log(100) + 3 log(5000)) adds to logits shifted to a maximum of 0, never to logits of
    1e4 whose float32 spacing would round it off: the gradient stays within 1e-5 of float64's, relatively."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(64, 6, generator=gen).sign() * 1e4
    target = torch.randint(0, 6, (64,), generator=gen)
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = z.to(dtype).detach().requires_grad_()
        seesaw_loss(x, target, COUNTS, p=3.0, q=20.0, reduction=reduction).backward()
        grads.append(x.grad.double())
    assert (grads[0] - grads[1]).abs().max() <= 1e-5 * grads[1].abs().max()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    logits, target = _inputs((4, 6, 16, 16), dtype=dtype)
    loss = seesaw_loss(logits, target, COUNTS)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad).all()
    ref = seesaw_loss(logits.detach().float(), target, COUNTS)
    torch.testing.assert_close(loss, ref)


def test_reduction_none_keeps_target_shape_and_weights():
    logits, target = _inputs((2, 6, 3, 4))
    element_weight = torch.rand(2, 3, 4, dtype=torch.float64)
    out = seesaw_loss(logits, target, COUNTS, reduction="none", weight=element_weight)
    plain = seesaw_loss(logits, target, COUNTS, reduction="none")
    assert out.shape == (2, 3, 4)
    torch.testing.assert_close(out, plain * element_weight)
    mean = seesaw_loss(logits, target, COUNTS, weight=element_weight)
    torch.testing.assert_close(mean, (plain * element_weight).mean())
    torch.testing.assert_close(seesaw_loss(logits, target, COUNTS, avg_factor=7.0),
                               plain.sum() / (7.0 + torch.finfo(torch.float32).eps))


# --- module: state ------------------------------------------------------------------------------------------


def test_counts_are_added_before_the_loss_in_training_only():
    logits, target = _inputs((64, 6))
    criterion = SeesawLoss(6)
    loss = criterion(logits, target)
    counts = torch.bincount(target, minlength=6)
    assert criterion.class_counts.dtype == torch.int64 and torch.equal(criterion.class_counts, counts)
    torch.testing.assert_close(loss, seesaw_loss(logits, target, counts))
    criterion.eval()
    criterion(logits, target)
    assert torch.equal(criterion.class_counts, counts)


def test_counts_are_exact_beyond_float32_and_survive_state_dict():
    criterion = SeesawLoss(3)
    criterion.class_counts.fill_(2**24 + 1)
    criterion(torch.randn(3, 3), torch.tensor([0, 0, 2]))
    assert criterion.class_counts.tolist() == [2**24 + 3, 2**24 + 1, 2**24 + 2]
    restored = SeesawLoss(3)
    restored.load_state_dict(criterion.state_dict())
    assert torch.equal(restored.class_counts, criterion.class_counts)
    assert "class_counts" in criterion.state_dict()
    assert restored.to(torch.float64).class_counts.dtype == torch.int64


def test_count_labels_matches_bincount():
    target = torch.randint(0, 5, (3, 7, 7))
    target[0] = 255
    assert torch.equal(count_labels(target, 5, 255), torch.bincount(target[target != 255], minlength=5))


def test_module_equals_function_with_class_weight():
    logits, target = _inputs((16, 6, 3), ignore=0.2)
    weight = torch.rand(6, dtype=torch.float64)
    criterion = SeesawLoss(6, p=0.5, q=1.0, class_weight=weight)
    criterion.class_counts.copy_(COUNTS)
    out = criterion(logits, target)
    counts = COUNTS + count_labels(target, 6, -100)
    torch.testing.assert_close(out, seesaw_loss(logits, target, counts, p=0.5, q=1.0, class_weight=weight))
    assert criterion.class_weight is not None and "class_weight" in criterion.state_dict()


def test_a_rejected_call_counts_nothing():
    criterion, summed = SeesawLoss(4), SeesawLoss(4, reduction="sum")
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 3, 1])
    bad_calls = [
        lambda: criterion(torch.randn(6, 5), target),                                  # channel count
        lambda: criterion(logits, torch.tensor([0, 1, 2, 3, 3, 7])),                   # label range
        lambda: criterion(logits, target, torch.ones(5)),                              # element weight shape
        lambda: criterion(logits, target, torch.ones(4)),                              # per-class in weight=
        lambda: summed(logits, target, avg_factor=3.0),                                # avg_factor with sum
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
    assert criterion.class_counts.sum() == 0 and summed.class_counts.sum() == 0
    with pytest.raises(ValueError, match=r"SeesawLoss.forward: logits must be of 5 channels \(dim 1\) for "
                                         r"num_classes=5"):
        SeesawLoss(5)(logits, torch.tensor([0, 1, 2, 3, 4, 4]))
    with pytest.raises(ValueError, match="per-class weights go in class_weight="):
        seesaw_loss(torch.randn(2, 4, 3), torch.zeros(2, 3, dtype=torch.long), COUNTS[:4], weight=torch.ones(4))


# --- errors --------------------------------------------------------------------------------------------------


def test_errors_are_clear():
    logits = torch.randn(4, 6)
    with pytest.raises(ValueError, match=r"seesaw_loss: target must be class indices in \[0, 5\].*got a label 6"):
        seesaw_loss(logits, torch.tensor([0, 1, 2, 6]), COUNTS)
    with pytest.raises(ValueError, match="pass ignore_index=255"):
        seesaw_loss(logits, torch.tensor([0, 1, 2, 255]), COUNTS)
    with pytest.raises(ValueError, match=r"logits must be of 6 channels .* got a tensor of shape \(4, 5\)"):
        seesaw_loss(torch.randn(4, 5), torch.tensor([0, 1, 2, 3]), COUNTS)
    with pytest.raises(ValueError, match=r"target must be of shape \(4,\)"):
        seesaw_loss(logits, torch.tensor([0, 1, 2]), COUNTS)
    with pytest.raises(TypeError, match="target must be an integer tensor of class indices.*binary_seesaw_loss"):
        seesaw_loss(logits, torch.rand(4), COUNTS)
    with pytest.raises(ValueError, match="got a target shaped like the logits"):
        seesaw_loss(logits, torch.zeros(4, 6, dtype=torch.long), COUNTS)
    with pytest.raises(ValueError, match=r"seesaw_loss: p must be in \[0, inf\], got -0.5"):
        seesaw_loss(logits, torch.tensor([0, 1, 2, 3]), COUNTS, p=-0.5)
    with pytest.raises(ValueError, match=r"SeesawLoss: q must be in \[0, inf\], got -1"):
        SeesawLoss(6, q=-1)
    with pytest.raises(ValueError, match="reduction must be one of .*did you mean 'mean'"):
        SeesawLoss(6, reduction="meen")
    with pytest.raises(ValueError, match="class_counts must be non-negative"):
        seesaw_loss(logits, torch.tensor([0, 1, 2, 3]), -COUNTS)
    with pytest.raises(ValueError, match="avg_factor must be None when reduction='sum'"):
        seesaw_loss(logits, torch.tensor([0, 1, 2, 3]), COUNTS, reduction="sum", avg_factor=3.0)
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        seesaw_loss(torch.zeros(4, 6, dtype=torch.long), torch.tensor([0, 1, 2, 3]), COUNTS)
    with pytest.raises(ValueError, match=r"SeesawLoss.forward: target must be class indices in \[0, 5\]"):
        SeesawLoss(6)(logits, torch.tensor([0, 1, 2, 9]))


def test_value_checks_can_be_switched_off():
    with seesaw_losses.value_checks(False):
        # no range check: the out-of-range label reaches the kernel's gather, which raises its own error
        with pytest.raises((RuntimeError, IndexError)):
            seesaw_loss(torch.randn(2, 6), torch.tensor([0, 60]), COUNTS)
