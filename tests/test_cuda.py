"""The GPU path: the Triton kernels against the engine's own path and a float64 reference, no host sync inside a
loss, class counts summed on the device, and ``torch.compile(fullgraph=True)`` of every loss.

Marked ``cuda`` (``pytest -m cuda tests/test_cuda.py``, as ``scripts/gpu_check.sh`` runs it) and parametrised over
the devices: the CUDA cases skip where torch sees no CUDA device; the CPU cases run what can run there (the
kernels through Triton's interpreter, switched on here when there is no GPU). Run this file on its own on a GPU:
collected with tests/test_triton.py, the interpreter is on for the whole process and the CUDA kernel cases skip.
"""

import contextlib
import importlib
import os
import sys

import pytest
import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are decorated: they then run on CPU tensors

pytest.importorskip("triton", reason="the Triton kernels need the optional extra: pip install 'seesaw-losses[triton]'")

import seesaw_losses  # noqa: E402
from kernel_cases import (  # noqa: E402,F401  (fused_calls: a fixture)
    SIGMOID_CASES, SOFTMAX_CASES, TOLERANCE, binary_inputs, fused_calls, loss_and_grad, multiclass_inputs,
)
from seesaw_losses.functional import use_triton  # noqa: E402
from seesaw_losses.functional._fused import plain_formula, triton_kernels_on_cpu  # noqa: E402
from test_compile import (  # noqa: E402
    NEEDS_EXTRA_INPUTS, _calls, _registry_runs, assert_same_training, compiled_and_eager,
)

if not CUDA and "seesaw_losses.functional._triton" in sys.modules:  # decorated before the interpreter was on
    importlib.reload(sys.modules["seesaw_losses.functional._triton"])
from seesaw_losses.functional import _triton  # noqa: E402

pytestmark = pytest.mark.cuda

NO_CUDA = "torch sees no CUDA device"
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason=NO_CUDA))]
CUDA_ONLY = [pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason=NO_CUDA))]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REFERENCE_TOLERANCE = {torch.float32: dict(rtol=1e-4, atol=1e-5), **{d: TOLERANCE[d] for d in DTYPES[1:]}}
"""Against float64 on the same (rounded) inputs: the kernels compute in float32; half-precision gradients are
stored in the input's dtype."""

ROUNDED_BEFORE_THE_LOSS = {"ldam"}
"""Cases whose logits go through ``tanh`` in the input's dtype before the loss: in half precision that rounding
(not the kernel) moves the gradient away from float64's, so only the loss is compared with float64 there."""


def _interpreted() -> bool:
    return type(_triton.sigmoid_kernel).__name__ == "InterpretedFunction"


@pytest.fixture
def kernels_on(device):
    """A context in which ``device``'s tensors take the Triton kernels (skips where this process cannot)."""
    if device == "cpu":
        if not _interpreted():
            pytest.skip("CPU tensors reach the Triton kernels only through Triton's interpreter "
                        "(TRITON_INTERPRET=1), and this process compiles them for its GPU")
        return triton_kernels_on_cpu
    if _interpreted():
        pytest.skip("Triton's interpreter is on in this process (TRITON_INTERPRET=1, e.g. set by "
                    "tests/test_triton.py collected with this file): run tests/test_cuda.py on its own")
    return contextlib.nullcontext


@contextlib.contextmanager
def no_host_sync(device):
    """Any host synchronisation on CUDA raises (``torch.cuda.set_sync_debug_mode("error")``); value checks off
    (they read tensor values, which is a sync by design)."""
    if device != "cuda":
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    with seesaw_losses.value_checks(False):
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous)


def _on(value, device, dtype=None):
    if not isinstance(value, torch.Tensor):
        return value
    return value.to(device=device, dtype=dtype if value.is_floating_point() and dtype else value.dtype)


def _assert_kernel_matches(fused_calls, kernels_on, fn, logits, target, reference_gradient=True,
                           **options):
    """The Triton kernel's loss and gradient match the engine's and the float64 plain formula's (the gradient not
    with ``reference_gradient=False``). The cases pass CPU counts, whose copy to the GPU is a sync of the caller's
    making: host syncs are checked on device-resident inputs (:func:`test_no_loss_synchronises_with_the_host`)."""
    with use_triton(False):
        engine = loss_and_grad(fn, logits, target, **options)
    assert not fused_calls
    with kernels_on():
        fused = loss_and_grad(fn, logits, target, **options)
    assert fused_calls and all(fused_calls)
    assert fused[0].device == logits.device and fused[1].dtype == logits.dtype
    with plain_formula():
        reference = loss_and_grad(fn, _on(logits, "cpu", torch.float64), _on(target, "cpu"),
                                  **{k: _on(v, "cpu", torch.float64) for k, v in options.items()})
    for got, engine_value, expected in zip(fused, engine, reference[:2 if reference_gradient else 1]):
        torch.testing.assert_close(got, engine_value, **TOLERANCE[logits.dtype])
        torch.testing.assert_close(got.cpu().double(), expected, **REFERENCE_TOLERANCE[logits.dtype])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", list(SIGMOID_CASES))
def test_sigmoid_kernels_match_the_engine_and_float64(fused_calls, kernels_on, device, dtype, reduction, name):
    logits, target, weight = (t.to(device) for t in binary_inputs(dtype, ignore=True))
    _assert_kernel_matches(fused_calls, kernels_on, SIGMOID_CASES[name], logits, target, weight=weight,
                           ignore_index=255, reduction=reduction)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dense,reduction", [(True, "mean"), (False, "none")])
@pytest.mark.parametrize("name", list(SOFTMAX_CASES))
def test_softmax_kernels_match_the_engine_and_float64(fused_calls, kernels_on, device, dtype, dense, reduction,
                                                      name):
    logits, target = (t.to(device) for t in multiclass_inputs(dtype, ignore=True, dense=dense))
    _assert_kernel_matches(fused_calls, kernels_on, SOFTMAX_CASES[name], logits, target,
                           reference_gradient=dtype == torch.float32 or name not in ROUNDED_BEFORE_THE_LOSS,
                           ignore_index=-100, reduction=reduction)


@pytest.mark.parametrize("device", CUDA_ONLY)
def test_no_loss_synchronises_with_the_host(device):
    """Every registered loss (function and module, each activation, ignore_index on), forward and backward, after
    a first call that may compile."""
    synced = []
    for label, (call, logits, target) in _calls(device).items():
        for checked in (False, True):
            x = logits.detach().clone().requires_grad_()
            try:
                with no_host_sync(device) if checked else contextlib.nullcontext():
                    call(x, target).sum().backward()
            except RuntimeError as error:
                if "synchroniz" not in str(error):
                    raise
                synced.append(f"{label}: {str(error).splitlines()[0]}")
    assert not synced, "\n".join(synced)


@pytest.mark.parametrize("device", DEVICES)
def test_class_counts_are_summed_on_the_device(device):
    gen = torch.Generator().manual_seed(3)
    target = torch.randint(0, 5, (4, 16, 16), generator=gen)
    target[0, :3] = 255
    mask = (torch.rand(4, 1, 16, 16, generator=gen) < 0.1).float()
    mask[1, 0, :2] = 255
    seesaw = seesaw_losses.SeesawLoss(num_classes=5, ignore_index=255).to(device).train()
    binary = seesaw_losses.BinarySeesawLoss(ignore_index=255).to(device).train()
    logits, binary_logits = torch.randn(4, 5, 16, 16), torch.randn(4, 1, 16, 16)
    for _ in range(2):  # the first call may compile
        with no_host_sync(device):
            seesaw(logits.to(device), target.to(device))
            binary(binary_logits.to(device), mask.to(device))
    assert seesaw.class_counts.device.type == device and binary.class_counts.device.type == device
    valid = target[target != 255]
    torch.testing.assert_close(seesaw.class_counts.cpu(), 2 * torch.bincount(valid, minlength=5))
    kept = mask[mask != 255]
    torch.testing.assert_close(binary.class_counts.cpu(), 2 * torch.stack([(kept == 0).sum(), (kept == 1).sum()]))


@pytest.mark.parametrize("device", CUDA_ONLY)
def test_every_loss_compiles_with_inductor_on_the_device(device):
    """One graph of every registered loss (tests/test_compile.py's), compiled by inductor into Triton code with
    ``fullgraph=True``: the same losses, gradients and state as eager, step after step."""
    compiled, eager, runs, _ = compiled_and_eager(lambda: _registry_runs(device), "inductor")
    names = {label.split(" (")[0] for label in runs}
    assert names == {e.name for e in seesaw_losses.available_losses()} - set(NEEDS_EXTRA_INPUTS) | {"CombinedLoss"}
    assert_same_training(compiled, eager)
