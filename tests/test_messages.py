"""Errors that name the right argument and point at the usual fix."""

import subprocess
import sys

import pytest
import torch

import seesaw_losses as sl
from seesaw_losses import functional as F
from seesaw_losses.cli import main

NAN, INF = float("nan"), float("inf")


def test_combined_loss_weights_must_be_a_dict_of_finite_numbers():
    with pytest.raises(TypeError, match=r"CombinedLoss: weights must be None or a dict .*got \[1.0, 0.5\]; "
                                        r"name the losses, e.g. weights=\{'bce': 0.5\}"):
        sl.CombinedLoss({"bce": sl.WeightedBCELoss()}, weights=[1.0, 0.5])
    for bad in (INF, -INF, NAN):
        with pytest.raises(ValueError, match=r"CombinedLoss: weights\['bce'\] must be a finite number"):
            sl.CombinedLoss({"bce": sl.WeightedBCELoss()}, weights={"bce": bad})


def test_pos_weight_from_counts_names_its_own_arguments():
    with pytest.raises(ValueError, match="pos_weight_from_counts: positive_counts must be non-negative"):
        sl.pos_weight_from_counts(torch.tensor([-1.0]), torch.tensor([3.0]))
    with pytest.raises(ValueError, match="pos_weight_from_counts: negative_counts must be non-negative and finite"):
        sl.pos_weight_from_counts(torch.tensor([1.0]), torch.tensor([NAN]))


def test_seesaw_module_blames_the_channel_count_not_the_labels():
    with pytest.raises(ValueError, match=r"SeesawLoss.forward: logits must be of 5 channels .*num_classes=5, got a "
                                         r"tensor of shape \(3, 4\)"):
        sl.SeesawLoss(5)(torch.randn(3, 4), torch.tensor([0, 4, 1]))


@pytest.mark.parametrize("call", [
    lambda t: F.sigmoid_focal_loss(torch.randn(3), t),
    lambda t: F.weighted_bce_loss(torch.randn(3), t),
    lambda t: F.dice_loss(torch.randn(1, 1, 3), t.view(1, 1, 3)),
    lambda t: F.binary_seesaw_loss(torch.randn(3), t, torch.tensor([3, 1])),
    lambda t: F.lovasz_hinge_loss(torch.randn(3), t),
    lambda t: sl.BinarySeesawLoss()(torch.randn(3), t),
], ids=["sigmoid_focal", "weighted_bce", "dice", "binary_seesaw", "lovasz_hinge", "BinarySeesawLoss"])
@pytest.mark.parametrize("bad", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_non_finite_targets_are_an_error(call, bad):
    with pytest.raises(ValueError, match=r"target must be finite \(no NaN or inf\), got a value (nan|-?inf); "
                                         r"replace them"):
        call(torch.tensor([0.0, bad, 1.0]))


def test_non_finite_targets_are_an_error_next_to_ignored_elements():
    with pytest.raises(ValueError, match="sigmoid_focal_loss: target must be finite"):
        F.sigmoid_focal_loss(torch.randn(4), torch.tensor([0.0, 255.0, NAN, 1.0]), ignore_index=255)


def test_non_finite_weights_and_counts_are_an_error():
    with pytest.raises(ValueError, match="seesaw_loss: class_counts must be non-negative and finite"):
        F.seesaw_loss(torch.randn(3, 3), torch.tensor([0, 1, 2]), torch.tensor([1.0, NAN, 3.0]))
    with pytest.raises(ValueError, match="weighted_bce_loss: pos_weight must be non-negative and finite"):
        F.weighted_bce_loss(torch.randn(3), torch.ones(3), pos_weight=torch.tensor(NAN))
    with pytest.raises(ValueError, match="WeightedBCELoss: pos_weight must be non-negative and finite"):
        sl.WeightedBCELoss(pos_weight=torch.tensor([INF]))
    with pytest.raises(ValueError, match="dice_loss: class_weight must be non-negative and finite"):
        F.dice_loss(torch.randn(2, 2, 3), torch.ones(2, 2, 3), class_weight=torch.tensor([1.0, NAN]))
    with pytest.raises(ValueError, match="SeesawLoss: p must be finite and in"):
        sl.SeesawLoss(3, p=INF)


def test_one_hot_target_of_a_softmax_overlap_loss_is_told_to_argmax():
    z = torch.randn(2, 3, 4, 4)
    one_hot = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 4, 4)), 3).movedim(-1, 1)
    for target in (one_hot, one_hot.float()):
        with pytest.raises((TypeError, ValueError), match=r"target.argmax\(1\)"):
            F.dice_loss(z, target, activation="softmax")


def test_torchvision_alpha_minus_one_points_at_alpha_none():
    for build in (lambda: sl.SigmoidFocalLoss(alpha=-1),
                  lambda: F.sigmoid_focal_loss(torch.randn(3), torch.ones(3), alpha=-1)):
        with pytest.raises(ValueError, match=r"alpha must be None or in \[0, 1\], got -1; alpha=None disables"):
            build()


def test_probability_inputs_are_checked_with_activation_none():
    with pytest.raises(ValueError, match=r"dice_loss: logits must be probabilities in \[0, 1\] with "
                                         r"activation=None, got a value 2; pass raw scores"):
        F.dice_loss(torch.tensor([[[0.5, 2.0]]]), torch.tensor([[[0.0, 1.0]]]), activation=None)
    with pytest.raises(ValueError, match="logits must be probabilities .*got a value nan"):
        F.dice_loss(torch.tensor([[[0.5, NAN]]]), torch.tensor([[[0.0, 1.0]]]), activation=None)
    with pytest.raises(ValueError, match="activation must be one of .*got 'None'; None itself, not a string"):
        sl.DiceLoss(activation="None")


@pytest.mark.parametrize("device", ["tpu", "cuda"])
def test_bench_rejects_an_unusable_device_in_one_line(device, capsys):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["bench", "--quick", "--device", device]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seesaw bench: error: --device"), err
    proc = subprocess.run([sys.executable, "-m", "seesaw_losses.bench", "--quick", "--device", device],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
