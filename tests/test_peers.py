"""Agreement with MONAI, kornia and cbloss on the option sets that map onto ours, and the deliberate differences."""

import pytest
import torch
from cbloss import loss as cb
from kornia import losses as kl
from monai import losses as ml
from torch import nn

from seesaw_losses import build_loss
from seesaw_losses.functional import (
    class_balanced_weights, dice_loss, generalized_dice_loss, jaccard_loss, sigmoid_focal_loss, softmax_focal_loss,
    tversky_loss,
)


def binary_case(shape=(3, 2, 6, 5)):
    return torch.randn(*shape, dtype=torch.float64), (torch.rand(*shape) < 0.3).double()


def multiclass_case(n=3, c=4, h=6, w=5, all_present=True):
    z = torch.randn(n, c, h, w, dtype=torch.float64)
    t = torch.randint(0, c, (n, h, w))
    if all_present:
        t[:, 0, :c] = torch.arange(c)
    return z, t


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("include_background", [True, False])
def test_monai_dice_sigmoid(batch, squared, include_background):
    x, t = binary_case()
    monai = ml.DiceLoss(sigmoid=True, batch=batch, squared_pred=squared, include_background=include_background,
                        smooth_nr=1e-3, smooth_dr=2e-3)(x, t)
    ours = dice_loss(x, t, per_image=not batch, squared_denominator=squared, include_background=include_background,
                     smooth_nr=5e-4, smooth_dr=1e-3)
    torch.testing.assert_close(ours, monai)


@pytest.mark.parametrize("batch", [True, False])
def test_monai_dice_softmax_jaccard_and_log(batch):
    z, t = multiclass_case()
    monai = ml.DiceLoss(softmax=True, to_onehot_y=True, batch=batch, jaccard=True)(z, t.unsqueeze(1))
    torch.testing.assert_close(jaccard_loss(z, t, activation="softmax", per_image=not batch,
                                            smooth_nr=5e-6, smooth_dr=5e-6), monai)
    monai_plain = ml.DiceLoss(softmax=True, to_onehot_y=True, batch=batch, smooth_nr=0.0, smooth_dr=1e-6)
    torch.testing.assert_close(dice_loss(z, t, activation="softmax", per_image=not batch, smooth_nr=0.0,
                                         smooth_dr=5e-7), monai_plain(z, t.unsqueeze(1)))


@pytest.mark.parametrize("batch", [True, False])
def test_monai_tversky(batch):
    x, t = binary_case()
    monai = ml.TverskyLoss(sigmoid=True, batch=batch, alpha=0.3, beta=0.7, smooth_nr=1e-3, smooth_dr=1e-2)(x, t)
    torch.testing.assert_close(tversky_loss(x, t, alpha=0.3, beta=0.7, per_image=not batch, smooth_nr=1e-3,
                                            smooth_dr=1e-2), monai)
    z, idx = multiclass_case()
    monai = ml.TverskyLoss(softmax=True, to_onehot_y=True, batch=batch, include_background=False)(z, idx[:, None])
    torch.testing.assert_close(tversky_loss(z, idx, alpha=0.5, beta=0.5, activation="softmax", per_image=not batch,
                                            include_background=False), monai)


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("weight_type", ["square", "simple", "uniform"])
def test_monai_generalized_dice(batch, weight_type):
    x, t = binary_case((3, 3, 5, 5))
    t[:, 1] = 0  # an empty class: MONAI gives it the largest weight, as we do
    monai = ml.GeneralizedDiceLoss(sigmoid=True, batch=batch, w_type=weight_type)(x, t)
    ours = generalized_dice_loss(x, t, per_image=not batch, weight_type=weight_type)
    torch.testing.assert_close(ours, monai, rtol=1e-6, atol=1e-7)  # MONAI computes its weights in float32


def test_monai_sigmoid_focal():
    x, t = binary_case()
    for alpha, gamma in [(0.25, 2.0), (None, 1.5), (0.7, 0.0)]:
        monai = ml.FocalLoss(gamma=gamma, alpha=alpha, reduction="mean")(x, t)  # returns float32
        torch.testing.assert_close(sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma).float(), monai)


def test_kornia_binary_focal_and_softmax_focal():
    x, t = binary_case()
    kornia = kl.binary_focal_loss_with_logits(x, t, alpha=0.25, gamma=2.0, reduction="mean", ignore_index=None)
    torch.testing.assert_close(sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0), kornia)
    z, idx = multiclass_case()
    kornia = kl.focal_loss(z, idx, alpha=0.5, gamma=2.0, reduction="sum")
    ours = softmax_focal_loss(z, idx, class_weight=torch.full((4,), 0.5, dtype=torch.float64), gamma=2.0,
                              reduction="sum")
    torch.testing.assert_close(ours, kornia)


def test_difference_kornia_softmax_focal_mean_over_every_element():
    z, idx = multiclass_case()
    idx[0, 1, 1] = -100
    kornia = kl.focal_loss(z, idx, alpha=None, gamma=2.0, reduction="mean")
    ours = softmax_focal_loss(z, idx, gamma=2.0)
    # ours: sum / non-ignored positions; kornia: sum / every element of (N, C, H, W), ignored ones included
    valid, every = (idx != -100).sum(), z.numel()
    torch.testing.assert_close(ours * valid / every, kornia)


def test_kornia_dice_and_tversky_per_image_softmax():
    z, t = multiclass_case()
    torch.testing.assert_close(dice_loss(z, t, activation="softmax", per_image=True, smooth_nr=0.0, smooth_dr=5e-9),
                               kl.dice_loss(z, t, average="macro", eps=1e-8))
    torch.testing.assert_close(tversky_loss(z, t, alpha=0.3, beta=0.7, activation="softmax", per_image=True,
                                            smooth_nr=0.0, smooth_dr=1e-8),
                               kl.tversky_loss(z, t, alpha=0.3, beta=0.7, eps=1e-8))


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999])
def test_cbloss_class_balanced_weights(beta):
    counts = [12000, 3000, 400, 25, 1]
    peer = cb.ClassBalancedLoss(counts, beta, len(counts), nn.CrossEntropyLoss(reduction="none"))
    torch.testing.assert_close(class_balanced_weights(torch.tensor(counts), beta), peer.weights.cpu())


def test_cbloss_focal_alpha_is_one_global_factor():
    x, t = (v.float() for v in binary_case((40,)))  # cbloss casts the target to float32
    for alpha, gamma in [(1.0, 2.0), (0.25, 1.5)]:
        peer = cb.FocalLoss(num_classes=2, alpha=alpha, gamma=gamma)(x, t)
        torch.testing.assert_close(alpha * sigmoid_focal_loss(x, t, alpha=None, gamma=gamma), peer)
    z, idx = torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 5, (40,))
    peer = cb.FocalLoss(num_classes=5, alpha=0.5, gamma=2.0)(z, idx)
    torch.testing.assert_close(0.5 * softmax_focal_loss(z, idx, gamma=2.0), peer)


# -- deliberate differences, pinned ------------------------------------------------------------------------------


def test_difference_monai_smoothing_is_doubled_for_dice():
    x, t = binary_case()
    t[:, 1] = 0  # an empty class makes the smoothing visible
    monai = ml.DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)(x, t)
    assert not torch.allclose(dice_loss(x, t, per_image=True, smooth_nr=1.0, smooth_dr=1.0), monai)
    torch.testing.assert_close(dice_loss(x, t, per_image=True, smooth_nr=0.5, smooth_dr=0.5), monai)


def test_difference_monai_weighted_mean_divides_by_class_count():
    x, t = binary_case((3, 3, 5, 5))
    w = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    monai = ml.DiceLoss(sigmoid=True, batch=True, include_background=False, weight=w[1:])(x, t)
    ours = dice_loss(x, t, include_background=False, smooth_nr=5e-6, smooth_dr=5e-6, class_weight=w)
    torch.testing.assert_close(ours * w[1:].sum() / 2, monai)  # ours: sum(w f) / sum(w); MONAI: mean(w f)


def test_difference_monai_softmax_focal_mean_over_classes():
    z, t = multiclass_case()
    monai = ml.FocalLoss(gamma=2.0, use_softmax=True, to_onehot_y=True, reduction="mean")(z, t.unsqueeze(1))
    torch.testing.assert_close(softmax_focal_loss(z, t, gamma=2.0).float(), monai * 4)  # MONAI: mean over N*C*H*W


def test_difference_kornia_macro_dice_skips_absent_classes():
    z, t = multiclass_case(all_present=False)
    t[0] = t[0].clamp(max=1)  # image 0 lacks classes 2 and 3
    ours = dice_loss(z, t, activation="softmax", per_image=True, smooth_nr=0.0, smooth_dr=5e-9, reduction="none")
    present = torch.stack([(t == c).flatten(1).any(1) for c in range(4)], 1).double()
    expected = ((ours * present).sum(1) / present.sum(1)).mean()
    torch.testing.assert_close(expected, kl.dice_loss(z, t, average="macro", eps=1e-8))
    assert ours[0, 2] > 0.99  # an absent class with predicted mass counts as a miss here



def test_difference_cbloss_class_balanced_mean_divides_by_sample_count():
    counts = [500, 50, 5]
    z, idx = torch.randn(64, 3), torch.randint(0, 3, (64,))
    peer = cb.ClassBalancedLoss(counts, 0.99, 3, nn.CrossEntropyLoss(reduction="none"))(z, idx)
    ours = build_loss({"type": "class_balanced_ce", "class_counts": counts, "beta": 0.99})
    weights = class_balanced_weights(torch.tensor(counts), 0.99)
    # ours: cross-entropy's weighted mean, sum(w_t l) / sum(w_t); cbloss: sum(w_t l) / N
    torch.testing.assert_close(ours(z, idx) * weights[idx].sum() / len(idx), peer)
