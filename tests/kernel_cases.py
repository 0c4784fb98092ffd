"""The Triton kernels' test cases, shared by the interpreter tests (tests/test_triton.py) and the GPU tests
(tests/test_cuda.py): losses of the sigmoid and softmax families with the options their kernels take, small
inputs, and each dtype's tolerance."""

import pytest
import torch

from seesaw_losses.functional import (
    asymmetric_loss, balanced_softmax_loss, binary_seesaw_loss, ldam_loss, logit_adjusted_loss, seesaw_loss,
    sigmoid_focal_loss, softmax_focal_loss, weighted_bce_loss,
)

@pytest.fixture
def fused_calls(monkeypatch):
    """Every Triton pass taken (True) or declined (False)."""
    from seesaw_losses.functional import _triton  # as the test module left it (maybe reloaded for the interpreter)

    calls = []
    original = _triton.fused_pass

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(result is not None)
        return result
    monkeypatch.setattr(_triton, "fused_pass", spy)
    return calls


TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float16: dict(rtol=1e-2, atol=1e-3),
             torch.bfloat16: dict(rtol=2e-2, atol=1e-2)}


def loss_and_grad(fn, logits, *args, **kwargs):
    """``fn``'s loss and the gradient of its sum (of an unreduced loss, weighted 0.5 to 1.5) at ``logits``."""
    x = logits.detach().clone().requires_grad_()
    loss = fn(x, *args, **kwargs)
    upstream = torch.linspace(0.5, 1.5, loss.numel(), device=loss.device).view(loss.shape) if loss.dim() else 1.0
    (loss * upstream).sum().backward()
    return loss.detach(), x.grad


def binary_inputs(dtype, ignore):
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(2, 1, 9, 13, generator=gen) * 3).to(dtype)
    target = (torch.rand(2, 1, 9, 13, generator=gen) < 0.2).float()
    if ignore:
        target[0, 0, :2] = 255
    weight = torch.rand(2, 1, 9, 13, generator=gen)
    return logits, target, weight


SIGMOID_CASES = {
    "bce": lambda x, t, **kw: weighted_bce_loss(x, t, **kw),
    "weighted bce": lambda x, t, **kw: weighted_bce_loss(x, t, pos_weight=4.0, **kw),
    "focal": lambda x, t, **kw: sigmoid_focal_loss(x, t, **kw),
    "focal gamma=1.5 no alpha": lambda x, t, **kw: sigmoid_focal_loss(x, t, alpha=None, gamma=1.5, **kw),
    "binary seesaw": lambda x, t, **kw: binary_seesaw_loss(x, t, torch.tensor([900, 40]), **kw),
    "binary seesaw q=0": lambda x, t, **kw: binary_seesaw_loss(x, t, torch.tensor([900, 40]), q=0.0, **kw),
    "asymmetric": lambda x, t, **kw: asymmetric_loss(x, t, **kw),
    "asymmetric gamma_pos=1 clip=0": lambda x, t, **kw: asymmetric_loss(x, t, gamma_pos=1.0, clip=0.0, **kw),
    "asymmetric gamma_neg=0.5 eps=0.1": lambda x, t, **kw: asymmetric_loss(x, t, gamma_neg=0.5, eps=0.1, **kw),
}


def multiclass_inputs(dtype, ignore, dense):
    gen = torch.Generator().manual_seed(1)
    shape = (2, 5, 4, 6) if dense else (11, 5)
    logits = (torch.randn(shape, generator=gen) * 3).to(dtype)
    target = torch.randint(0, 5, shape[:1] + shape[2:], generator=gen)
    if ignore:
        target.view(-1)[:3] = -100
    return logits, target


COUNTS = torch.tensor([5000, 600, 70, 8, 1])
SOFTMAX_CASES = {
    "seesaw": lambda z, t, **kw: seesaw_loss(z, t, COUNTS, **kw),
    "seesaw p=0": lambda z, t, **kw: seesaw_loss(z, t, COUNTS, p=0.0, **kw),
    "seesaw class weight": lambda z, t, **kw: seesaw_loss(z, t, COUNTS, class_weight=torch.linspace(0.5, 2, 5),
                                                          **kw),
    "softmax focal": lambda z, t, **kw: softmax_focal_loss(z, t, **kw),
    "logit adjusted": lambda z, t, **kw: logit_adjusted_loss(z, t, COUNTS, **kw),
    "balanced softmax": lambda z, t, **kw: balanced_softmax_loss(z, t, COUNTS, **kw),
    "ldam": lambda z, t, **kw: ldam_loss(torch.tanh(z), t, COUNTS, class_weight=torch.linspace(0.5, 2, 5), **kw),
    "ldam scale=1 margin=1": lambda z, t, **kw: ldam_loss(z, t, COUNTS, max_margin=1.0, scale=1.0, **kw),
    "softmax focal class weight": lambda z, t, **kw: softmax_focal_loss(
        z, t, class_weight=[0.1, 0.2, 0.3, 0.2, 0.2], gamma=1.5, **kw),
}
