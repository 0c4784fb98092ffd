"""Native-resolution segmentation: lazy pairs, nnU-Net patch sampling, sliding-window prediction, the trainer."""

import dataclasses
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seesaw_losses.experiments import DataError
from seesaw_losses.experiments.evaluation import metrics
from seesaw_losses.experiments.data.pairs import MaskReading
from seesaw_losses.experiments.data.patches import EpochSampler, PatchDataset, load_patch_data, sample_patches
from seesaw_losses.experiments.losses import build, parse_loss
from seesaw_losses.experiments.models.sliding_window import gaussian_importance, sliding_window, window_starts
from seesaw_losses.experiments.trainers import Budget, PatchSegmentationTrainer
from trainer_support import SIZES, make_run, one_thread, write_pairs  # noqa: F401 (an autouse fixture)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("height, width", [(37, 53), (16, 16), (9, 21), (64, 48)])
@pytest.mark.parametrize("overlap", [0.5, 0.0])
@pytest.mark.parametrize("blend", ["gaussian", "uniform"])
def test_sliding_window_of_a_per_pixel_model_is_the_model_on_the_whole_image(height, width, overlap, blend):
    model = torch.nn.Conv2d(3, 2, 1)
    image = torch.randn(3, height, width)
    found = sliding_window(model, image, size=16, overlap=overlap, blend=blend, batch_size=3)
    with torch.no_grad():
        expected = model(image[None])[0]
    assert found.shape == (2, height, width)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5)


def test_windows_cover_the_image_with_the_overlap_asked():
    for length in (16, 17, 37, 100, 257):
        for overlap in (0.0, 0.25, 0.5):
            starts = window_starts(length, 16, overlap)
            assert starts[0] == 0 and starts[-1] == max(length - 16, 0)
            assert all(0 < b - a <= 16 * (1 - overlap) for a, b in zip(starts, starts[1:]))
    weights = gaussian_importance(16)
    assert float(weights.max()) == 1.0 and float(weights.min()) > 0
    assert torch.equal(weights, weights.flip(0)) and torch.equal(weights, weights.T)
    with pytest.raises(ValueError, match="sliding_window: overlap must be in \\[0, 1\\), got 1"):
        sliding_window(torch.nn.Identity(), torch.zeros(1, 8, 8), size=8, overlap=1)


def test_patches_shape_and_a_third_centred_on_foreground():
    mask = torch.zeros(50, 70, dtype=torch.long)
    mask[10, 5:60] = 1
    image = torch.randn(1, 50, 70)
    for seed in range(10):
        patches, masks, centred = sample_patches(image, mask, size=16, count=6, rng=np.random.default_rng(seed))
        assert patches.shape == (6, 1, 16, 16) and masks.shape == (6, 16, 16)
        assert sum(centred) == 2
        for patch, flag in zip(masks, centred):
            if flag:  # the foreground pixel sits at the centre, whichever flip and turn the patch got
                assert patch[7:9, 7:9].any()
    draws = [sum(sample_patches(image, mask, size=16, count=1, rng=np.random.default_rng(s))[2]) for s in range(300)]
    assert 0.25 < np.mean(draws) < 0.42
    empty = sample_patches(image, torch.zeros(50, 70, dtype=torch.long), size=16, count=3,
                           rng=np.random.default_rng(0))
    assert sum(empty[2]) == 0


def test_small_images_are_padded():
    image = torch.full((1, 10, 12), 5.0)
    mask = torch.ones(10, 12, dtype=torch.long)
    for ignore, fill in ((None, 0), (255, 255)):
        patches, masks, _ = sample_patches(image, mask, size=16, count=4, rng=np.random.default_rng(1),
                                           ignore_index=ignore)
        assert patches.shape == (4, 1, 16, 16)
        assert ((patches == 5.0).sum((1, 2, 3)) == 120).all()  # the whole image lies inside every patch
        assert ((masks == 1).sum((1, 2)) == 120).all() and ((masks == fill).sum((1, 2)) == 256 - 120).all()


@pytest.fixture
def pairs(tmp_path):
    return write_pairs(tmp_path / "data", 10)


def test_patch_dataset_deterministic_by_seed_and_epoch(pairs):
    data = load_patch_data(pairs / "images", pairs / "masks", patch_size=16)
    dataset = PatchDataset(data.train, patch_size=16, patches_per_image=3, channels=1, seed=4)
    first, again = dataset[(0, 1)], pickle.loads(pickle.dumps(dataset))[(0, 1)]
    assert first[0].shape == (3, 1, 16, 16) and first[1].shape == (3, 16, 16)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    other_epoch = dataset[(1, 1)]
    other_seed = PatchDataset(data.train, patch_size=16, patches_per_image=3, channels=1, seed=5)[(0, 1)]
    assert not torch.equal(first[0], other_epoch[0]) and not torch.equal(first[0], other_seed[0])
    sampler = EpochSampler(5, seed=2)
    orders = [list(sampler)]
    sampler.set_epoch(1)
    orders.append(list(sampler))
    assert orders[0] == list(EpochSampler(5, seed=2)) and orders[0] != orders[1]
    assert sorted(k for _, k in orders[1]) == list(range(5)) and {e for e, _ in orders[1]} == {1}


def test_load_keeps_native_sizes(pairs):
    data = load_patch_data(pairs / "images", pairs / "masks", patch_size=16, workers=1)
    assert len(data.train) + len(data.validation) + len(data.test) == 10
    assert {(p.height, p.width) for p in data.train + data.validation + data.test} == set(SIZES)
    assert "40x56" in data.description and "64x48" in data.description
    assert not any("resized" in note for note in data.notes)
    assert not any("padded" in note for note in data.notes)
    data = load_patch_data(pairs / "images", pairs / "masks", patch_size=48)
    assert any(note.startswith("5 image(s) smaller than 48x48 padded") for note in data.notes), data.notes
    assert data.binary and data.class_counts[1] > 0


def test_pair_checks_one_line(pairs):
    with pytest.raises(DataError, match="patch_size must be a multiple of 8 .*, got 20"):
        PatchSegmentationTrainer.check_windows(20)
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(pairs / "masks" / "03.png")
    for workers in (0, 1):
        with pytest.raises(DataError, match="mask .*03.png is 8x8 \\(HxW\\) but its image .* is 64x48") as caught:
            load_patch_data(pairs / "images", pairs / "masks", patch_size=16, workers=workers)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("loss", ["bce", "ce"])
def test_trainer_scores_whole_images_at_their_own_size(pairs, loss):
    data = load_patch_data(pairs / "images", pairs / "masks", patch_size=16, test_fraction=0.4)
    trainer = PatchSegmentationTrainer(data, Budget(epochs=1, batch_size=6, lr=1e-3), patch_size=16,
                                       patches_per_image=3, width=4, depth=2, loader_workers=0)
    run = make_run(loss, seed=2)
    scores = trainer(build(parse_loss(loss), data.class_counts).module, run)
    assert {"dice", "image_dice", "iou", "threshold", "cldice", "betti0_error", "hd95"} <= set(scores)
    assert len(run.history["train_loss"]) == 1 and len(run.history["validation"]) == 1
    entries = run.artifacts["per_image"]
    assert [(e["height"], e["width"]) for e in entries] == [(p.height, p.width) for p in data.test]
    assert [o.shape for o in run.artifacts["outputs"]] == [(p.height, p.width) for p in data.test]
    assert run.samples["image_dice"][0].tolist() == [e["image_dice"] for e in entries]
    assert scores["image_dice"] == pytest.approx(np.mean([e["image_dice"] for e in entries]))
    assert run.samples["hd95"][0].tolist() == [e["hd95"] for e in entries]
    assert run.artifacts["peak_mb"] > 0
    assert trainer.metric == "image_dice" and trainer.class_counts() == data.class_counts
    assert scores["cldice"] == pytest.approx(np.mean([e["cldice"] for e in entries]))


def test_class_index_masks_rank_by_mean_per_image_miou(pairs):
    for path in sorted((pairs / "masks").iterdir()):  # a third class in each image's corner
        mask = np.asarray(Image.open(path)).copy()
        mask[mask > 0], mask[:4, :4] = 1, 2
        Image.fromarray(mask).save(path)
    data = load_patch_data(pairs / "images", pairs / "masks", patch_size=16, test_fraction=0.4)
    trainer = PatchSegmentationTrainer(data, Budget(epochs=1, batch_size=6, lr=1e-3), patch_size=16,
                                       patches_per_image=2, width=4, depth=2, loader_workers=0)
    run = make_run("ce", seed=1)
    scores = trainer(build(parse_loss("ce"), data.class_counts).module, run)
    assert trainer.metric == "image_mean_iou" and {"mean_iou", "iou/2"} <= set(scores)
    outputs, entries = run.artifacts["outputs"], run.artifacts["per_image"]
    masks = [np.asarray(Image.open(pair.mask)).astype(np.int64) for pair in data.test]
    expected = [metrics.per_image_mean_iou(o[None], m[None], 3, np.ones((1,) + m.shape, bool))[0]
                for o, m in zip(outputs, masks)]
    assert run.samples["image_mean_iou"][0] == pytest.approx(expected)
    assert [e["image_mean_iou"] for e in entries] == pytest.approx(expected)
    assert scores["image_mean_iou"] == pytest.approx(np.mean(expected))


def test_a_held_out_image_without_a_scored_pixel_is_left_out_of_the_per_image_samples(pairs):
    for path in sorted((pairs / "masks").iterdir()):  # class indices 0, 1, 2, and two images all ignore_index
        mask = np.asarray(Image.open(path)).copy()
        mask[mask > 0], mask[:4, :4] = 1, 2
        if path.stem in ("03", "07"):
            mask[:] = 255
        Image.fromarray(mask).save(path)
    data = load_patch_data(pairs / "images", pairs / "masks", patch_size=16, test_fraction=0.4,
                           reading=MaskReading(ignore_index=255))
    test_names = [pair.name for pair in data.test]
    assert {"03", "07"} & set(test_names)  # the split holds one out (a fixed seed)
    trainer = PatchSegmentationTrainer(data, Budget(epochs=1, batch_size=6, lr=1e-3), patch_size=16,
                                       patches_per_image=2, width=4, depth=2, loader_workers=0)
    run = make_run("ce", seed=1)
    scores = trainer(build(parse_loss("ce"), data.class_counts, ignore_index=255).module, run)
    kept = [name for name in test_names if name not in ("03", "07")]
    samples = run.samples["image_mean_iou"][0]
    assert len(samples) == len(kept) and np.isfinite(samples).all()
    assert [entry["name"] for entry in run.artifacts["per_image"]] == kept
    assert scores["image_mean_iou"] == pytest.approx(samples.mean())


def test_trainer_tuning_run_same_with_loader_workers_and_settings(pairs):
    data = load_patch_data(pairs / "images", pairs / "masks", patch_size=16)
    trainer = PatchSegmentationTrainer(data, Budget(epochs=1, batch_size=4, lr=1e-3), patch_size=16,
                                       patches_per_image=2, width=4, depth=2, overlap=0.0, blend="uniform",
                                       loader_workers=1)
    run = make_run("bce+dice", tuning=True)
    scores = trainer(build(parse_loss("bce+dice"), data.class_counts).module, run)
    assert scores["image_dice"] == pytest.approx(run.history["validation"][-1]) and run.samples == {}
    in_process = dataclasses.replace(trainer, loader_workers=0)  # the same patches whichever process reads them
    assert in_process(build(parse_loss("bce+dice"), data.class_counts).module, make_run("bce+dice", tuning=True)) \
        == scores
    with pytest.raises(ValueError, match="patch_size must be a multiple of 8 .* got 12"):
        PatchSegmentationTrainer(data, patch_size=12)
    with pytest.raises(ValueError, match="blend must be one of gaussian, uniform, got 'mean'"):
        PatchSegmentationTrainer(data, blend="mean")


@pytest.mark.slow
def test_patch_memory_does_not_grow_with_the_images(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_patch_memory.py"), "--small", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    ratio, regression = map(float, re.search(r"ratio 40 / 8 images: ([\d.]+) .* would reach ~([\d.]+)",
                                             done.stdout).groups())
    assert ratio <= 1.2 < regression  # the images are large enough for a regression to fail the check
