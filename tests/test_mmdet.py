"""The MMDetection / mmengine integration: MMDetection 3.x's box-head math replayed over sequences of batches,
mmpretrain's classification Seesaw, checkpoints, and every loss built from an mmengine config."""

import subprocess
import sys

import pytest
import torch
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

import seesaw_losses
from seesaw_losses import SeesawLoss
from seesaw_losses.integrations import mmdet
from seesaw_losses.integrations.mmdet import SeesawLoss as MMDetSeesawLoss

from references import MMDetSeesawReference, mmdet_seesaw_ce


@pytest.fixture(scope="module")
def mmdet_models():
    """MMDetection's ``MODELS`` where MMDetection is installed, else a child registry of mmengine's root with
    scope ``mmdet``, as MMDetection's own is."""
    try:
        from mmdet.registry import MODELS
        return MODELS
    except ImportError:
        pass
    if "mmdet" in MMENGINE_MODELS._children:
        return MMENGINE_MODELS._children["mmdet"]
    return Registry("model", parent=MMENGINE_MODELS, scope="mmdet")


def test_matches_mmdetection_objectness_over_a_sequence_of_batches():
    num_classes = 8
    ours = MMDetSeesawLoss(num_classes=num_classes)
    ref = MMDetSeesawReference(num_classes)
    generator = torch.Generator().manual_seed(3)
    for step in range(6):
        n = 64
        labels = torch.randint(0, num_classes + 1, (n,), generator=generator)
        labels[torch.rand(n, generator=generator) < 0.5] = num_classes   # many background samples
        if step == 3:
            labels[:] = num_classes                                      # a batch with no positives
        logits = torch.randn(n, num_classes + 2, generator=generator) * 2
        label_weights = torch.rand(n, generator=generator) if step % 2 else None
        avg_factor = 40.0 if step == 4 else None
        a = logits.clone().requires_grad_()
        b = logits.clone().requires_grad_()
        out = ours(a, labels, label_weights, avg_factor=avg_factor)
        expected = ref(b, labels, label_weights, avg_factor=avg_factor)
        assert set(out) == {"loss_cls_objectness", "loss_cls_classes"}
        for key in out:
            torch.testing.assert_close(out[key], expected[key], rtol=1e-4, atol=1e-5)
        sum(out.values()).backward()
        sum(expected.values()).backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
        assert ours.class_counts.tolist() == ref.cum_samples[:num_classes].tolist()
        torch.testing.assert_close(ours.cum_samples, ref.cum_samples)
        assert ours.background_count.item() == ref.cum_samples[num_classes].item()
        torch.testing.assert_close(ours.get_activation(logits), ref.activation(logits))
        acc, acc_ref = ours.get_accuracy(logits, labels), ref.accuracy(logits, labels)
        for key in acc_ref:
            torch.testing.assert_close(acc[key], acc_ref[key])
    assert ours.get_cls_channels(num_classes) == num_classes + 2
    total = MMDetSeesawLoss(num_classes=num_classes, return_dict=False)
    assert isinstance(total(torch.randn(4, 10), torch.tensor([0, 8, 3, 8])), torch.Tensor)


def test_matches_mmpretrain_classification_over_a_sequence_of_batches():
    num_classes = 12
    ours = SeesawLoss(num_classes)
    cum_samples = torch.zeros(num_classes)
    for _ in range(5):
        labels = torch.multinomial(torch.linspace(1, 0.02, num_classes), 48, replacement=True)
        logits = torch.randn(48, num_classes) * 2
        weight = torch.rand(48)
        for u in labels.unique():
            cum_samples[u] += (labels == u).sum()
        expected = mmdet_seesaw_ce(logits, labels, weight, cum_samples, 0.8, 2.0, 1e-2, "mean", None)
        torch.testing.assert_close(ours(logits, labels, weight), expected, rtol=1e-4, atol=1e-6)
        assert ours.class_counts.tolist() == cum_samples.tolist()


def test_loss_weight_and_reduction_override_scale_both_terms():
    logits, labels = torch.randn(12, 6), torch.tensor([0, 1, 2, 3, 4, 4, 4, 1, 2, 0, 3, 4])
    plain, weighted = MMDetSeesawLoss(num_classes=4).eval(), MMDetSeesawLoss(num_classes=4, loss_weight=2.5).eval()
    for key, value in weighted(logits, labels).items():
        torch.testing.assert_close(value, 2.5 * plain(logits, labels)[key])
    summed = plain(logits, labels, reduction_override="sum")
    per_sample = plain(logits, labels, reduction_override="none")
    assert per_sample["loss_cls_classes"].shape == (12,) and (per_sample["loss_cls_classes"][labels == 4] == 0).all()
    for key in summed:
        torch.testing.assert_close(summed[key], per_sample[key].sum())
    with pytest.raises(ValueError, match="reduction_override must be one of"):
        plain(logits, labels, reduction_override="avg")


def test_state_dict_restores_exact_counts_beyond_float_precision():
    loss = MMDetSeesawLoss(num_classes=3)
    loss.class_counts.copy_(torch.tensor([2**53 + 1, 2**40 + 3, 7]))
    loss.background_count.fill_(2**60 + 5)
    restored = MMDetSeesawLoss(num_classes=3)
    restored.load_state_dict({k: v.clone() for k, v in loss.state_dict().items()})
    assert torch.equal(restored.class_counts, loss.class_counts)
    assert restored.background_count.item() == 2**60 + 5
    restored.reset_counts()
    assert restored.class_counts.sum().item() == 0 and restored.background_count.item() == 0


def test_load_state_dict_reads_the_float_cum_samples_of_mmdetection_and_mmpretrain():
    box_head = MMDetSeesawLoss(num_classes=3)
    box_head.load_state_dict({"cum_samples": torch.tensor([4.0, 2.0, 1.0, 90.0])})  # MMDetection: C + 1
    assert box_head.class_counts.tolist() == [4, 2, 1] and box_head.background_count.item() == 90
    classifier = SeesawLoss(3)
    classifier.load_state_dict({"cum_samples": torch.tensor([5.0, 0.0, 3.0])})  # mmpretrain: C
    assert classifier.class_counts.dtype == torch.int64 and classifier.class_counts.tolist() == [5, 0, 3]
    nested = torch.nn.Sequential(torch.nn.Identity(), SeesawLoss(3))
    nested.load_state_dict({"1.cum_samples": torch.tensor([1.0, 2.0, 3.0])})
    assert nested[1].class_counts.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match=r"SeesawLoss.load_state_dict: cum_samples must be a 1-D tensor of 3 "
                                         r"counts, got a tensor of shape \(4,\).*integrations.mmdet.SeesawLoss"):
        SeesawLoss(3).load_state_dict({"cum_samples": torch.ones(4)})
    with pytest.raises(ValueError, match="cum_samples must be finite and non-negative"):
        SeesawLoss(3).load_state_dict({"cum_samples": torch.tensor([1.0, -1.0, 0.0])})


def test_errors_are_clear_and_a_rejected_call_counts_nothing():
    loss = MMDetSeesawLoss(num_classes=6)
    logits, labels = torch.randn(4, 8), torch.tensor([0, 1, 6, 3])
    with pytest.raises(ValueError, match="cls_score must be of 8 channels"):
        loss(torch.randn(4, 6), labels)
    with pytest.raises(ValueError, match=r"target must be class indices in \[0, 6\]"):
        loss(logits, torch.tensor([0, 1, 7, 3]))
    with pytest.raises(ValueError, match="weight must be None or broadcastable"):
        loss(logits, labels, torch.ones(3))
    with pytest.raises(ValueError, match="avg_factor must be None when reduction='sum'"):
        loss(logits, labels, avg_factor=2.0, reduction_override="sum")
    assert loss.class_counts.sum() == 0 and loss.background_count == 0
    with pytest.raises(ValueError, match="get_cls_channels: num_classes must be equal"):
        loss.get_cls_channels(5)
    with pytest.raises(ValueError, match="use_sigmoid must be False"):
        MMDetSeesawLoss(use_sigmoid=True)


def test_mmdetection_config_builds_the_box_head_loss(mmdet_models):
    loss = mmdet_models.build(dict(type="seesaw_losses.SeesawLoss", p=0.8, q=2.0, num_classes=1203))
    assert type(loss) is MMDetSeesawLoss and loss.get_cls_channels(1203) == 1205
    assert loss.custom_cls_channels and loss.custom_activation and loss.custom_accuracy
    assert type(mmdet_models.build(dict(type="seesaw_losses.seesaw", num_classes=5))) is SeesawLoss


def test_every_registered_loss_builds_from_an_mmengine_config(mmdet_models):
    for entry in seesaw_losses.available_losses():
        config = {"type": f"seesaw_losses.{entry.name}"}
        if "num_classes" in entry.options():
            config["num_classes"] = 3
        if entry.counts_argument == "class_counts":
            config["class_counts"] = [90, 10] if entry.tasks[0] == "binary" else [50, 5, 1]
        built = mmdet_models.build(config)
        assert isinstance(built, torch.nn.Module), entry.name
        assert type(built) is type(entry.build(**{k: v for k, v in config.items() if k != "type"})), entry.name
        if isinstance(entry.module, type):
            assert mmdet.MODELS.get(entry.module.__name__) in (entry.module, MMDetSeesawLoss,
                                                               mmdet.EqualizedFocalLoss)


def test_a_missing_mmengine_is_named_in_the_error():
    code = ("import sys; sys.modules['mmengine'] = None; sys.modules['mmengine.registry'] = None\n"
            "try:\n    import seesaw_losses.integrations.mmdet\n"
            "except ImportError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install mmengine" in done.stdout, done.stdout + done.stderr
