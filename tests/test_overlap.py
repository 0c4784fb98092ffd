import pytest
import torch
import torch.nn.functional as F

import seesaw_losses as sl
from seesaw_losses.functional import (
    dice_loss, focal_tversky_loss, generalized_dice_loss, jaccard_loss, tversky_loss,
)


def tversky_reference(p, t, alpha, beta, gamma=1.0, smooth_nr=1e-5, smooth_dr=1e-5, per_image=False,
                      squared=False, valid=None):
    """Plain float64 Tversky on probabilities (N, C, S) and targets (N, C, S): per class, averaged."""
    if valid is not None:
        p, t = p * valid, t * valid
    dims = (2,) if per_image else (0, 2)
    inter = (p * t).sum(dims)
    pred = (p * p if squared else p).sum(dims)
    true = (t * t if squared else t).sum(dims)
    ti = (inter + smooth_nr) / (inter + alpha * (pred - inter) + beta * (true - inter) + smooth_dr)
    return (1 - ti) ** gamma


def sigmoid_inputs(shape=(3, 2, 5, 6)):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(*shape) < 0.3).double()
    return x, t


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("squared", [False, True])
def test_sigmoid_tversky_float64_reference(per_image, squared):
    x, t = sigmoid_inputs()
    ours = tversky_loss(x, t, alpha=0.3, beta=0.7, per_image=per_image, squared_denominator=squared,
                        reduction="none")
    ref = tversky_reference(torch.sigmoid(x).flatten(2), t.flatten(2), 0.3, 0.7, per_image=per_image,
                            squared=squared)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(ref.sum(), x)[0])


@pytest.mark.parametrize("spatial", [(7,), (5, 6), (3, 4, 5)])
def test_softmax_dice_reference_1d_2d_3d_with_ignore(spatial):
    z = torch.randn(2, 4, *spatial, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (2, *spatial))
    t.view(-1)[:3] = 255
    ours = dice_loss(z, t, activation="softmax", ignore_index=255, reduction="none")
    valid = (t != 255).reshape(2, 1, -1).double()
    onehot = F.one_hot(t.clamp(max=3), 4).movedim(-1, 1).reshape(2, 4, -1).double()
    ref = tversky_reference(torch.softmax(z, 1).reshape(2, 4, -1), onehot, 0.5, 0.5, valid=valid)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours.sum(), z)[0], torch.autograd.grad(ref.sum(), z)[0])


def test_identities_dice_jaccard_are_tversky():
    x, t = sigmoid_inputs()
    kw = dict(smooth_nr=0.3, smooth_dr=0.7, per_image=True)
    torch.testing.assert_close(dice_loss(x, t, **kw), tversky_loss(x, t, alpha=0.5, beta=0.5, **kw))
    torch.testing.assert_close(jaccard_loss(x, t, **kw), tversky_loss(x, t, alpha=1.0, beta=1.0, **kw))
    torch.testing.assert_close(focal_tversky_loss(x, t, gamma=1.0, **kw), tversky_loss(x, t, **kw))
    p = torch.sigmoid(x).detach()
    inter, total = (p * t).sum((0, 2, 3)), (p + t).sum((0, 2, 3))
    torch.testing.assert_close(dice_loss(x, t, smooth_nr=0, smooth_dr=0, reduction="none"),
                               1 - 2 * inter / total)


def test_log_loss_focal_and_weights():
    x, t = sigmoid_inputs()
    dice = dice_loss(x, t, reduction="none")
    torch.testing.assert_close(dice_loss(x, t, log_loss=True, reduction="none"), -torch.log(1 - dice))
    tv = tversky_loss(x, t, reduction="none")
    torch.testing.assert_close(focal_tversky_loss(x, t, gamma=0.75, reduction="none"), tv ** 0.75)
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(dice_loss(x, t, class_weight=w), (dice * w).sum() / w.sum())
    torch.testing.assert_close(dice_loss(x, t, reduction="sum"), dice.sum())


def test_include_background_false():
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    t = torch.randint(0, 3, (2, 4, 4))
    full = dice_loss(z, t, activation="softmax", reduction="none")
    torch.testing.assert_close(dice_loss(z, t, activation="softmax", include_background=False, reduction="none"),
                               full[1:])
    w = torch.tensor([100.0, 1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(dice_loss(z, t, activation="softmax", include_background=False, class_weight=w),
                               (full[1:] * w[1:]).sum() / 3)


def test_empty_mask_semantics():
    t = torch.zeros(2, 1, 8, 8)
    confident_empty = torch.full((2, 1, 8, 8), -30.0)
    assert dice_loss(confident_empty, t).item() < 1e-3  # nothing true, nothing predicted: perfect
    x = torch.full((2, 1, 8, 8), 3.0, requires_grad=True)
    loss = dice_loss(x, t)  # nothing true, mass predicted: close to 1
    assert loss.item() > 0.99
    loss.backward()
    assert (x.grad >= 0).all()  # pushes the predictions down (weakly)
    no_smooth = dice_loss(x, t, smooth_nr=0.0, smooth_dr=0.0)
    assert no_smooth.item() == 1.0
    t2 = t.clone()
    t2[0, 0, :2] = 1  # foreground only in image 0
    per_image = dice_loss(confident_empty, t2, per_image=True, reduction="none")
    assert per_image[1, 0] < 1e-3 and per_image[0, 0] > 0.99
    all_zero = dice_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), smooth_nr=0.0, smooth_dr=0.0)
    assert all_zero.item() == 1.0


def test_generalized_dice_reference():
    x, t = sigmoid_inputs((2, 3, 4, 4))
    t[:, 2] = 0  # an empty class gets the largest weight of the others
    ours = generalized_dice_loss(x, t, reduction="none")
    p, tt = torch.sigmoid(x).flatten(2), t.flatten(2)
    inter, pred, true = (p * tt).sum((0, 2)), p.sum((0, 2)), tt.sum((0, 2))
    w = 1 / true ** 2
    w[2] = w[:2].max()
    ref = 1 - (2 * (w * inter).sum() + 1e-5) / ((w * (pred + true)).sum() + 1e-5)
    torch.testing.assert_close(ours, ref)


def test_gradcheck_custom_backward():
    x, t = sigmoid_inputs((2, 2, 3, 3))
    t[0, 0, 0, 0] = 255
    for squared in (False, True):
        assert torch.autograd.gradcheck(lambda v: tversky_loss(v, t, ignore_index=255, per_image=True,
                                                               squared_denominator=squared, reduction="none"), (x,))
        assert torch.autograd.gradcheck(lambda v: dice_loss(v, t.clamp(max=1), squared_denominator=squared), (x,))
    z = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 3, (2, 3, 4))
    idx[1, 0, 0] = -1
    assert torch.autograd.gradcheck(lambda v: focal_tversky_loss(
        v, idx, activation="softmax", ignore_index=-1, class_weight=[1.0, 2.0, 0.5]), (z,))
    assert torch.autograd.gradcheck(lambda v: generalized_dice_loss(v, idx, activation="softmax", ignore_index=-1,
                                                                    per_image=True), (z,))
    for squared in (False, True):
        assert torch.autograd.gradcheck(lambda v: dice_loss(v, idx.clamp(min=0), activation="softmax",
                                                            squared_denominator=squared, per_image=True), (z,))
        assert torch.autograd.gradcheck(lambda v: tversky_loss(v, idx, activation="softmax", ignore_index=-1,
                                                               squared_denominator=squared), (z,))


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_second_backward_through_retained_graph_and_no_grad(activation):
    z = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (2, 5, 4)) if activation == "softmax" else (torch.rand(2, 3, 5, 4) < 0.4).double()
    loss = dice_loss(z, t, activation=activation)
    first, = torch.autograd.grad(loss, z, retain_graph=True)
    second, = torch.autograd.grad(loss, z)
    torch.testing.assert_close(first, second)
    with torch.no_grad():
        torch.testing.assert_close(dice_loss(z, t, activation=activation), loss.detach())


def test_softmax_per_image_value_and_gradient_match_reference():
    z = torch.randn(3, 4, 30, 40, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (3, 30, 40))
    ours = dice_loss(z, t, activation="softmax", per_image=True)
    onehot = F.one_hot(t, 4).movedim(-1, 1).reshape(3, 4, -1).double()
    ref = tversky_reference(torch.softmax(z, 1).reshape(3, 4, -1), onehot, 0.5, 0.5, per_image=True).mean()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, z)[0], torch.autograd.grad(ref, z)[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_and_extreme_logits(dtype):
    x = (torch.randn(2, 1, 8, 8) * 1e4).to(dtype).requires_grad_()
    t = (torch.rand(2, 1, 8, 8) < 0.3).to(dtype)
    for fn in (dice_loss, tversky_loss, jaccard_loss, focal_tversky_loss, generalized_dice_loss):
        loss = fn(x, t)
        grad, = torch.autograd.grad(loss, x)
        assert torch.isfinite(loss) and torch.isfinite(grad.float()).all() and grad.dtype == dtype
    z = (torch.randn(2, 3, 8) * 1e4).requires_grad_()
    dice_loss(z, torch.randint(0, 3, (2, 8)), activation="softmax", log_loss=True).backward()
    assert torch.isfinite(z.grad).all()


def test_modules_equal_functions():
    x, t = sigmoid_inputs()
    w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    cases = [
        (sl.DiceLoss(per_image=True, class_weight=w), dice_loss(x, t, per_image=True, class_weight=w)),
        (sl.TverskyLoss(alpha=0.2, beta=0.8), tversky_loss(x, t, alpha=0.2, beta=0.8)),
        (sl.JaccardLoss(log_loss=True), jaccard_loss(x, t, log_loss=True)),
        (sl.FocalTverskyLoss(gamma=1.5), focal_tversky_loss(x, t, gamma=1.5)),
        (sl.GeneralizedDiceLoss(weight_type="simple"), generalized_dice_loss(x, t, weight_type="simple")),
    ]
    for module, expected in cases:
        torch.testing.assert_close(module(x, t), expected)
    assert "class_weight" in cases[0][0].state_dict()


def test_bad_input():
    x, t = sigmoid_inputs()
    with pytest.raises(ValueError, match="did you mean activation='softmax'"):
        dice_loss(x, torch.randint(0, 2, (3, 5, 6)))
    with pytest.raises(TypeError, match="use activation='sigmoid'"):
        dice_loss(x, t[:, 0], activation="softmax")
    with pytest.raises(TypeError, match=r"one-hot\?\); pass class indices with target.argmax\(1\)"):
        dice_loss(x, t, activation="softmax")
    with pytest.raises(ValueError, match="activation must be one of .*did you mean 'softmax'"):
        dice_loss(x, t, activation="softmx")
    with pytest.raises(ValueError, match="alpha must be in"):
        tversky_loss(x, t, alpha=-0.1)
    with pytest.raises(ValueError, match="smooth_dr must be in"):
        sl.DiceLoss(smooth_dr=-1.0)
    with pytest.raises(ValueError, match="include_background must be True for one-channel logits"):
        dice_loss(x[:, :1], t[:, :1], include_background=False)
    with pytest.raises(ValueError, match="weight must be a 1-D tensor of 2 per-class weights"):
        dice_loss(x, t, class_weight=torch.ones(3))
    with pytest.raises(ValueError, match="at least 2 channels"):
        dice_loss(x[:, :1], torch.zeros(3, 5, 6, dtype=torch.long), activation="softmax")
    with pytest.raises(ValueError, match="weight_type must be one of"):
        generalized_dice_loss(x, t, weight_type="cube")
