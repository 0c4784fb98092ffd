"""Asymmetric loss: the authors' formula, its identities, gradients, module and errors."""

import pytest
import torch
import torch.nn.functional as F

from seesaw_losses import AsymmetricLoss
from seesaw_losses.functional import asymmetric_loss, sigmoid_focal_loss

from long_tail_references import asymmetric_reference

SETTINGS = [(0.0, 4.0, 0.05), (1.0, 4.0, 0.05), (0.5, 2.5, 0.0), (2.0, 1.0, 0.2), (0.0, 0.0, 0.3), (3.0, 0.0, 0.0)]


def _inputs(shape=(16, 12), dtype=torch.float64, positives=0.2):
    gen = torch.Generator().manual_seed(5)
    logits = (torch.randn(shape, generator=gen) * 3).to(dtype).requires_grad_()
    target = (torch.rand(shape, generator=gen) < positives).to(dtype)
    return logits, target


@pytest.mark.parametrize("gamma_pos, gamma_neg, clip", SETTINGS)
def test_equals_the_authors_formula_on_multi_label_targets(gamma_pos, gamma_neg, clip):
    logits, target = _inputs()
    ours = asymmetric_loss(logits, target, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction="none")
    ref = asymmetric_reference(logits, target, gamma_pos, gamma_neg, clip, 1e-8)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(*(torch.autograd.grad(v.sum(), logits)[0] for v in (ours, ref)))
    # their module returns the sum
    torch.testing.assert_close(asymmetric_loss(logits, target, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip,
                                               reduction="sum"), ref.sum())


def test_float32_and_dense_inputs():
    logits, target = _inputs((2, 5, 7, 3), dtype=torch.float32)
    ours = asymmetric_loss(logits, target, gamma_pos=1.0)
    torch.testing.assert_close(ours, asymmetric_reference(logits, target, 1.0, 4.0, 0.05, 1e-8).mean().float())
    grad, = torch.autograd.grad(ours, logits)
    ref_grad, = torch.autograd.grad(asymmetric_reference(logits, target, 1.0, 4.0, 0.05, 1e-8).mean(), logits)
    torch.testing.assert_close(grad, ref_grad.float())


def test_soft_targets_interpolate_the_two_terms():
    """Soft targets follow the paper's t L+ + (1 - t) L-; the authors' code blends inside the power instead."""
    logits, _ = _inputs()
    soft = torch.rand(logits.shape, dtype=torch.float64)
    ours = asymmetric_loss(logits, soft, reduction="none")
    ones, zeros = torch.ones_like(soft), torch.zeros_like(soft)
    blended = soft * asymmetric_reference(logits, ones, 0.0, 4.0, 0.05, 1e-8) \
        + (1 - soft) * asymmetric_reference(logits, zeros, 0.0, 4.0, 0.05, 1e-8)
    torch.testing.assert_close(ours, blended)
    assert not torch.allclose(ours, asymmetric_reference(logits, soft, 0.0, 4.0, 0.05, 1e-8))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_without_focusing_and_shift_it_is_bce(reduction):
    logits, target = _inputs()
    ours = asymmetric_loss(logits, target, gamma_pos=0, gamma_neg=0, clip=0, reduction=reduction)
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(logits, target, reduction=reduction))


def test_symmetric_without_shift_is_the_unweighted_focal_loss():
    logits, target = _inputs()
    torch.testing.assert_close(asymmetric_loss(logits, target, gamma_pos=2, gamma_neg=2, clip=0),
                               sigmoid_focal_loss(logits, target, alpha=None, gamma=2))


def test_easy_negatives_below_the_shift_contribute_nothing():
    logits = torch.tensor([[-4.0, -2.0, 0.0]], dtype=torch.float64, requires_grad=True)  # p = 0.018, 0.12, 0.5
    loss = asymmetric_loss(logits, torch.zeros_like(logits), clip=0.05, reduction="none")
    grad, = torch.autograd.grad(loss.sum(), logits)
    assert loss[0, 0] == 0 and grad[0, 0] == 0 and loss[0, 1] > 0 and grad[0, 2] > 0


@pytest.mark.parametrize("gamma_pos, gamma_neg, clip", SETTINGS)
def test_gradcheck(gamma_pos, gamma_neg, clip):
    logits, target = _inputs((4, 5))
    weight = torch.rand(4, 1, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: asymmetric_loss(x, target, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, weight=weight,
                                  reduction="none"), (logits,))


def test_extreme_logits_ignore_index_and_module():
    logits, target = _inputs(dtype=torch.float32)
    big = logits.detach() * 1e4
    assert torch.isfinite(asymmetric_loss(big, target)) and asymmetric_loss(big, target) >= 0
    masked = target.clone()
    masked[0] = 255
    x = logits.detach().requires_grad_()
    asymmetric_loss(x, masked, ignore_index=255).backward()
    assert x.grad[0].abs().sum() == 0
    module = AsymmetricLoss(gamma_pos=1.0, clip=0.1, reduction="sum")
    torch.testing.assert_close(module(logits, target), asymmetric_loss(logits, target, gamma_pos=1.0, clip=0.1,
                                                                       reduction="sum"))


def test_bad_input_raises_the_library_errors():
    logits, target = _inputs()
    with pytest.raises(ValueError, match=r"asymmetric_loss: clip must be in \[0, 1\), got 1"):
        asymmetric_loss(logits, target, clip=1)
    with pytest.raises(ValueError, match=r"AsymmetricLoss: clip must be in \[0, 1\), got -0.1"):
        AsymmetricLoss(clip=-0.1)
    with pytest.raises(ValueError, match=r"asymmetric_loss: gamma_neg must be in \[0, inf\], got -1"):
        asymmetric_loss(logits, target, gamma_neg=-1)
    with pytest.raises(ValueError, match=r"AsymmetricLoss: gamma_pos must be in \[0, inf\], got -0.5"):
        AsymmetricLoss(gamma_pos=-0.5)
    with pytest.raises(ValueError, match="asymmetric_loss: target must be of the logits' shape"):
        asymmetric_loss(logits, torch.randint(0, 12, (16,)))
    with pytest.raises(ValueError, match=r"asymmetric_loss: target must be in \[0, 1\]"):
        asymmetric_loss(logits, target * 2)
