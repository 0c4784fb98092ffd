"""``seesaw compare``'s two data modes run as real processes: class folders (classification) and segmentation at
native resolution by patches (``--patch-size``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_checks import assert_png
from trainer_support import SIZES, write_pairs

COUNTS = {"airplane": 40, "bird": 20, "cat": 10, "deer": 5, "frog": 2}  #: a long tail, 40..2 training images
HELD_OUT = 4  #: held-out images per class
FAST = ["--epochs", "1", "--width", "4", "--threads", "1", "--no-progress", "--seeds", "1", "--loader-workers", "0"]


def write_class_folders(root: Path, counts, seed: int = 0) -> Path:
    """16x16 grayscale PNGs, a class-specific bright stripe on noise, ``counts[name]`` in folder ``name``."""
    rng = np.random.default_rng(seed)
    for label, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for k in range(count):
            pixels = rng.integers(0, 60, (16, 16)).astype(np.uint8)
            pixels[:, 3 * label:3 * label + 3] = 220
            Image.fromarray(pixels).save(root / name / f"{k:03d}.png")
    return root


def compare(*argv):
    """``seesaw compare ARGV`` in a new process: ``(exit status, stdout, stderr)``."""
    done = subprocess.run([sys.executable, "-m", "seesaw_losses.cli", "compare", *map(str, argv)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def png_size(path):
    with Image.open(path) as image:
        return image.size


def tree(*folders):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for f in folders for p in sorted(f.rglob("*"))}


@pytest.fixture(scope="module")
def long_tail(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    return (write_class_folders(root / "train", COUNTS),
            write_class_folders(root / "test", dict.fromkeys(COUNTS, HELD_OUT), seed=1))


def test_class_folders_ranked_by_balanced_accuracy_with_class_names(long_tail, tmp_path):
    train, test = long_tail
    out = tmp_path / "report"
    code, stdout, stderr = compare("--images", train, "--test-images", test, "--loss", "ce", "--loss", "seesaw",
                                   "--loss", "balanced_softmax", "--out", out, *FAST)
    assert code == 0, stderr
    assert stdout.startswith(f"Data: {train}: 5 classes (0 many-shot, 1 medium-shot, 4 few-shot)")
    assert "read at 32x32" in stdout and "CNN width 4 (5 classes)" in stdout
    assert "ranked by Bal. acc" in stdout and "too few images to validate (all kept for training): frog" in stdout
    document = json.loads((out / "results.json").read_text())
    comparison = document["classification"]
    assert comparison["ranked_by"] == "balanced_accuracy"
    assert document["settings"]["classification"]["classes"] == list(COUNTS)
    for result in comparison["results"]:
        for key in ("balanced_accuracy", "few_shot_accuracy", "balanced_accuracy_adjusted",
                    *(f"accuracy/{name}" for name in COUNTS)):
            assert result["summary"][key]["mean"] is not None, (result["loss"], key)
            assert key in result["runs"][0]["metrics"]
        assert len(result["runs"][0]["per_image"]["balanced_accuracy"]) == HELD_OUT * len(COUNTS)
    header = (out / "classification.csv").read_text().splitlines()[0].split(",")
    assert "accuracy/frog" in header and "few_shot_accuracy" in header
    winner = json.loads((out / "winner.json").read_text())
    from seesaw_losses import build_loss

    assert build_loss(winner["loss"]) is not None and winner["metric"] == "balanced_accuracy"
    report = (out / "report.md").read_text()
    assert "Accuracy frog" in report and "![classification_confusion](classification_confusion.png)" in report
    for name in ("classification_per_class.png", "classification_confusion.png"):
        assert_png(out / name, png_size(out / name))


def _bad_layouts(root: Path):
    """``(arguments, message)`` of each classification data check (the message a part of the error line), the
    folders made under ``root``."""
    one = write_class_folders(root / "one", {"cat": 3})
    empty = write_class_folders(root / "empty", {"cat": 3, "dog": 3})
    (empty / "emu").mkdir()
    mixed = write_class_folders(root / "mixed", {"cat": 3, "dog": 3})
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mixed / "loose.png")
    train = write_class_folders(root / "train", {"cat": 3, "dog": 3})
    unknown = write_class_folders(root / "unknown", {"cat": 1, "yak": 1})
    broken = write_class_folders(root / "broken", {"cat": 3, "dog": 3})
    (broken / "dog" / "003.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return [
        (["--images", one], "has 1 class folder(s); classification needs at least 2"),
        (["--images", empty], "class folder(s) without images: emu"),
        (["--images", mixed], "has images both at its top (loose.png) and in class folders"),
        (["--images", train, "--test-images", unknown],
         "--test-images has class folder(s) that training does not: yak"),
        (["--images", broken], f"cannot read {broken / 'dog' / '003.png'}: "),
    ]


def test_class_folder_checks_exit_2_with_one_line_and_touch_nothing(tmp_path):
    data = tmp_path / "data"
    for arguments, message in _bad_layouts(data):
        before = tree(data)
        out = tmp_path / "out"
        code, stdout, stderr = compare(*arguments, "--out", out, *FAST)
        assert code == 2, (arguments, stderr)
        assert len(stderr.strip().splitlines()) == 1 and message in stderr, (message, stderr)
        assert not out.exists() and tree(data) == before


def test_patches_at_native_resolution_score_the_full_size_images(tmp_path):
    train, test = write_pairs(tmp_path / "train", 6), write_pairs(tmp_path / "test", 4, seed=1)
    out = tmp_path / "report"
    code, stdout, stderr = compare("--images", train / "images", "--masks", train / "masks",
                                   "--test-images", test / "images", "--test-masks", test / "masks",
                                   "--patch-size", "32", "--patches-per-image", "2", "--loss", "bce", "--loss", "dice",
                                   "--out", out, *FAST)
    assert code == 0, stderr
    assert "resized" not in stdout and "at their own sizes (40x56, 64x48)" in stdout
    assert "trained on 32x32 patches" in stdout and "sliding window (overlap 0.5)" in stdout
    document = json.loads((out / "results.json").read_text())
    comparison = document["segmentation"]
    assert comparison["ranked_by"] == "image_dice" and document["settings"]["segmentation"]["image_size"] is None
    for result in comparison["results"]:
        per_image = result["runs"][0]["per_image"]
        assert per_image["size"] == [list(SIZES[k % 2]) for k in range(4)]
        assert len(per_image["image_dice"]) == 4 and "dice" in result["runs"][0]["metrics"]
    for name in ("segmentation_precision_recall.png", "segmentation_predictions.png"):
        assert_png(out / name, png_size(out / name))


@pytest.mark.parametrize("extra, message", [
    (["--image-size", "32"], "--patch-size trains at native resolution, nothing is resized: leave out --image-size"),
    (["--no-resize"], "leave out --no-resize"),
    (["--patch-size", "20"], "--patch-size must be a multiple of 8 (the U-Net halves it 3 times), got 20"),
])
def test_patch_size_option_errors(tmp_path, extra, message):
    train = write_pairs(tmp_path / "train", 3)
    options = ["--patch-size", "16", *extra] if extra[0] != "--patch-size" else extra
    code, _, stderr = compare("--images", train / "images", "--masks", train / "masks", *options,
                              "--out", tmp_path / "out", *FAST)
    assert code == 2 and message in stderr and not (tmp_path / "out").exists()


def test_segmentation_options_without_masks_are_refused(long_tail, tmp_path, capsys):
    from seesaw_losses.cli import main

    train, _ = long_tail
    code = main(["compare", "--images", str(train), "--ignore-index", "255", "--no-resize", "--out",
                 str(tmp_path / "out"), *map(str, FAST)])
    stderr = capsys.readouterr().err
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "--ignore-index, --no-resize are for segmentation: give --masks too" in stderr
    assert not (tmp_path / "out").exists()
