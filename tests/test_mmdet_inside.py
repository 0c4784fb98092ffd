"""The losses inside MMDetection itself: the LVIS Seesaw configs that MMDetection ships, built with the library's
``SeesawLoss`` in the box head and trained side by side with MMDetection's own on synthetic long-tailed LVIS-style
batches; checkpoints moved between the two; ``winner_mmengine.py`` dropped into a config; and equalized focal loss
in MMDetection's RetinaNet head."""

import copy
import os

import pytest
import torch

try:
    import mmdet
    import mmdet.models  # noqa: F401 - needs mmcv's compiled ops
except ImportError:
    pytest.skip("MMDetection is not installed: pip install ../shared/wheels/mmcv-2.1.0-*.whl 'seesaw-losses[mmdet]' "
                "(scripts/setup.sh test does it where ../shared/wheels holds the mmcv wheel)", allow_module_level=True)

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from mmengine.utils import import_modules_from_strings

from seesaw_losses import compare
from seesaw_losses.experiments.reporting.report import write_winner

from compare_functions import seeded_scores
from long_tail_references import EqualizedFocalReference

LVIS_CLASSES = 1203
CONFIGS = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs")
SEED_CONFIG = "mask-rcnn_r50_fpn_seesaw-loss_random-ms-2x_lvis-v1.py"
OURS = "seesaw_losses.SeesawLoss"

register_all_modules(init_default_scope=False)


def seed_config(name: str) -> Config:
    """One of MMDetection's ``seesaw_loss`` configs, its model made cheap to train on a CPU: a backbone neither
    loaded nor trained, fewer proposals, and 8 RoIs per image (at most 2 positive: the mask head's cost grows
    with them), the heads and the loss untouched."""
    cfg = Config.fromfile(os.path.join(CONFIGS, "seesaw_loss", name))
    cfg.model.backbone.update(init_cfg=None, frozen_stages=4)
    cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=64)
    rcnn = cfg.model.train_cfg.rcnn
    for stage in rcnn if isinstance(rcnn, list) else [rcnn]:
        stage.sampler.num = 8
    return cfg


def box_heads(model):
    heads = model.roi_head.bbox_head
    return list(heads) if isinstance(heads, torch.nn.ModuleList) else [heads]


def our_loss_options(cfg: Config) -> dict:
    """The options (``--cfg-options`` of MMDetection's ``tools/train.py``) that docs/detection.md gives to switch
    every box head's ``loss_cls`` to the library's: the import, and one key per head (three in Cascade R-CNN)."""
    heads = cfg.model.roi_head.bbox_head
    keys = ([f"model.roi_head.bbox_head.{k}.loss_cls.type" for k in range(len(heads))] if isinstance(heads, list)
            else ["model.roi_head.bbox_head.loss_cls.type"])
    return {"custom_imports": dict(imports=["seesaw_losses.integrations.mmdet"], allow_failed_imports=False),
            **dict.fromkeys(keys, OURS)}


def with_our_loss(cfg: Config) -> Config:
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict(our_loss_options(cfg))
    return cfg


def build(cfg: Config):
    if cfg.get("custom_imports"):
        import_modules_from_strings(**cfg.custom_imports)   # what mmengine's Runner does with the config
    with DefaultScope.overwrite_default_scope("mmdet"):
        return MODELS.build(cfg.model).train()


def lvis_batch(step: int, images: int, size: int = 96, objects: int = 5) -> dict:
    """Synthetic LVIS-style inputs: random images, boxes with box-shaped masks, long-tailed labels over 1,203
    classes (a Pareto draw: class 0 most frequent, most classes rare)."""
    generator = torch.Generator().manual_seed(1000 + step)
    inputs, samples = [], []
    for _ in range(images):
        corner = torch.rand(objects, 2, generator=generator) * size * 0.6
        extent = torch.rand(objects, 2, generator=generator) * size * 0.35 + 8
        boxes = torch.cat([corner, (corner + extent).clamp(max=size - 1)], 1)
        tail = torch.rand(objects, generator=generator).pow(-2.0) - 1           # Pareto, shape 1/2
        labels = tail.long().clamp(max=LVIS_CLASSES - 1)
        masks = torch.zeros(objects, size, size, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
            masks[k, y1:y2 + 1, x1:x2 + 1] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                                             batch_input_shape=(size, size), scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels,
                                           masks=BitmapMasks(masks.numpy(), size, size))
        inputs.append(torch.randint(0, 256, (3, size, size), generator=generator, dtype=torch.uint8))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def train_step(model, data: dict, seed: int):
    """``model.loss`` on a batch (samplers seeded), backward; the loss terms and the RoI head's gradients."""
    torch.manual_seed(seed)
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    losses = model.loss(batch["inputs"], batch["data_samples"])
    total, _ = model.parse_losses(losses)
    model.zero_grad()
    total.backward()
    terms = {k: sum(v) if isinstance(v, list) else v for k, v in losses.items()}
    grads = {name: p.grad.clone() for name, p in model.roi_head.named_parameters() if p.grad is not None}
    return terms, grads


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


def side_by_side(name: str, steps: int, images: int) -> float:
    """Train MMDetection's config and the same config with the library's loss from identical weights on identical
    batches; check every loss term, the RoI head's gradients and the counts; return the largest relative
    difference seen."""
    cfg = seed_config(name)
    theirs = build(cfg)
    ours = build(with_our_loss(cfg))
    assert all(type(head.loss_cls).__module__ == "seesaw_losses.integrations.mmdet" for head in box_heads(ours))
    ours.load_state_dict(theirs.state_dict())        # MMDetection's checkpoint, cum_samples included
    largest = 0.0
    for step in range(steps):
        data = lvis_batch(step, images)
        (terms, grads), (expected, expected_grads) = (train_step(m, data, seed=step) for m in (ours, theirs))
        assert terms.keys() == expected.keys() and {"loss_mask", "loss_bbox"} < {k.split(".")[-1] for k in terms}
        for key in expected:
            torch.testing.assert_close(terms[key], expected[key], rtol=1e-5, atol=1e-7, msg=key)
            largest = max(largest, relative_difference(terms[key], expected[key]))
        assert grads.keys() == expected_grads.keys() and grads
        for key in expected_grads:
            torch.testing.assert_close(grads[key], expected_grads[key], rtol=1e-4, atol=1e-7, msg=key)
            largest = max(largest, relative_difference(grads[key], expected_grads[key]))
        for mine, theirs_head in zip(box_heads(ours), box_heads(theirs)):
            assert torch.equal(mine.loss_cls.cum_samples, theirs_head.loss_cls.cum_samples)
    counted = box_heads(ours)[0].loss_cls
    assert counted.background_count > 0 and (counted.class_counts > 0).sum() > 1
    print(f"{name}: {steps} iterations, largest relative difference {largest:.2e}")
    return largest


def test_the_seed_config_trains_with_our_loss_as_with_mmdetections():
    side_by_side(SEED_CONFIG, steps=3, images=2)


@pytest.mark.parametrize("name", ["mask-rcnn_r50_fpn_seesaw-loss-normed-mask_random-ms-2x_lvis-v1.py",
                                  "cascade-mask-rcnn_r101_fpn_seesaw-loss_random-ms-2x_lvis-v1.py"])
def test_the_normed_mask_and_cascade_variants_train_as_mmdetections(name):
    side_by_side(name, steps=2, images=1)


def test_the_documented_options_switch_every_seed_config_of_the_table():
    names = sorted(name for name in os.listdir(os.path.join(CONFIGS, "seesaw_loss")) if name.endswith(".py"))
    assert len(names) == 12
    models = {}
    for name in names:
        cfg = with_our_loss(Config.fromfile(os.path.join(CONFIGS, "seesaw_loss", name)))
        heads = cfg.model.roi_head.bbox_head
        heads = heads if isinstance(heads, list) else [heads]
        assert [head.loss_cls.type for head in heads] == [OURS] * (3 if name.startswith("cascade") else 1)
        assert all(head.loss_cls.num_classes == LVIS_CLASSES for head in heads)
        models[name] = cfg.model.to_dict()
    for name in names:   # repeat-factor sampling changes the data, not the model: the tests above cover it
        if "sample1e-3" in name:
            assert models[name] == models[name.replace("sample1e-3", "random")]


def test_checkpoints_move_between_mmdetections_loss_and_ours():
    import_modules_from_strings("seesaw_losses.integrations.mmdet")
    theirs = MODELS.build(dict(type="SeesawLoss", num_classes=LVIS_CLASSES))
    ours = MODELS.build(dict(type=OURS, num_classes=LVIS_CLASSES))
    labels = torch.cat([torch.arange(40) % 7, torch.full((60,), LVIS_CLASSES)])
    theirs(torch.randn(100, LVIS_CLASSES + 2), labels)
    ours.load_state_dict(theirs.state_dict())
    assert ours.class_counts[:7].tolist() == [6, 6, 6, 6, 6, 5, 5] and ours.background_count == 60
    ours(torch.randn(100, LVIS_CLASSES + 2), labels)
    back = MODELS.build(dict(type="SeesawLoss", num_classes=LVIS_CLASSES))
    missing, unexpected = back.load_state_dict(ours.state_dict(), strict=False)
    assert not missing and sorted(unexpected) == ["background_count", "class_counts"]
    assert torch.equal(back.cum_samples, ours.cum_samples) and back.cum_samples[LVIS_CLASSES] == 120
    again = MODELS.build(dict(type=OURS, num_classes=LVIS_CLASSES))
    again.load_state_dict(ours.state_dict())                             # strict: the int64 counts win
    assert torch.equal(again.class_counts, ours.class_counts)


def test_the_exported_winner_drops_into_the_seed_config(tmp_path):
    result = compare(seeded_scores, ["seesaw:p=0.6,q=1.5"], metric="score", seeds=1, progress=False,
                     class_counts=[90, 9, 1])
    write_winner(result, tmp_path)
    winner = Config.fromfile(str(tmp_path / "winner_mmengine.py")).loss
    cfg = with_our_loss(seed_config(SEED_CONFIG))
    cfg.model.roi_head.bbox_head.loss_cls = dict(winner, type=OURS, num_classes=LVIS_CLASSES)
    loss = build(cfg).roi_head.bbox_head.loss_cls
    assert (loss.p, loss.q, loss.num_classes) == (0.6, 1.5, LVIS_CLASSES)


def retina_head(loss_cls: dict):
    """MMDetection's RetinaNet head for the 1,203 LVIS classes with ``loss_cls``, from the shipped config."""
    cfg = Config.fromfile(os.path.join(CONFIGS, "retinanet", "retinanet_r50_fpn_1x_coco.py")).model
    import_modules_from_strings("seesaw_losses.integrations.mmdet")
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("mmdet"):
        return MODELS.build(dict(cfg.bbox_head, num_classes=LVIS_CLASSES, loss_cls=loss_cls,
                                 train_cfg=cfg.train_cfg)).train()


def fpn_features(step: int, images: int = 1, size: int = 64):
    """Random FPN features of the five RetinaNet levels, and the long-tailed annotations of ``lvis_batch``."""
    generator = torch.Generator().manual_seed(2000 + step)
    sides = [-(-size // stride) for stride in (8, 16, 32, 64, 128)]           # as the strided convolutions give
    levels = [torch.randn(images, 256, side, side, generator=generator) for side in sides]
    return levels, lvis_batch(step, images, size)["data_samples"]


def test_equalized_focal_loss_trains_in_mmdetections_retinanet_head():
    efl = dict(type="seesaw_losses.EqualizedFocalLoss", use_sigmoid=True, num_classes=LVIS_CLASSES)
    head = retina_head(efl)
    focal = retina_head(dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25))
    calls = []
    head.loss_cls.register_forward_hook(lambda module, args, kwargs, out: calls.append((args, kwargs, out)),
                                        with_kwargs=True)
    reference = EqualizedFocalReference(LVIS_CLASSES, ignore_index=None)
    largest = 0.0
    for step in range(2):
        levels, samples = fpn_features(step)
        losses = head.loss(levels, samples)
        assert all(bool(torch.isfinite(v)) for v in losses["loss_cls"] + losses["loss_bbox"])
        if step == 0:       # no statistics yet: the focal loss, as MMDetection's FocalLoss computes it
            expected = focal.loss(levels, samples)["loss_cls"]
            torch.testing.assert_close(losses["loss_cls"][0], expected[0], rtol=1e-5, atol=1e-7)
        for (score, labels, weights), kwargs, out in calls:   # the batch as the head handed it to the loss
            expected = reference(score.detach(), labels, weights, kwargs["avg_factor"])
            torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-8)
            largest = max(largest, relative_difference(out, expected))
        calls.clear()
        for mine, theirs in ((head.loss_cls.pos_grad, reference.pos), (head.loss_cls.neg_grad, reference.neg)):
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-12)
            largest = max(largest, relative_difference(mine, theirs))
    assert bool((head.loss_cls.neg_grad > 0).all()) and int((head.loss_cls.pos_grad > 0).sum()) > 1
    print(f"EFL in RetinaNet: largest relative difference to the float64 reference {largest:.2e}")
