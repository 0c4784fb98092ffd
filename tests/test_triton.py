"""The fused Triton kernels agree with the engine's eager path, forward and gradient, run by Triton's interpreter
on CPU tensors (``TRITON_INTERPRET=1``, set here before Triton is imported)."""

import importlib
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="the Triton kernels need the optional extra: pip install 'seesaw-losses[triton]'")

import torch.nn.functional as F  # noqa: E402

from seesaw_losses.functional import (  # noqa: E402
    _fused, asymmetric_loss, balanced_softmax_loss, binary_seesaw_loss, ldam_loss, logit_adjusted_loss, seesaw_loss,
    sigmoid_focal_loss, softmax_focal_loss, weighted_bce_loss,
)
from seesaw_losses.functional._fused import classwise_loss, triton_kernels_on_cpu  # noqa: E402

if "seesaw_losses.functional._triton" in sys.modules:   # decorated before the interpreter was switched on
    importlib.reload(sys.modules["seesaw_losses.functional._triton"])
from seesaw_losses.functional import _triton  # noqa: E402

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float16: dict(rtol=1e-2, atol=1e-3),
             torch.bfloat16: dict(rtol=2e-2, atol=1e-2)}


@pytest.fixture
def fused_calls(monkeypatch):
    """Every Triton pass taken (True) or declined (False)."""
    calls = []
    original = _triton.fused_pass

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(result is not None)
        return result
    monkeypatch.setattr(_triton, "fused_pass", spy)
    return calls


def _loss_and_grad(fn, logits, *args, **kwargs):
    x = logits.detach().clone().requires_grad_()
    loss = fn(x, *args, **kwargs)
    upstream = torch.linspace(0.5, 1.5, loss.numel()).view(loss.shape) if loss.dim() else 1.0
    (loss * upstream).sum().backward()
    return loss.detach(), x.grad


def _assert_triton_matches_eager(fused_calls, fn, logits, *args, **kwargs):
    eager = _loss_and_grad(fn, logits, *args, **kwargs)
    assert not fused_calls, "CPU tensors take the Triton path only under triton_kernels_on_cpu()"
    with triton_kernels_on_cpu():
        fused = _loss_and_grad(fn, logits, *args, **kwargs)
    assert fused_calls and all(fused_calls)
    assert fused[1].dtype == logits.dtype
    tolerance = TOLERANCE[logits.dtype]
    torch.testing.assert_close(fused[0], eager[0], **tolerance)
    torch.testing.assert_close(fused[1], eager[1], **tolerance)


def _binary(dtype, ignore):
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


@pytest.mark.parametrize("name", list(SIGMOID_CASES))
@pytest.mark.parametrize("ignore,weighted,reduction", [(False, False, "mean"), (True, True, "none"),
                                                       (True, False, "sum")])
def test_sigmoid_family(fused_calls, name, ignore, weighted, reduction):
    logits, target, weight = _binary(torch.float32, ignore)
    _assert_triton_matches_eager(fused_calls, SIGMOID_CASES[name], logits, target, reduction=reduction,
                                 ignore_index=255 if ignore else None, weight=weight if weighted else None)


@pytest.mark.parametrize("shape", [(2, 3, 9, 13), (37, 3)])
@pytest.mark.parametrize("ignore,weighted,reduction", [(False, False, "mean"), (True, True, "none"),
                                                       (True, False, "sum")])
def test_sigmoid_focal_per_class_alpha(fused_calls, shape, ignore, weighted, reduction):
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(shape, generator=gen) * 3
    target = (torch.rand(shape, generator=gen) < 0.2).float()
    if ignore:
        target.view(-1)[:7] = 255
    weight = torch.rand(shape, generator=gen) if weighted else None
    _assert_triton_matches_eager(fused_calls, sigmoid_focal_loss, logits, target, alpha=[0.25, 0.5, 0.9],
                                 gamma=1.5, reduction=reduction, ignore_index=255 if ignore else None, weight=weight)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["weighted bce", "focal", "binary seesaw", "asymmetric"])
def test_sigmoid_family_half_precision(fused_calls, name, dtype):
    logits, target, _ = _binary(dtype, True)
    _assert_triton_matches_eager(fused_calls, SIGMOID_CASES[name], logits, target, ignore_index=255)


def _multiclass(dtype, ignore, dense):
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


@pytest.mark.parametrize("name", list(SOFTMAX_CASES))
@pytest.mark.parametrize("ignore,dense,reduction", [(False, True, "mean"), (True, True, "none"),
                                                    (True, False, "sum")])
def test_softmax_family(fused_calls, name, ignore, dense, reduction):
    logits, target = _multiclass(torch.float32, ignore, dense)
    _assert_triton_matches_eager(fused_calls, SOFTMAX_CASES[name], logits, target, reduction=reduction,
                                 ignore_index=-100 if ignore else None)


def test_seesaw_at_extreme_logits_keeps_float64_precision(fused_calls):
    from seesaw_losses.functional import seesaw_loss

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=gen).sign() * 1e4
    target = torch.randint(0, 5, (64,), generator=gen)
    counts = torch.tensor([5000, 600, 70, 8, 1])

    def gradient(z):
        z = z.detach().requires_grad_()
        seesaw_loss(z, target, counts, p=3.0, q=20.0, reduction="sum").backward()
        return z.grad.double()

    reference = gradient(logits.double())
    with triton_kernels_on_cpu():
        grad = gradient(logits)
    assert fused_calls == [True]
    assert (grad - reference).abs().max() <= 5e-7 * reference.abs().max()   # 1e-6 unshifted


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["seesaw", "softmax focal", "ldam"])
def test_softmax_family_half_precision(fused_calls, name, dtype):
    logits, target = _multiclass(dtype, True, True)
    _assert_triton_matches_eager(fused_calls, SOFTMAX_CASES[name], logits, target, ignore_index=-100)


class OffsetCrossEntropyKernel:
    """Cross-entropy of ``z + offsets`` (logit adjustment), declaring its Triton form."""

    def __init__(self, offsets):
        self.offsets = offsets

    def loss(self, z, t):
        return F.cross_entropy(z + self.offsets.view(1, -1, 1), t, reduction="none")

    def evaluate(self, z, t, *, need_grad, scratch):
        adjusted = z + self.offsets.view(1, -1, 1)
        loss = F.cross_entropy(adjusted, t, reduction="none")
        grad = torch.softmax(adjusted, 1) - F.one_hot(t, z.shape[1]).movedim(-1, 1) if need_grad else None
        return loss, grad

    def triton_form(self):
        return _triton.SoftmaxForm.cross_entropy(self.offsets)


@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_with_logit_offsets(fused_calls, ignore):
    logits, target = _multiclass(torch.float32, ignore, True)
    offsets = torch.log(COUNTS.float() / COUNTS.sum())
    kernel = OffsetCrossEntropyKernel(offsets)

    def loss(z, t):
        return classwise_loss(kernel, z, t, weight=None, ignore_index=-100 if ignore else None, reduce_sum=True)
    _assert_triton_matches_eager(fused_calls, loss, logits, target)
    valid = target != -100
    expected = F.cross_entropy(logits + offsets.view(1, -1, 1, 1), target, reduction="sum", ignore_index=-100)
    assert valid.any()
    with triton_kernels_on_cpu():
        torch.testing.assert_close(loss(logits, target), expected)


def test_partial_sums_are_added_in_a_fixed_order():
    logits, target = torch.randn(3, 1, 70, 70) * 4, (torch.rand(3, 1, 70, 70) < 0.1).float()
    with triton_kernels_on_cpu():
        first = _loss_and_grad(sigmoid_focal_loss, logits, target)
        second = _loss_and_grad(sigmoid_focal_loss, logits, target)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    torch.testing.assert_close(first, _loss_and_grad(sigmoid_focal_loss, logits, target))


def test_paths_the_kernels_do_not_cover_stay_on_the_engine(fused_calls):
    logits, target, _ = _binary(torch.float64, False)
    with triton_kernels_on_cpu():
        weighted_bce_loss(logits, target)       # float64: the engine keeps its precision
        weighted_bce_loss(logits.float(), target, pos_weight=torch.tensor([2.0]).view(1, 1, 1, 1).expand(1, 1, 9, 13))
        binary_seesaw_loss(logits.float(), target, None, variant="reweighted")
    assert fused_calls == [False, False]
    assert not _fused._triton_on_cpu
