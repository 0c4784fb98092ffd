"""EQLv2 on one process: the authors' algorithm step by step, its identities, state and errors."""

import pytest
import torch
import torch.nn.functional as F

from seesaw_losses import EQLv2Loss
from seesaw_losses.functional import eqlv2_loss, eqlv2_weights

from long_tail_references import EQLv2Reference

C = 5


def _batch(step, n=12, background=0.0):
    gen = torch.Generator().manual_seed(100 + step)
    logits = torch.randn(n, C + 1, generator=gen, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03]), n, replacement=True, generator=gen)
    labels[torch.rand(n, generator=gen) < background] = C
    return logits, labels


@pytest.mark.parametrize("background_channel", [False, True])
def test_matches_the_authors_algorithm_over_several_steps(background_channel):
    ours, ref = EQLv2Loss(C, background_channel=background_channel), EQLv2Reference(
        C, background_channel=background_channel)
    for step in range(5):
        logits, labels = _batch(step, background=0.3 if background_channel else 0.0)
        logits = logits if background_channel else logits[:, :C]
        logits.requires_grad_()
        loss, expected = ours(logits, labels), ref(logits, labels)
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(*(torch.autograd.grad(v, logits)[0] for v in (loss, expected)))
        torch.testing.assert_close(ours.pos_grad, ref.pos)
        torch.testing.assert_close(ours.neg_grad, ref.neg)
    assert ours.pos_grad.dtype == torch.float64 and bool((ours.pos_grad > 0).all())


def test_first_step_is_sigmoid_cross_entropy_per_sample_and_weights_balance():
    logits, labels = _batch(0)
    logits = logits[:, :C]
    onehot = F.one_hot(labels, C + 1)[:, :C].double()
    zeros = torch.zeros(C, dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(logits, onehot, reduction="sum") / len(labels)
    torch.testing.assert_close(eqlv2_loss(logits, labels, pos_grad=zeros, neg_grad=zeros), expected)
    torch.testing.assert_close(eqlv2_loss(logits, labels), expected)
    q, r = eqlv2_weights(torch.tensor([1.0, 8.0, 20.0]), torch.tensor([100.0, 10.0, 20.0]))
    assert r[0] < 0.01 and q[0] > 3.9          # a rare class: negatives switched off, positives up
    assert r[2] > 0.9 and q[2] < 1.4           # balanced gradients: almost plain BCE
    assert torch.equal(eqlv2_weights(zeros, zeros)[0], torch.ones(C, dtype=torch.float64))


def test_gradcheck_and_dense_inputs():
    logits, labels = _batch(1, n=4)
    logits = logits[:, :C].requires_grad_()
    pos, neg = torch.rand(C, dtype=torch.float64), torch.rand(C, dtype=torch.float64) * 5
    assert torch.autograd.gradcheck(lambda x: eqlv2_loss(x, labels, pos_grad=pos, neg_grad=neg, reduction="none"),
                                    (logits,))
    dense = torch.randn(2, C, 3, 3, dtype=torch.float64)
    target = torch.randint(0, C, (2, 3, 3))
    rows = dense.movedim(1, -1).reshape(-1, C)
    stats = {"pos_grad": pos, "neg_grad": neg}
    torch.testing.assert_close(eqlv2_loss(dense, target, **stats), eqlv2_loss(rows, target.reshape(-1), **stats))
    assert eqlv2_loss(dense, target, **stats, reduction="none").shape == dense.shape


def test_ignored_samples_add_nothing_and_eval_mode_counts_nothing():
    logits, labels = _batch(2)
    logits = logits[:, :C]
    keep = torch.arange(len(labels)) % 3 != 0
    masked = labels.masked_fill(~keep, -100)
    with_ignored, kept_only = EQLv2Loss(C), EQLv2Loss(C)
    for _ in range(2):
        torch.testing.assert_close(with_ignored(logits, masked), kept_only(logits[keep], labels[keep]))
    torch.testing.assert_close(with_ignored.pos_grad, kept_only.pos_grad)
    before = with_ignored.state_dict()
    with_ignored.eval()(logits, labels)
    assert all(torch.equal(v, with_ignored.state_dict()[k]) for k, v in before.items())


def test_state_dict_resumes_exactly_and_works_without_torch_distributed():
    criterion = EQLv2Loss(C, sync_counts=None)
    for step in range(3):
        criterion(*(t[:, :C] if t.dim() == 2 else t for t in _batch(step)))
    resumed = EQLv2Loss(C)
    resumed.load_state_dict(criterion.state_dict())
    logits, labels = _batch(3)
    torch.testing.assert_close(resumed(logits[:, :C], labels), criterion(logits[:, :C], labels))
    torch.testing.assert_close(resumed.neg_grad, criterion.neg_grad)
    criterion.reset_statistics()
    assert criterion.pos_grad.sum() == 0
    with pytest.raises(RuntimeError, match="EQLv2Loss.forward: sync_counts must be False or None when "
                                           "torch.distributed is not initialised"):
        EQLv2Loss(C, sync_counts=True)(logits[:, :C], labels)


def test_bad_input_raises_the_library_errors():
    logits, labels = _batch(0)
    with pytest.raises(ValueError, match=r"EQLv2Loss.forward: logits must be of 5 channels \(dim 1\), got a tensor "
                                         r"of shape \(12, 6\).*; pass background_channel=True"):
        EQLv2Loss(C)(logits, labels)
    with pytest.raises(ValueError, match=r"EQLv2Loss: gamma must be in \[0, inf\], got -1"):
        EQLv2Loss(C, gamma=-1)
    with pytest.raises(ValueError, match=r"eqlv2_loss: target must be class indices in \[0, 4\]"):
        eqlv2_loss(logits[:, :C], torch.full_like(labels, C))
    with pytest.raises(ValueError, match=r"EQLv2Loss.forward: target must be class indices in \[0, 5\]"):
        EQLv2Loss(C, background_channel=True)(logits, torch.full_like(labels, C + 1))
    with pytest.raises(ValueError, match=r"eqlv2_loss: neg_grad must be of pos_grad's shape \(5,\)"):
        eqlv2_loss(logits[:, :C], labels, pos_grad=torch.zeros(C), neg_grad=torch.zeros(4))
    with pytest.raises(ValueError, match=r"eqlv2_loss: neg_grad must be given together with the other statistic"):
        eqlv2_loss(logits[:, :C], labels, pos_grad=torch.zeros(C))
    with pytest.raises(TypeError, match="EQLv2Loss: sync_counts must be True, False or None"):
        EQLv2Loss(C, sync_counts="yes")
