"""Defaults that use the machine and say so: threads from the usable cores, a per-run log when stderr is not a
terminal, no silent up-sampling of small images, capped weights that say so."""

import argparse
import os

import numpy as np
import pytest
import torch
from PIL import Image

from seesaw_losses.cli._common import configure_torch, device_text
from seesaw_losses.experiments.data import pairs as io
from seesaw_losses.experiments.losses import build, parse_losses
from seesaw_losses.experiments.progress import Tracker


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_default_to_the_idle_usable_cores_and_the_header_says_so(threads, monkeypatch):
    from seesaw_losses.experiments.trainers import fit

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(fit, "running_elsewhere", lambda: 0)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # set by configure_torch: restored afterwards
    assert configure_torch(argparse.Namespace(threads=None, device="cpu")) == "cpu"
    assert torch.get_num_threads() == cores
    assert device_text("cpu") == f"on cpu, {cores} thread{'s' if cores != 1 else ''}"
    configure_torch(argparse.Namespace(threads=None, device="cpu"), loader_workers=cores)
    assert torch.get_num_threads() == 1  # threads and loader processes share the cores, one thread at least
    monkeypatch.setattr(fit, "running_elsewhere", lambda: cores)  # every core busy elsewhere
    configure_torch(argparse.Namespace(threads=None, device="cpu"))
    assert torch.get_num_threads() == 1 and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    configure_torch(argparse.Namespace(threads=1, device="auto"))
    assert torch.get_num_threads() == 1 and device_text("cpu") == "on cpu, 1 thread"


def test_progress_writes_one_line_per_run_when_stderr_is_not_a_terminal(capsys):
    with Tracker(6, title="segmentation") as tracker:
        for seed in (0, 1):
            with tracker.run(f"focal seed {seed}", 3) as advance:
                for epoch in range(3):
                    advance(f"loss {0.5 - epoch / 10:.4f}, val_dice 0.{epoch}")
                if seed:
                    advance.result = "dice 0.512"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("focal seed 0: loss 0.3000, val_dice 0.2; ") and lines[0].endswith(" s [3/6 epochs]")
    assert lines[1].startswith("focal seed 1: dice 0.512; ") and lines[1].endswith(" s [6/6 epochs]")


def test_progress_off_writes_nothing(capsys):
    with Tracker(3, enabled=False) as tracker, tracker.run("focal seed 0", 3) as advance:
        advance("loss 0.1")
    tracker.advance_plan(3)
    assert capsys.readouterr().err == ""


def _write_pairs(folder, shapes):
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(0)
    for k, (height, width) in enumerate(shapes):
        Image.fromarray(rng.integers(0, 255, (height, width), dtype=np.uint8)).save(folder / "images" / f"{k}.png")
        mask = np.zeros((height, width), np.uint8)
        mask[height // 3:height // 2, :] = 255
        Image.fromarray(mask).save(folder / "masks" / f"{k}.png")
    return folder / "images", folder / "masks"


@pytest.mark.parametrize("shapes, expected", [([(40, 40)] * 6, 40), ([(44, 60)] * 3 + [(200, 300)] * 3, 40),
                                              ([(300, 200)] * 6, 128)])
def test_the_default_size_never_up_samples(tmp_path, shapes, expected):
    images, masks = _write_pairs(tmp_path, shapes)
    data = io.load_user_data(images, masks, size="auto", seed=0)
    assert data.train.images.shape[2:] == (expected, expected)
    assert not [note for note in data.notes if "up-sampled" in note]


def test_up_sampling_says_so(tmp_path):
    images, masks = _write_pairs(tmp_path, [(44, 44)] * 6)
    data = io.load_user_data(images, masks, size=128, seed=0)
    assert data.train.images.shape[2:] == (128, 128)
    assert ["6 image(s) up-sampled to 128x128 (the smallest side is 44 px): slower training on interpolated "
            "pixels, no added detail; size=40 does not"] == [n for n in data.notes if "up-sampled" in n]


def test_a_capped_pos_weight_says_by_what_and_the_count_ratio():
    counts = [201581, 7315]
    capped, = build(parse_losses(["weighted_bce:max_weight=12.5"])[0], counts).notes
    assert capped == ("weighted_bce:max_weight=12.5: pos_weight 12.5 (capped by max_weight=12.5; the count ratio "
                      "is 27.6) from the training label counts [201581, 7315]")
    uncapped, = build(parse_losses(["weighted_bce:max_weight=50"])[0], counts).notes
    assert uncapped == "weighted_bce:max_weight=50: pos_weight 27.6 from the training label counts [201581, 7315]"
