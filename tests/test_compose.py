import pytest
import torch
import torch.nn.functional as F

import seesaw_losses as sl
from seesaw_losses import CombinedLoss, build_loss
from seesaw_losses.functional import dice_loss, seesaw_loss, sigmoid_focal_loss, weighted_bce_loss


def binary_batch():
    return torch.randn(2, 1, 8, 8, requires_grad=True), (torch.rand(2, 1, 8, 8) < 0.3).float()


def test_combined_total_and_components():
    x, t = binary_batch()
    criterion = CombinedLoss({"bce": sl.WeightedBCELoss(), "dice": sl.DiceLoss()}, weights={"dice": 0.5})
    total, parts = criterion(x, t, return_components=True)
    torch.testing.assert_close(parts["bce"], weighted_bce_loss(x, t))
    torch.testing.assert_close(parts["dice"], dice_loss(x, t))
    torch.testing.assert_close(total, parts["bce"] + 0.5 * parts["dice"])
    torch.testing.assert_close(criterion(x, t), total)
    total.backward()
    assert torch.isfinite(x.grad).all()


def test_stateful_component_keeps_buffers():
    criterion = build_loss([{"type": "seesaw", "num_classes": 3}, {"type": "dice", "activation": "softmax"}])
    z, t = torch.randn(4, 3, 5, 5), torch.randint(0, 3, (4, 5, 5))
    total, parts = criterion(z, t, return_components=True)
    counts = criterion.losses["seesaw"].class_counts
    assert counts.sum().item() == t.numel()
    assert "losses.seesaw.class_counts" in criterion.state_dict()
    torch.testing.assert_close(parts["seesaw"], seesaw_loss(z, t, counts))
    restored = build_loss("seesaw:num_classes=3+dice:activation=softmax")
    restored.load_state_dict(criterion.state_dict())
    assert torch.equal(restored.losses["seesaw"].class_counts, counts)


@pytest.mark.parametrize("name", ["bce", "focal", "dice", "tversky", "jaccard", "focal_tversky", "generalized_dice",
                                  "lovasz_hinge", "binary_seesaw", "sigmoid_focal"])
def test_every_binary_name_builds_and_runs(name):
    x, t = binary_batch()
    loss = build_loss(name)(x, t)
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("config", ["ce", "softmax_focal", "lovasz_softmax", {"type": "seesaw", "num_classes": 4},
                                    {"type": "class_balanced_ce", "class_counts": [900, 90, 9, 1], "beta": 0.99},
                                    "dice:activation=softmax,include_background=false"])
def test_every_multiclass_name_builds_and_runs(config):
    z, t = torch.randn(2, 4, 6, 6, requires_grad=True), torch.randint(0, 4, (2, 6, 6))
    build_loss(config)(z, t).backward()
    assert torch.isfinite(z.grad).all()


def test_string_options_weights_and_equivalences():
    x, t = binary_batch()
    criterion = build_loss("focal:gamma=1.5,alpha=None+0.5*dice:per_image=true")
    assert criterion.weights == {"focal": 1.0, "dice": 0.5}
    expected = sigmoid_focal_loss(x, t, alpha=None, gamma=1.5) + 0.5 * dice_loss(x, t, per_image=True)
    torch.testing.assert_close(criterion(x, t), expected)
    assert isinstance(build_loss({"type": "bce+dice"}), CombinedLoss)
    twice = build_loss("dice+dice")
    assert list(twice.losses) == ["dice", "dice_1"]
    weighted = build_loss({"type": "weighted_bce", "class_counts": [90, 10]})
    torch.testing.assert_close(weighted(x, t), weighted_bce_loss(x, t, pos_weight=9.0))
    cb = build_loss({"type": "class_balanced_ce", "class_counts": [100, 10, 1], "beta": 0.0})
    z, idx = torch.randn(5, 3), torch.randint(0, 3, (5,))
    torch.testing.assert_close(cb(z, idx), F.cross_entropy(z, idx))
    focal = build_loss({"type": "softmax_focal", "class_weight": [0.5, 1.0, 2.0], "gamma": 0})
    assert isinstance(focal.class_weight, torch.Tensor)
    module = sl.DiceLoss()
    assert build_loss(module) is module


def test_bad_configs():
    with pytest.raises(ValueError, match="type must be one of .*did you mean 'dice'"):
        build_loss("dcie")
    with pytest.raises(ValueError, match="build_loss: term 'focal': options must be among .*did you mean 'gamma'"):
        build_loss("focal:gama=2")
    with pytest.raises(ValueError, match="options of the form key=value"):
        build_loss("focal:gamma")
    with pytest.raises(ValueError, match="^build_loss: term 'weighted_bce': .*exactly one of pos_weight or "
                                         "class_counts"):
        build_loss("weighted_bce")
    with pytest.raises(ValueError, match="^build_loss: term 'dice': DiceLoss: smooth_nr must be"):
        build_loss("bce+dice:smooth_nr=-1")
    with pytest.raises(TypeError, match="^build_loss: term 'focal': loss_weight must be a number"):
        build_loss({"type": "focal", "loss_weight": "x"})
    with pytest.raises(TypeError, match="config must be a string"):
        build_loss(3)
    with pytest.raises(ValueError, match="gamma must be in"):
        build_loss({"type": "focal", "gamma": -2})
    with pytest.raises(ValueError, match="weights must be keyed by the loss names"):
        CombinedLoss({"dice": sl.DiceLoss()}, weights={"bce": 1.0})
    with pytest.raises(ValueError, match="a scalar tensor"):
        build_loss("bce:reduction=none+dice")(*binary_batch())


def test_a_combination_reads_its_targets_values_once(monkeypatch):
    from seesaw_losses.functional import _validation, binary_seesaw
    reads = []
    value_range, is_binary = _validation.value_range, binary_seesaw._is_binary
    monkeypatch.setattr(_validation, "value_range", lambda *a: reads.append("range") or value_range(*a))
    monkeypatch.setattr(binary_seesaw, "_is_binary", lambda *a: reads.append("binary") or is_binary(*a))
    x, t = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) < 0.3).float()
    build_loss("bce+dice+0.5*focal")(x, t)
    assert reads == ["range"]
    reads.clear()
    build_loss("binary_seesaw+dice")(x, t)
    assert reads == ["binary"]
    reads.clear()
    build_loss("dice+binary_seesaw")(x, t)        # [0, 1] does not imply {0, 1}: both rules are read
    assert reads == ["range", "binary"]
    with pytest.raises(ValueError, match="BinarySeesawLoss.forward: target must be binary"):
        build_loss("dice+binary_seesaw")(x, t * 0.5)
    reads.clear()
    build_loss("bce")(x, t)
    build_loss("bce")(x, t)                       # outside a combination every call checks
    assert reads == ["range", "range"]


@pytest.mark.parametrize("spec, binary", [
    ("bce+dice", True), ("binary_seesaw+dice", True), ("focal+tversky", True), ("bce+lovasz_hinge", True),
    ("lovasz_hinge:per_image=True+dice", True), ("asymmetric+jaccard", True),
    ([{"type": "seesaw", "num_classes": 4}, {"type": "dice", "activation": "softmax"}], False),
    ("logit_adjusted:num_classes=4+softmax_focal", False),
])
def test_a_composition_sums_its_gradients_in_place(spec, binary):
    """Every term hands its gradient over in the logits' own shape (not a view), so autograd adds the terms'
    gradients in place: no input-sized out-of-place add in backward."""
    from torch.profiler import profile
    gen = torch.Generator().manual_seed(0)
    if binary:
        logits = torch.randn(2, 1, 12, 12, generator=gen)
        target = (torch.rand(2, 1, 12, 12, generator=gen) < 0.3).float()
    else:
        logits, target = torch.randn(2, 4, 12, 12, generator=gen), torch.randint(0, 4, (2, 12, 12), generator=gen)
    x = logits.requires_grad_()
    loss = build_loss(spec)(x, target)
    with profile(record_shapes=True) as prof:
        loss.backward()
    adds = [e.name for e in prof.events()
            if e.name in ("aten::add", "aten::add_") and e.input_shapes and list(e.input_shapes[0]) == list(x.shape)]
    assert adds == ["aten::add_"]
