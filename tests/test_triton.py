"""The fused Triton kernels agree with the engine's eager path, forward and gradient, run by Triton's interpreter
on CPU tensors (``TRITON_INTERPRET=1``, set here before Triton is imported)."""

import importlib
import os
import subprocess
import sys
import warnings

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="the Triton kernels need the optional extra: pip install 'seesaw-losses[triton]'")

import torch.nn.functional as F  # noqa: E402

from kernel_cases import (  # noqa: E402,F401  (fused_calls: a fixture)
    COUNTS, SIGMOID_CASES, SOFTMAX_CASES, TOLERANCE, binary_inputs, fused_calls, loss_and_grad, multiclass_inputs,
)
from seesaw_losses.functional import (  # noqa: E402
    _fused, _triton_guard, binary_seesaw_loss, sigmoid_focal_loss, use_triton, weighted_bce_loss,
)
from seesaw_losses.functional._fused import classwise_loss, triton_kernels_on_cpu  # noqa: E402

if "seesaw_losses.functional._triton" in sys.modules:   # decorated before the interpreter was switched on
    importlib.reload(sys.modules["seesaw_losses.functional._triton"])
from seesaw_losses.functional import _triton  # noqa: E402


def _assert_triton_matches_eager(fused_calls, fn, logits, *args, **kwargs):
    eager = loss_and_grad(fn, logits, *args, **kwargs)
    assert not fused_calls, "CPU tensors take the Triton path only under triton_kernels_on_cpu()"
    with triton_kernels_on_cpu():
        fused = loss_and_grad(fn, logits, *args, **kwargs)
    assert fused_calls and all(fused_calls)
    assert fused[1].dtype == logits.dtype
    tolerance = TOLERANCE[logits.dtype]
    torch.testing.assert_close(fused[0], eager[0], **tolerance)
    torch.testing.assert_close(fused[1], eager[1], **tolerance)


@pytest.mark.parametrize("name", list(SIGMOID_CASES))
@pytest.mark.parametrize("ignore,weighted,reduction", [(False, False, "mean"), (True, True, "none"),
                                                       (True, False, "sum")])
def test_sigmoid_family(fused_calls, name, ignore, weighted, reduction):
    logits, target, weight = binary_inputs(torch.float32, ignore)
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
    logits, target, _ = binary_inputs(dtype, True)
    _assert_triton_matches_eager(fused_calls, SIGMOID_CASES[name], logits, target, ignore_index=255)


@pytest.mark.parametrize("name", list(SOFTMAX_CASES))
@pytest.mark.parametrize("ignore,dense,reduction", [(False, True, "mean"), (True, True, "none"),
                                                    (True, False, "sum")])
def test_softmax_family(fused_calls, name, ignore, dense, reduction):
    logits, target = multiclass_inputs(torch.float32, ignore, dense)
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
    logits, target = multiclass_inputs(dtype, True, True)
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
    logits, target = multiclass_inputs(torch.float32, ignore, True)
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
        first = loss_and_grad(sigmoid_focal_loss, logits, target)
        second = loss_and_grad(sigmoid_focal_loss, logits, target)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    torch.testing.assert_close(first, loss_and_grad(sigmoid_focal_loss, logits, target))


def test_paths_the_kernels_do_not_cover_stay_on_the_engine(fused_calls):
    logits, target, _ = binary_inputs(torch.float64, False)
    with triton_kernels_on_cpu():
        weighted_bce_loss(logits, target)       # float64: the engine keeps its precision
        weighted_bce_loss(logits.float(), target, pos_weight=torch.tensor([2.0]).view(1, 1, 1, 1).expand(1, 1, 9, 13))
        binary_seesaw_loss(logits.float(), target, None, variant="reweighted")
    assert fused_calls == [False, False]
    assert not _fused._triton_on_cpu


@pytest.fixture
def no_failed_kernels(monkeypatch):
    monkeypatch.setattr(_triton_guard, "_failed", set())


def test_use_triton_switches_the_kernels_off_and_back(fused_calls):
    logits, target, _ = binary_inputs(torch.float32, False)
    with triton_kernels_on_cpu():
        with use_triton(False):
            off = loss_and_grad(sigmoid_focal_loss, logits, target)
        assert fused_calls == []
        switch = use_triton(False)  # the function form: off until switched on again
        loss_and_grad(sigmoid_focal_loss, logits, target)
        assert fused_calls == []
        with switch:
            pass                    # leaving the block restores the setting from before the switch: on
        on = loss_and_grad(sigmoid_focal_loss, logits, target)
    assert fused_calls == [True]
    torch.testing.assert_close(on, off, **TOLERANCE[torch.float32])


def test_the_environment_switches_the_kernels_off():
    code = ("import sys, torch; from seesaw_losses.functional import sigmoid_focal_loss; "
            "from seesaw_losses.functional._fused import triton_kernels_on_cpu\n"
            "with triton_kernels_on_cpu():\n"
            "    sigmoid_focal_loss(torch.randn(2, 1, 4, 4), torch.ones(2, 1, 4, 4))\n"
            "assert 'seesaw_losses.functional._triton' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "SEESAW_LOSSES_TRITON": "0"})


class FailingLaunch:
    """A kernel that cannot be launched on this device, as a Triton kernel built for another GPU fails."""

    def __init__(self):
        self.launches = 0

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches += 1
            raise RuntimeError("no kernel image is available for execution on the device\nmore detail")
        return launch


def test_a_kernel_that_fails_warns_once_and_falls_back_to_the_engine(monkeypatch, no_failed_kernels, fused_calls):
    failing = FailingLaunch()
    monkeypatch.setattr(_triton, "sigmoid_kernel", failing)
    logits, target, weight = binary_inputs(torch.float32, True)
    options = dict(ignore_index=255, weight=weight)
    engine = loss_and_grad(sigmoid_focal_loss, logits, target, **options)
    with triton_kernels_on_cpu():
        with pytest.warns(RuntimeWarning) as caught:
            first = loss_and_grad(sigmoid_focal_loss, logits, target, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = loss_and_grad(sigmoid_focal_loss, logits, target, **options)
        assert failing.launches == 1 and fused_calls == []
        softmax = loss_and_grad(SOFTMAX_CASES["seesaw"], *multiclass_inputs(torch.float32, False, True))
    assert fused_calls == [True]  # the other kernels keep their Triton path
    assert [str(w.message) for w in caught] == [
        "seesaw_losses: the Triton kernel for SigmoidFocalKernel failed on cpu (RuntimeError: no kernel image is "
        "available for execution on the device); it runs on PyTorch operations on that device from now on "
        "(SEESAW_LOSSES_TRITON=0 turns every Triton kernel off)"]
    for result in (first, second):
        torch.testing.assert_close(result, engine)
    assert torch.isfinite(softmax[0])


def test_out_of_memory_is_not_taken_for_a_broken_kernel(monkeypatch, no_failed_kernels):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(_triton, "fused_pass", out_of_memory)
    logits, target, _ = binary_inputs(torch.float32, False)
    with triton_kernels_on_cpu(), pytest.raises(torch.cuda.OutOfMemoryError):
        sigmoid_focal_loss(logits, target)
    assert not _triton_guard._failed
