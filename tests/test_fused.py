"""The fused engine: fused and plain paths agree, analytic gradients pass gradcheck, blocks cover every element,
half precision is read block by block, a retained graph can be backpropagated twice."""

import itertools

import pytest
import torch

from seesaw_losses.functional import _fused, binary_seesaw_loss, seesaw_loss, value_checks
from seesaw_losses.functional._fused import plain_formula
from seesaw_losses.functional.binary_seesaw import PaperKernel
from seesaw_losses.functional.seesaw import SeesawKernel, seesaw_kernel
from seesaw_losses.memory import peak_tensor_bytes


@pytest.fixture
def small_chunks(monkeypatch):
    """Blocks of 100 elements, so that small tensors cross many block boundaries."""
    monkeypatch.setattr(_fused, "CHUNK_ELEMENTS", 100)


def _loss_and_grad(fn, logits, *args, plain=False, upstream=None, **kwargs):
    x = logits.detach().clone().requires_grad_()
    if plain:
        with plain_formula():
            loss = fn(x, *args, **kwargs)
    else:
        loss = fn(x, *args, **kwargs)
    (loss * (1.0 if upstream is None else upstream)).sum().backward()
    return loss.detach(), x.grad


def _assert_paths_agree(fn, logits, *args, **kwargs):
    for reduction in ("mean", "sum", "none"):
        fused = _loss_and_grad(fn, logits, *args, reduction=reduction, **kwargs)
        upstream = torch.rand_like(fused[0]) if reduction == "none" else None
        fused = _loss_and_grad(fn, logits, *args, reduction=reduction, upstream=upstream, **kwargs)
        plain = _loss_and_grad(fn, logits, *args, reduction=reduction, upstream=upstream, plain=True, **kwargs)
        torch.testing.assert_close(fused[0], plain[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused[1], plain[1], rtol=1e-5, atol=1e-6)


SEESAW_FACTORS = [dict(p=0.8, q=2.0), dict(p=0.0, q=0.0), dict(p=0.5, q=1.3), dict(p=3.0, q=30.0)]


@pytest.mark.parametrize("factors", SEESAW_FACTORS, ids=lambda f: f"p{f['p']}-q{f['q']}")
@pytest.mark.parametrize("ignore_index", [None, -100])
@pytest.mark.parametrize("weighted", [False, True])
def test_seesaw_fused_matches_plain(small_chunks, factors, ignore_index, weighted):
    logits = torch.randn(3, 5, 7, 9) * 3
    target = torch.randint(0, 5, (3, 7, 9))
    if ignore_index is not None:
        target[0, :2] = ignore_index
    counts = torch.tensor([5000, 800, 60, 7, 0])
    kwargs = dict(class_weight=torch.rand(5) + 0.1, weight=torch.rand(3, 1, 9)) if weighted else {}
    _assert_paths_agree(seesaw_loss, logits, target, counts, ignore_index=ignore_index, **factors, **kwargs)


def test_seesaw_fused_matches_plain_classification(small_chunks):
    logits = torch.randn(37, 23) * 4
    target = torch.randint(0, 23, (37,))
    _assert_paths_agree(seesaw_loss, logits, target, torch.randint(0, 1000, (23,)))


@pytest.mark.parametrize("variant", ["paper", "reweighted"])
@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_seesaw_fused_matches_plain(small_chunks, variant, ignore_index, weighted):
    logits = torch.randn(2, 1, 13, 11) * 4
    target = (torch.rand_like(logits) < 0.2).float()
    if ignore_index is not None:
        target[0, 0, :3] = ignore_index
    counts = torch.tensor([4000, 90]) if variant == "paper" else None
    weight = torch.rand(1, 1, 13, 1) if weighted else None
    _assert_paths_agree(binary_seesaw_loss, logits, target, counts, variant=variant, ignore_index=ignore_index,
                        weight=weight)


@pytest.mark.parametrize("eps", [1e-2, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("q", [0.5, 2.0])
def test_binary_seesaw_compensation_beyond_eps_matches_plain(small_chunks, eps, q):
    """The compensation term on both sides of the true class's probability eps, for every eps (also above 1/2,
    where the logit at which it starts is negative), agrees with the formula."""
    logits = torch.linspace(-12, 12, 2 * 13 * 11).view(2, 1, 13, 11)
    target = (torch.rand_like(logits) < 0.3).float()
    _assert_paths_agree(binary_seesaw_loss, logits, target, torch.tensor([4000, 90]), q=q, eps=eps)


def test_binary_seesaw_two_logit_fused_matches_plain(small_chunks):
    logits = torch.randn(3, 2, 9, 10) * 3
    target = torch.randint(0, 2, (3, 9, 10))
    _assert_paths_agree(binary_seesaw_loss, logits, target, torch.tensor([700, 30]))


def _gradcheck(fn, logits, *args, **kwargs):
    for reduction in ("sum", "none"):
        x = logits.detach().double().requires_grad_()
        assert torch.autograd.gradcheck(lambda z: fn(z, *args, reduction=reduction, **kwargs), (x,))


def test_seesaw_gradcheck(small_chunks):
    """With q = 0 the factors depend on the counts only, so the loss is differentiable as written."""
    target = torch.tensor([[0, 1, 2, 3], [3, 3, -100, 1]])
    _gradcheck(seesaw_loss, torch.randn(2, 4, 4), target, torch.tensor([900, 50, 5, 1]), p=0.8, q=0.0,
               class_weight=torch.rand(4, dtype=torch.float64))


def test_binary_seesaw_gradcheck(small_chunks):
    logits = torch.randn(2, 1, 6, 5) * 3
    target = (torch.rand_like(logits) < 0.3).double()
    target[0, 0, 0] = 255
    for variant, counts, q in (("paper", torch.tensor([500, 40]), 0.0), ("reweighted", None, 2.0)):
        _gradcheck(binary_seesaw_loss, logits, target, counts, variant=variant, q=q, ignore_index=255,
                   weight=torch.rand(1, 1, 6, 5, dtype=torch.float64))


@pytest.mark.parametrize("factors", SEESAW_FACTORS, ids=lambda f: f"p{f['p']}-q{f['q']}")
def test_seesaw_float64_gradient_matches_plain_autograd(small_chunks, factors):
    """The compensation is detached (no gradient, as in the paper), so the reference is autograd of the plain
    formula rather than finite differences."""
    logits = torch.randn(3, 5, 11, dtype=torch.float64) * 3
    target = torch.randint(0, 5, (3, 11))
    fused = _loss_and_grad(seesaw_loss, logits, target, torch.tensor([900, 50, 5, 1, 0]), **factors)
    plain = _loss_and_grad(seesaw_loss, logits, target, torch.tensor([900, 50, 5, 1, 0]), plain=True, **factors)
    torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-12)


def test_binary_seesaw_float64_gradient_matches_plain_autograd(small_chunks):
    logits = torch.randn(2, 1, 9, 7, dtype=torch.float64) * 4
    target = (torch.rand_like(logits) < 0.3).double()
    fused = _loss_and_grad(binary_seesaw_loss, logits, target, torch.tensor([500, 40]))
    plain = _loss_and_grad(binary_seesaw_loss, logits, target, torch.tensor([500, 40]), plain=True)
    torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 1, 12, 13), (2, 3, 4, 5, 6), (1, 1, 1), (0, 4), (250,)])
def test_elementwise_blocks_cover_every_element_once(small_chunks, shape):
    seen = torch.zeros(shape, dtype=torch.int64)
    for idx in _fused._elementwise_blocks(shape):
        block = seen[idx]
        assert block.numel() <= max(100, shape[-1] if shape else 1)
        assert block.is_contiguous()
        seen[idx] += 1
    assert bool((seen == 1).all())


@pytest.mark.parametrize("n,c,s", [(3, 7, 50), (40, 9, 1), (2, 300, 3), (1, 1, 1)])
def test_classwise_blocks_cover_every_position_once(small_chunks, n, c, s):
    seen = torch.zeros(n, s, dtype=torch.int64)
    for bs, ps in _fused._blocks(n, c, s):
        seen[bs, ps] += 1
    assert bool((seen == 1).all())


def test_chunking_does_not_change_the_result(monkeypatch):
    logits = torch.randn(2, 1, 37, 29) * 3
    target = (torch.rand_like(logits) < 0.1).float()
    counts = torch.tensor([2000, 60])
    whole = _loss_and_grad(binary_seesaw_loss, logits, target, counts)
    for chunk in (64, 1000, 1 << 18):
        monkeypatch.setattr(_fused, "CHUNK_ELEMENTS", chunk)
        torch.testing.assert_close(_loss_and_grad(binary_seesaw_loss, logits, target, counts), whole)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32_gradient_in_input_dtype(small_chunks, dtype):
    logits = (torch.randn(2, 4, 10, 10) * 3).to(dtype)
    target = torch.randint(0, 4, (2, 10, 10))
    counts = torch.tensor([300, 200, 20, 2])
    loss, grad = _loss_and_grad(seesaw_loss, logits, target, counts)
    ref_loss, ref_grad = _loss_and_grad(seesaw_loss, logits.float(), target, counts)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad.float(), ref_grad, rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_makes_no_float32_copy_of_the_input(monkeypatch, dtype):
    monkeypatch.setattr(_fused, "CHUNK_ELEMENTS", 1024)
    logits = torch.randn(4, 1, 128, 128).to(dtype)
    target = (torch.rand(logits.shape) < 0.05).float()
    counts = torch.tensor([9000, 300])
    x = logits.detach().requires_grad_()
    with value_checks(False):  # the target check reads the (float32) target on its own, before the loss
        peak = peak_tensor_bytes(lambda: binary_seesaw_loss(x, target, counts).backward())
    gradient = logits.numel() * logits.element_size()
    float32_copy = logits.numel() * 4
    assert gradient <= peak < gradient + float32_copy // 2


def test_peak_memory_is_the_gradient_plus_bounded_scratch(monkeypatch):
    monkeypatch.setattr(_fused, "CHUNK_ELEMENTS", 4096)
    logits = torch.randn(4, 19, 64, 64)
    target = torch.randint(0, 19, (4, 64, 64))
    x = logits.detach().requires_grad_()
    peak = peak_tensor_bytes(lambda: seesaw_loss(x, target, torch.arange(19) * 10).backward())
    gradient = logits.numel() * 4
    assert gradient <= peak < gradient * 1.25


def test_second_backward_through_retained_graph_recomputes_the_gradient():
    logits = torch.randn(4, 6, 5, requires_grad=True)
    target = torch.randint(0, 6, (4, 5))
    loss = seesaw_loss(logits, target, torch.arange(6) * 7)
    first, = torch.autograd.grad(loss, logits, retain_graph=True)
    second, = torch.autograd.grad(loss * 3, logits)
    torch.testing.assert_close(second, first * 3)


def test_no_gradient_work_without_requires_grad(monkeypatch):
    asked = []
    evaluate = PaperKernel.evaluate

    def spy(self, *args, need_grad, **kwargs):
        asked.append(need_grad)
        return evaluate(self, *args, need_grad=need_grad, **kwargs)

    monkeypatch.setattr(PaperKernel, "evaluate", spy)
    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand_like(logits) < 0.2).float()
    counts = torch.tensor([100, 10])
    with torch.no_grad():
        a = binary_seesaw_loss(logits.requires_grad_(), target, counts)
    b = binary_seesaw_loss(logits.detach(), target, counts)
    assert not a.requires_grad and not b.requires_grad
    torch.testing.assert_close(a, b)
    assert asked and not any(asked)
    binary_seesaw_loss(logits, target, counts).backward()
    assert asked[-1]


class _SquareKernel:
    """An elementwise kernel with only the plain formula: ``w (x - t)^2``."""

    def loss(self, x, t, w):
        return w * (x - t) ** 2


class _LogSumExpKernel:
    """A classwise kernel with only the plain formula: ``logsumexp(z) - z_t`` (cross-entropy)."""

    def loss(self, z, t):
        return torch.logsumexp(z, 1) - z.gather(1, t.unsqueeze(1)).squeeze(1)


def test_a_kernel_without_evaluate_runs_blocked_with_autograd(small_chunks):
    x = torch.randn(3, 2, 50, dtype=torch.float64, requires_grad=True)
    t = torch.rand(3, 2, 50, dtype=torch.float64)
    t[0, 0, :7] = 255
    w = torch.rand(2, 1, dtype=torch.float64)
    for reduce_sum in (True, False):
        ours = _fused.elementwise_loss(_SquareKernel(), x, t, weight=None, ignore_index=255, reduce_sum=reduce_sum,
                                       operands=(w,))
        keep = (t != 255).double()
        expected = w * (x - t * keep) ** 2 * keep
        torch.testing.assert_close(ours, expected.sum() if reduce_sum else expected)
        torch.testing.assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(expected.sum(), x)[0])
    assert torch.autograd.gradcheck(lambda v: _fused.elementwise_loss(
        _SquareKernel(), v, t, weight=None, ignore_index=255, reduce_sum=True, operands=(w,)), (x,))
    z = torch.randn(4, 5, 60, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 5, (4, 60))
    ours = _fused.classwise_loss(_LogSumExpKernel(), z, idx, weight=None, ignore_index=None, reduce_sum=True)
    expected = torch.nn.functional.cross_entropy(z, idx, reduction="sum")
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(torch.autograd.grad(ours, z)[0], torch.autograd.grad(expected, z)[0])


def test_a_kernel_without_evaluate_keeps_memory_bounded(monkeypatch):
    """Autograd's temporaries live for one block: beyond the gradient, a few blocks whatever the input's size."""
    monkeypatch.setattr(_fused, "CHUNK_ELEMENTS", 4096)
    block_bytes = 4096 * 4
    for size in (128, 512):
        x = torch.randn(4, 1, size, size, requires_grad=True)
        t = torch.rand(4, 1, size, size)
        peak = peak_tensor_bytes(lambda: _fused.elementwise_loss(
            _SquareKernel(), x, t, weight=None, ignore_index=None, reduce_sum=True,
            operands=(torch.tensor(1.5),)).backward())
        gradient = x.numel() * 4
        assert gradient <= peak <= gradient + 12 * block_bytes, size


def test_seesaw_beyond_float32_factors_runs_the_plain_formula_per_block(small_chunks):
    """Large p and q leave the hand-derived kernel's range: the log-space formula runs under autograd per block."""
    logits = torch.randn(3, 5, 40) * 4
    target = torch.randint(0, 5, (3, 40))
    counts = torch.tensor([90000, 800, 60, 7, 1])
    assert type(seesaw_kernel(None, 3.0, 30.0, 1e-2)) is SeesawKernel
    _assert_paths_agree(seesaw_loss, logits, target, counts, p=3.0, q=30.0)


def test_extreme_logits_stay_finite():
    logits = torch.tensor([[-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]]).view(2, 3, 1).repeat(1, 1, 3)
    target = torch.tensor([[0, 1, 2], [2, 0, 1]])
    for p, q in itertools.product((0.0, 0.8), (0.0, 2.0, 30.0)):
        loss, grad = _loss_and_grad(seesaw_loss, logits, target, torch.tensor([10, 1000, 3]), p=p, q=q)
        assert bool(torch.isfinite(loss)) and bool(torch.isfinite(grad).all())
    x = torch.tensor([-1e4, -30.0, 0.0, 30.0, 1e4]).view(1, 5)
    for t in (torch.zeros_like(x), torch.ones_like(x)):
        loss, grad = _loss_and_grad(binary_seesaw_loss, x, t, torch.tensor([50, 5]))
        assert bool(torch.isfinite(loss)) and bool(torch.isfinite(grad).all())


def test_gpu_devices_get_whole_tensor_passes(monkeypatch):
    assert _fused.block_elements(torch.device("cpu")) == _fused.CHUNK_ELEMENTS
    whole = _fused.block_elements(torch.device("cuda", 0))
    assert list(_fused._blocks(8, 19, 1 << 16, whole)) == [(slice(0, 8), slice(0, 1 << 16))]
    assert list(_fused._elementwise_blocks((16, 1, 512, 512), whole)) == [()]
    logits, target = torch.randn(3, 5, 40, 30) * 3, torch.randint(0, 5, (3, 40, 30))
    counts = torch.tensor([900, 500, 90, 20, 2])
    chunked = _loss_and_grad(seesaw_loss, logits, target, counts)
    binary = (logits[:, :1], (torch.rand(3, 1, 40, 30) < 0.1).float(), torch.tensor([3000, 300]))
    chunked_binary = _loss_and_grad(binary_seesaw_loss, *binary)
    monkeypatch.setattr(_fused, "CHUNK_ELEMENTS", 512)
    monkeypatch.setattr(_fused, "block_elements", lambda device, classwise=False: whole)   # what a CUDA tensor gets
    torch.testing.assert_close(_loss_and_grad(seesaw_loss, logits, target, counts), chunked)
    torch.testing.assert_close(_loss_and_grad(binary_seesaw_loss, *binary), chunked_binary)
