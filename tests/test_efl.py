"""Equalized focal loss on one process: the paper's algorithm step by step against a float64 reference, its
identities, state, compiled gradients and errors."""

import copy

import pytest
import torch
import torch.nn.functional as F

from seesaw_losses import EQLv2Loss, EqualizedFocalLoss, build_loss
from seesaw_losses.functional import efl_gammas, equalized_focal_loss, sigmoid_focal_loss

from long_tail_references import EqualizedFocalReference

C = 5


def _batch(step, n=24, background=0.6, ignored=0.1):
    """Dense-head labels: most anchors background (label C), a few ignored, the positives long-tailed."""
    gen = torch.Generator().manual_seed(200 + step)
    logits = torch.randn(n, C, generator=gen, dtype=torch.float64) * 2 - 1
    labels = torch.multinomial(torch.tensor([0.6, 0.25, 0.1, 0.04, 0.01]), n, replacement=True, generator=gen)
    draw = torch.rand(n, generator=gen)
    labels[draw < background] = C
    labels[draw > 1 - ignored] = -100
    return logits, labels, torch.rand(n, generator=gen, dtype=torch.float64) + 0.5


@pytest.mark.parametrize("options", [{}, {"alpha": None, "gamma": 1.5, "scale": 4.0}])
def test_matches_the_paper_over_several_steps(options):
    ours, ref = EqualizedFocalLoss(C, **options), EqualizedFocalReference(C, **options)
    for step in range(5):
        logits, labels, weight = _batch(step)
        logits.requires_grad_()
        call = dict(weight=weight, avg_factor=7.0) if step % 2 else {}
        loss = ours(logits, labels, call.get("weight"), avg_factor=call.get("avg_factor"))
        expected = ref(logits, labels, call.get("weight"), call.get("avg_factor"))
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(*(torch.autograd.grad(v, logits)[0] for v in (loss, expected)))
        torch.testing.assert_close(ours.pos_grad, ref.pos)
        torch.testing.assert_close(ours.neg_grad, ref.neg)
    gammas = efl_gammas(ours.pos_grad, ours.neg_grad, gamma=ours.gamma, scale=ours.scale)
    assert gammas[0] < gammas[4] and bool((gammas >= ours.gamma).all())   # the rarest class focuses hardest


def test_the_first_step_is_the_focal_loss_and_the_gammas_follow_the_gradient_ratio():
    logits, labels, _ = _batch(0, ignored=0.0)
    onehot = F.one_hot(labels, C + 1)[:, :C].double()
    focal = sigmoid_focal_loss(logits, onehot, alpha=0.25, gamma=2.0, reduction="sum") / len(labels)
    torch.testing.assert_close(equalized_focal_loss(logits, labels), focal)
    stats = {"pos_grad": torch.rand(C, dtype=torch.float64), "neg_grad": torch.rand(C, dtype=torch.float64) * 9}
    torch.testing.assert_close(equalized_focal_loss(logits, labels, scale=0.0, **stats), focal)
    gammas = efl_gammas(torch.tensor([0.0, 1.0, 5.0, 9.0]), torch.tensor([10.0, 4.0, 5.0, 3.0]), gamma=2, scale=8)
    torch.testing.assert_close(gammas, torch.tensor([10.0, 8.0, 2.0, 2.0]))   # g = 0, 1/4, 1, clipped to 1
    zeros = torch.zeros(3)
    assert torch.equal(efl_gammas(zeros, zeros), torch.full((3,), 2.0))


def test_gradcheck_dense_inputs_and_the_module_equals_the_function():
    logits, labels, weight = _batch(1, n=6)
    stats = {"pos_grad": torch.rand(C, dtype=torch.float64), "neg_grad": torch.rand(C, dtype=torch.float64) * 5}
    assert torch.autograd.gradcheck(
        lambda x: equalized_focal_loss(x, labels, weight=weight, reduction="none", **stats),
        (logits.requires_grad_(),))
    dense = torch.randn(2, C, 3, 3, dtype=torch.float64)
    target = torch.randint(0, C + 1, (2, 3, 3))
    rows = dense.movedim(1, -1).reshape(-1, C)
    torch.testing.assert_close(equalized_focal_loss(dense, target, **stats),
                               equalized_focal_loss(rows, target.reshape(-1), **stats))
    assert equalized_focal_loss(dense, target, **stats, reduction="none").shape == dense.shape
    module = EqualizedFocalLoss(C, gamma=1.5, scale=6.0)
    for step in range(3):
        logits, labels, weight = _batch(step)
        before = {"pos_grad": module.pos_grad.clone(), "neg_grad": module.neg_grad.clone()}
        expected = equalized_focal_loss(logits, labels, weight=weight, gamma=1.5, scale=6.0, **before)
        torch.testing.assert_close(module(logits, labels, weight), expected)
    assert isinstance(build_loss("efl:num_classes=5,scale=4"), EqualizedFocalLoss)


def test_batches_without_ignored_labels_and_empty_batches_update_the_statistics_as_the_reference():
    ours, ref = EqualizedFocalLoss(C, ignore_index=None), EqualizedFocalReference(C, ignore_index=None)
    logits, labels, _ = _batch(4, ignored=0.0)
    torch.testing.assert_close(ours(logits, labels), ref(logits, labels))
    torch.testing.assert_close(ours.neg_grad, ref.neg)
    before = ours.neg_grad.clone()
    empty = ours(torch.zeros(0, C, dtype=torch.float64, requires_grad=True), torch.zeros(0, dtype=torch.long))
    assert empty.item() == 0 and torch.equal(ours.neg_grad, before)


def test_state_dict_resumes_exactly_and_eval_mode_counts_nothing():
    criterion = EqualizedFocalLoss(C)
    for step in range(3):
        criterion(*_batch(step)[:2])
    resumed = EqualizedFocalLoss(C)
    resumed.load_state_dict(criterion.state_dict())
    logits, labels, _ = _batch(3)
    torch.testing.assert_close(resumed(logits, labels), criterion(logits, labels))
    torch.testing.assert_close(resumed.neg_grad, criterion.neg_grad)
    before = copy.deepcopy(criterion.state_dict())
    criterion.eval()(logits, labels)
    assert all(torch.equal(v, criterion.state_dict()[k]) for k, v in before.items())
    criterion.reset_statistics()
    assert criterion.pos_grad.sum() == 0 and criterion.neg_grad.sum() == 0


@pytest.mark.parametrize("loss", [EqualizedFocalLoss, EQLv2Loss])
def test_compiled_gradients_and_state_match_eager_over_three_steps(loss):
    """The forward updates the statistics that its backward reads: with AOTAutograd's min-cut partitioner, which
    recomputes the weights from the buffers in the backward, an in-place update would be seen (or rejected)."""
    torch._dynamo.reset()
    eager, compiled_module = loss(C), loss(C)
    compiled = torch.compile(compiled_module, fullgraph=True, backend="aot_eager_decomp_partition")
    for step in range(3):
        logits, labels, weight = _batch(step)
        results = []
        for run in (eager, compiled):
            x = logits.float().requires_grad_()
            value = run(x, labels.clamp(max=C - 1)) if loss is EQLv2Loss else run(x, labels, weight.float(),
                                                                                   avg_factor=5.0)
            value.backward()
            results.append((value, x.grad))
        (value, grad), (compiled_value, compiled_grad) = results
        torch.testing.assert_close(compiled_value, value, msg=f"step {step}")
        torch.testing.assert_close(compiled_grad, grad, msg=f"step {step}")
        torch.testing.assert_close(compiled_module.pos_grad, eager.pos_grad, msg=f"step {step}")
        torch.testing.assert_close(compiled_module.neg_grad, eager.neg_grad, msg=f"step {step}")
    assert bool((eager.neg_grad > 0).all())


def test_bad_input_raises_the_library_errors():
    logits, labels, _ = _batch(0)
    with pytest.raises(ValueError, match=r"EqualizedFocalLoss.forward: logits must be of 5 channels \(dim 1\), got "
                                         r"a tensor of shape \(24, 6\).*none for the background"):
        EqualizedFocalLoss(C)(torch.randn(24, C + 1), labels)
    with pytest.raises(ValueError, match=r"EqualizedFocalLoss: gamma must be in \(0, inf\], got 0"):
        EqualizedFocalLoss(C, gamma=0)
    with pytest.raises(ValueError, match=r"EqualizedFocalLoss: alpha must be in \[0, 1\], got 2"):
        EqualizedFocalLoss(C, alpha=2)
    with pytest.raises(ValueError, match=r"equalized_focal_loss: target must be class indices in \[0, 5\]"):
        equalized_focal_loss(logits, torch.full_like(labels, C + 1))
    with pytest.raises(ValueError, match=r"equalized_focal_loss: neg_grad must be of pos_grad's shape \(5,\)"):
        equalized_focal_loss(logits, labels, pos_grad=torch.zeros(C), neg_grad=torch.zeros(4))
    with pytest.raises(ValueError, match="EqualizedFocalLoss.forward: avg_factor must be None when reduction='sum'"):
        EqualizedFocalLoss(C, reduction="sum")(logits, labels, avg_factor=3.0)
    criterion = EqualizedFocalLoss(C)
    with pytest.raises(ValueError, match="EqualizedFocalLoss.forward: weight must be None or broadcastable"):
        criterion(logits, labels, torch.ones(3))
    assert criterion.pos_grad.sum() == 0 and criterion.neg_grad.sum() == 0
