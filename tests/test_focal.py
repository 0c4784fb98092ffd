import copy

import pytest
import torch
import torch.nn.functional as F

import seesaw_losses as sl
from seesaw_losses.compose import parse_config
from seesaw_losses.functional import _fused, sigmoid_focal_loss, softmax_focal_loss

from references import sigmoid_focal_per_class_reference


def torchvision_sigmoid_focal(x, t, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, written out (alpha < 0 disables alpha)."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def softmax_focal_reference(z, t, gamma, alpha=None, ignore_index=-100):
    valid = t != ignore_index
    safe = t.masked_fill(~valid, 0)
    log_p = F.log_softmax(z, 1).gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    weight = valid.to(z.dtype) if alpha is None else alpha[safe] * valid   # "mean" as cross_entropy(weight=)
    return (loss * weight).sum() / weight.sum()


@pytest.mark.parametrize("alpha", [0.25, 0.8, None])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_focal_matches_torchvision_formula_float64(alpha, gamma, reduction):
    x = (torch.randn(4, 3, 5, 6, dtype=torch.float64) * 3).requires_grad_()
    t = (torch.rand(4, 3, 5, 6) < 0.3).double()
    t[0, 0, 0] = 0.3  # soft labels too
    ours = sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    ref = torchvision_sigmoid_focal(x, t, -1 if alpha is None else alpha, gamma, reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    g_ours, = torch.autograd.grad(ours.sum(), x)
    g_ref, = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-12)


def test_sigmoid_focal_gamma0_no_alpha_is_bce():
    x, t = torch.randn(64, 5), (torch.rand(64, 5) < 0.2).float()
    torch.testing.assert_close(sigmoid_focal_loss(x, t, alpha=None, gamma=0.0),
                               F.binary_cross_entropy_with_logits(x, t))


def test_sigmoid_focal_exact_ratio_to_bce():
    x, t = torch.randn(100, dtype=torch.float64), (torch.rand(100) < 0.5).double()
    p_t = torch.where(t > 0, torch.sigmoid(x), torch.sigmoid(-x))
    ratio = sigmoid_focal_loss(x, t, alpha=None, gamma=2.0, reduction="none") / \
        F.binary_cross_entropy_with_logits(x, t, reduction="none")
    torch.testing.assert_close(ratio, (1 - p_t) ** 2)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_sigmoid_focal_gradcheck(gamma):
    x = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(3, 2, 4) < 0.4).double()
    weight = torch.tensor([0.2, 0.9], dtype=torch.float64).view(2, 1)
    t[0, 0, 0] = 255
    assert torch.autograd.gradcheck(
        lambda v: sigmoid_focal_loss(v, t, alpha=0.3, gamma=gamma, weight=weight, ignore_index=255,
                                     reduction="none"), (x,))


def test_sigmoid_focal_alpha_is_a_number_or_per_class_and_ignore():
    x, t = torch.randn(4, 3, 8, dtype=torch.float64), (torch.rand(4, 3, 8) < 0.3).double()
    for make in (lambda a: sigmoid_focal_loss(x, t, alpha=a), lambda a: sl.SigmoidFocalLoss(alpha=a)):
        with pytest.raises(ValueError, match=r"alpha must be None, a number in \[0, 1\] or a 1-D tensor.*pass "
                                             r"weight="):
            make(torch.tensor([0.1, 0.5, 0.9]).view(3, 1))
    assert "alpha=0.4" in repr(sl.SigmoidFocalLoss(alpha=0.4))
    per_channel = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64).view(3, 1)
    torch.testing.assert_close(sigmoid_focal_loss(x, t, weight=per_channel, reduction="none"),
                               sigmoid_focal_loss(x, t, reduction="none") * per_channel)
    t_ign = t.clone()
    t_ign[:, :, :2] = 255
    x_req = x.clone().requires_grad_()
    loss = sigmoid_focal_loss(x_req, t_ign, ignore_index=255)
    loss.backward()
    assert (x_req.grad[:, :, :2] == 0).all()
    keep = t_ign != 255
    torch.testing.assert_close(loss, torchvision_sigmoid_focal(x[keep], t[keep]).mean())


def test_sigmoid_focal_positive_normalizer_is_retinanet():
    x, t = torch.randn(2, 100), (torch.rand(2, 100) < 0.05).float()
    expected = torchvision_sigmoid_focal(x, t).sum() / max(t.sum().item(), 1)
    torch.testing.assert_close(sigmoid_focal_loss(x, t, normalizer="positives"), expected)
    zero = torch.zeros_like(t)
    torch.testing.assert_close(sigmoid_focal_loss(x, zero, normalizer="positives"),
                               torchvision_sigmoid_focal(x, zero).sum())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sigmoid_focal_half_and_extreme_logits(dtype):
    x = (torch.randn(2, 1, 16, 16) * 1e4).to(dtype).requires_grad_()
    t = (torch.rand(2, 1, 16, 16) < 0.3).to(dtype)
    loss = sigmoid_focal_loss(x, t, gamma=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and x.grad.dtype == dtype


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.0])
def test_softmax_focal_float64_reference(gamma):
    z = torch.randn(3, 5, 4, 6, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (3, 4, 6))
    t[0, 0] = -100
    alpha = torch.rand(5, dtype=torch.float64) + 0.1
    ours = softmax_focal_loss(z, t, class_weight=alpha, gamma=gamma)
    ref = softmax_focal_reference(z, t, gamma, alpha)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, z)[0], torch.autograd.grad(ref, z)[0])


def test_softmax_focal_gamma0_is_cross_entropy_and_gradcheck():
    z, t = torch.randn(16, 7), torch.randint(0, 7, (16,))
    torch.testing.assert_close(softmax_focal_loss(z, t, gamma=0.0), F.cross_entropy(z, t))
    z64 = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    t64 = torch.randint(0, 3, (4, 5))
    assert torch.autograd.gradcheck(lambda v: softmax_focal_loss(v, t64, gamma=1.5, reduction="none"), (z64,))


def test_softmax_focal_extreme_and_half():
    z = (torch.randn(4, 3, 8) * 1e4).requires_grad_()
    t = torch.randint(0, 3, (4, 8))
    loss = softmax_focal_loss(z, t, gamma=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    zh = torch.randn(4, 3, 8, dtype=torch.bfloat16, requires_grad=True)
    softmax_focal_loss(zh, t).backward()
    assert zh.grad.dtype == torch.bfloat16 and torch.isfinite(zh.grad.float()).all()


def test_modules_equal_functions_and_keep_buffers():
    x, t = torch.randn(4, 3), (torch.rand(4, 3) < 0.3).float()
    module = sl.SigmoidFocalLoss(alpha=0.4, gamma=1.5)
    torch.testing.assert_close(module(x, t), sigmoid_focal_loss(x, t, alpha=0.4, gamma=1.5))
    z, idx = torch.randn(6, 4), torch.randint(0, 4, (6,))
    alpha = torch.tensor([0.5, 1.0, 2.0, 0.5])
    softmax_module = sl.SoftmaxFocalLoss(4, class_weight=alpha)
    torch.testing.assert_close(softmax_module(z, idx), softmax_focal_loss(z, idx, class_weight=alpha))
    assert "class_weight" in softmax_module.state_dict()
    assert softmax_module.to(torch.float64).class_weight.dtype == torch.float64


def test_focal_bad_input_messages():
    x, t = torch.randn(4, 3, 8), (torch.rand(4, 3, 8) < 0.3).float()
    with pytest.raises(ValueError, match=r"sigmoid_focal_loss: alpha must be in \[0, 1\]"):
        sigmoid_focal_loss(x, t, alpha=1.5)
    with pytest.raises(ValueError, match="gamma must be in"):
        sigmoid_focal_loss(x, t, gamma=-1.0)
    with pytest.raises(ValueError, match="did you mean softmax_focal_loss"):
        sigmoid_focal_loss(x, torch.randint(0, 3, (4, 8)))
    with pytest.raises(ValueError, match="ignore_index=255"):
        sigmoid_focal_loss(x, t.masked_fill(t > 0, 255))
    with pytest.raises(ValueError, match="normalizer must be one of .*did you mean 'positives'"):
        sigmoid_focal_loss(x, t, normalizer="positive")
    with pytest.raises(TypeError, match="use sigmoid_focal_loss"):
        softmax_focal_loss(x, t[:, 0])
    with pytest.raises(ValueError, match="weight must be None or broadcastable.*per-class weights go in class_weight="):
        softmax_focal_loss(x, t[:, 0].long(), weight=torch.ones(3))
    with pytest.raises(ValueError, match="class_weight must be a 1-D tensor of 3"):
        softmax_focal_loss(x, t[:, 0].long(), class_weight=torch.ones(2))
    with pytest.raises(ValueError, match="SigmoidFocalLoss: alpha"):
        sl.SigmoidFocalLoss(alpha=-0.1)


ALPHA = [0.25, 0.5, 0.9]


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 5, 7)])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 2.5])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_focal_per_class_alpha_matches_the_float64_reference(shape, gamma, reduction):
    gen = torch.Generator().manual_seed(11)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    t = (torch.rand(shape, generator=gen) < 0.3).double()
    t.view(-1)[0] = 0.3  # a soft label too
    ours = sigmoid_focal_loss(x, t, alpha=torch.tensor(ALPHA, dtype=torch.float64), gamma=gamma, reduction=reduction)
    ref = sigmoid_focal_per_class_reference(x, t, ALPHA, gamma, reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    g_ours, = torch.autograd.grad(ours.sum(), x)
    g_ref, = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk", [16, 1 << 18])
def test_sigmoid_focal_per_class_alpha_float32_engine_in_blocks(monkeypatch, chunk):
    monkeypatch.setattr(_fused, "CHUNK_ELEMENTS", chunk)
    gen = torch.Generator().manual_seed(12)
    x = (torch.randn(4, 3, 6, 5, generator=gen) * 4).requires_grad_()
    t = (torch.rand(4, 3, 6, 5, generator=gen) < 0.2).float()
    loss = sigmoid_focal_loss(x, t, alpha=ALPHA, gamma=2.0)
    loss.backward()
    xd = x.detach().double().requires_grad_()
    ref = sigmoid_focal_per_class_reference(xd, t, ALPHA, 2.0)
    ref.backward()
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(x.grad.double(), xd.grad, rtol=1e-4, atol=1e-7)


def test_sigmoid_focal_per_class_alpha_equal_entries_is_the_number():
    x, t = torch.randn(5, 3, 4), (torch.rand(5, 3, 4) < 0.3).float()
    torch.testing.assert_close(sigmoid_focal_loss(x, t, alpha=[0.3, 0.3, 0.3]), sigmoid_focal_loss(x, t, alpha=0.3))


def test_sigmoid_focal_per_class_alpha_module_buffer_and_build_string():
    assert parse_config("focal:alpha=[0.25,0.5,0.9],gamma=2") == [{"type": "focal", "alpha": ALPHA, "gamma": 2}]
    criterion = sl.build_loss("focal:alpha=[0.25,0.5,0.9]")
    assert isinstance(criterion, sl.SigmoidFocalLoss) and "alpha" in dict(criterion.named_buffers())
    assert torch.equal(criterion.state_dict()["alpha"], torch.tensor(ALPHA))
    assert copy.deepcopy(criterion).double().alpha.dtype == torch.float64
    assert "alpha=[0.25, 0.5, 0.9]" in repr(criterion)
    x, t = torch.randn(4, 3, 8, 8, dtype=torch.float64), (torch.rand(4, 3, 8, 8) < 0.3).double()
    torch.testing.assert_close(criterion(x, t), sigmoid_focal_per_class_reference(x, t, ALPHA, 2.0))
    restored = sl.SigmoidFocalLoss(alpha=[0.0, 0.0, 0.0])
    restored.load_state_dict(criterion.state_dict())
    torch.testing.assert_close(restored.alpha, criterion.alpha)


def test_sigmoid_focal_per_class_alpha_errors():
    x, t = torch.randn(4, 3, 5), (torch.rand(4, 3, 5) < 0.3).float()
    with pytest.raises(ValueError, match=r"sigmoid_focal_loss: alpha must be one value per class of the logits' "
                                         r"dimension 1 \(shape \(4, 3, 5\)\)"):
        sigmoid_focal_loss(x, t, alpha=[0.25, 0.5])
    with pytest.raises(ValueError, match="SigmoidFocalLoss: alpha must be per-class values in \\[0, 1\\]"):
        sl.SigmoidFocalLoss(alpha=[0.25, 1.5, 0.5])
    with pytest.raises(TypeError, match="alpha must be None, a number in \\[0, 1\\] or a 1-D tensor of one per class"):
        sigmoid_focal_loss(x, t, alpha=["a", "b", "c"])
    with pytest.raises(ValueError, match="SigmoidFocalLoss.forward: alpha must be one value per class"):
        sl.SigmoidFocalLoss(alpha=ALPHA)(torch.randn(8), (torch.rand(8) < 0.5).float())
