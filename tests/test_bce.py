import pytest
import torch
import torch.nn.functional as F

import seesaw_losses as sl
from seesaw_losses.functional import weighted_bce_loss


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torch_with_pos_weight_and_weight(reduction):
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(3, 4, 5, 5) < 0.3).double()
    t[0, 0, 0, 0] = 0.4
    pw = torch.tensor([1.0, 3.0, 0.5, 9.0], dtype=torch.float64).view(4, 1, 1)
    w = torch.rand(1, 4, 1, 5, dtype=torch.float64)
    ours = weighted_bce_loss(x, t, pos_weight=pw, weight=w, reduction=reduction)
    ref = F.binary_cross_entropy_with_logits(x, t, pos_weight=pw.expand(4, 5, 5), weight=w, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(ref.sum(), x)[0])


def test_scalar_pos_weight_and_no_pos_weight():
    x, t = torch.randn(8, 1, 4, 4), (torch.rand(8, 1, 4, 4) < 0.2).float()
    torch.testing.assert_close(weighted_bce_loss(x, t, pos_weight=4.0),
                               F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor(4.0)))
    torch.testing.assert_close(weighted_bce_loss(x, t), F.binary_cross_entropy_with_logits(x, t))


def test_gradcheck_and_ignore_index():
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 3, 4) < 0.5).double()
    t[:, :, 0] = 255
    pw = torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64).view(3, 1)
    assert torch.autograd.gradcheck(
        lambda v: weighted_bce_loss(v, t, pos_weight=pw, ignore_index=255, reduction="none"), (x,))
    loss = weighted_bce_loss(x, t, ignore_index=255)
    loss.backward()
    assert (x.grad[:, :, 0] == 0).all()
    keep = t != 255
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(x[keep], t[keep]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_extreme_logits_finite(dtype):
    x = (torch.randn(2, 1, 8, 8) * 1e4).to(dtype).requires_grad_()
    t = (torch.rand(2, 1, 8, 8) < 0.5).to(dtype)
    loss = weighted_bce_loss(x, t, pos_weight=3.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_module_buffer_and_bad_input():
    module = sl.WeightedBCELoss(pos_weight=torch.tensor([2.0, 1.0]).view(2, 1, 1))
    assert "pos_weight" in module.state_dict()
    x, t = torch.randn(2, 2, 3, 3), (torch.rand(2, 2, 3, 3) < 0.5).float()
    torch.testing.assert_close(module(x, t), weighted_bce_loss(x, t, pos_weight=module.pos_weight))
    with pytest.raises(ValueError, match=r"pos_weight.view\(-1, 1, 1\)"):
        weighted_bce_loss(x, t, pos_weight=torch.tensor([2.0, 1.0]))
    with pytest.raises(ValueError, match="pos_weight must be non-negative"):
        weighted_bce_loss(x, t, pos_weight=-1.0)
    with pytest.raises(ValueError, match="target must be of the logits' shape"):
        weighted_bce_loss(x, t[:, :1])
    with pytest.raises(ValueError, match="reduction must be one of .*did you mean 'mean'"):
        weighted_bce_loss(x, t, reduction="maen")
