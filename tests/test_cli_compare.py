import numpy as np
import pytest
from PIL import Image

from cli_checks import assert_png, inches, load_results
from seesaw_losses.cli import main
from seesaw_losses.experiments.data import vessels
from seesaw_losses.experiments.report import prediction_grid_size

FAST = ["--epochs", "1", "--image-size", "32", "--width", "4", "--no-progress", "--threads", "1"]


def to_uint8(image):
    low, high = image.min(), image.max()
    return ((image - low) / (high - low) * 255).astype(np.uint8)


@pytest.fixture
def folders(tmp_path):
    """Six 40x40 grayscale PNG images with 0/255 PNG masks, paired by name."""
    split = vessels(6, size=40, seed=5)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name, image, mask in zip(split.names, split.images, split.masks):
        Image.fromarray(to_uint8(image[0])).save(images / f"{name}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(masks / f"{name}.png")
    return images, masks


def run(capsys, *argv):
    code = main(["compare", *map(str, argv)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_compare_binary_png_masks(folders, tmp_path, capsys):
    images, masks = folders
    out = tmp_path / "report"
    code, stdout, _ = run(capsys, "--images", images, "--masks", masks, "--loss", "bce", "--loss",
                          "focal:gamma=2", "--loss", "binary_seesaw:p=0.8,q=2", "--out", out, *FAST)
    assert code == 0
    assert "binary masks" in stdout and "ranked by Dice/F1" in stdout
    assert "validation: 1 of 6 pairs held out" in stdout
    document = load_results(out / "results.json")
    assert {r["loss"] for r in document["segmentation"]["results"]} == {"bce", "focal:gamma=2",
                                                                       "binary_seesaw:p=0.8,q=2"}
    assert_png(out / "segmentation_curves.png", inches(11, 4))
    assert_png(out / "segmentation_precision_recall.png", inches(6, 5))
    assert_png(out / "segmentation_predictions.png", inches(*prediction_grid_size(1, 3)))


def test_compare_index_masks_npy_rgb_and_a_validation_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (tmp_path / split / "img").mkdir(parents=True)
        (tmp_path / split / "lbl").mkdir(parents=True)
        for k in range(4 if split == "train" else 2):
            mask = np.zeros((24, 24), dtype=np.int64)
            mask[4:10, 4:10] = 1
            mask[14:20, 12:22] = 2
            image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            image[mask == 1] //= 3
            Image.fromarray(image).save(tmp_path / split / "img" / f"{k}.jpg")
            np.save(tmp_path / split / "lbl" / f"{k}.npy", mask)
    out = tmp_path / "report"
    code, stdout, _ = run(capsys, "--images", tmp_path / "train/img", "--masks", tmp_path / "train/lbl",
                          "--val-images", tmp_path / "val/img", "--val-masks", tmp_path / "val/lbl",
                          "--loss", "ce", "--loss", "seesaw", "--loss", "dice:activation=softmax", "--out", out,
                          *FAST)
    assert code == 0
    assert "3-class index masks" in stdout and "ranked by mIoU" in stdout
    document = load_results(out / "results.json")
    assert len(document["segmentation"]["results"][0]["metrics"]["per_class_iou"]) == 3
    assert_png(out / "segmentation_predictions.png", inches(*prediction_grid_size(2, 3)))


def test_compare_binary_loss_on_index_masks_is_refused(tmp_path, capsys):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    for k in range(3):
        np.save(tmp_path / "i" / f"{k}.npy", np.zeros((16, 16), dtype=np.float32))
        np.save(tmp_path / "m" / f"{k}.npy", np.full((16, 16), k, dtype=np.uint8))
    code, _, err = run(capsys, "--images", tmp_path / "i", "--masks", tmp_path / "m", "--loss", "bce",
                       "--out", tmp_path / "r", *FAST)
    assert code == 2 and "is a binary (one-logit) loss but the labels have 3 classes" in err


def write_bad(images, masks, case):
    name = sorted(p.stem for p in images.iterdir())[0]
    if case == "unpaired":
        (masks / f"{name}.png").unlink()
    elif case == "size":
        Image.fromarray(np.zeros((40, 30), dtype=np.uint8)).save(masks / f"{name}.png")
    elif case == "fractional":
        (masks / f"{name}.png").unlink()
        np.save(masks / f"{name}.npy", np.full((40, 40), 0.5, dtype=np.float32))
    elif case == "grayscale":
        Image.fromarray(np.arange(1600).reshape(40, 40).astype(np.uint8)).save(masks / f"{name}.png")
    elif case == "colour":
        colour = np.zeros((40, 40, 3), dtype=np.uint8)
        colour[..., 0] = 200
        Image.fromarray(colour).save(masks / f"{name}.png")
    elif case == "corrupt":
        (images / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    elif case == "empty npy":
        (images / f"{name}.png").unlink()
        (images / f"{name}.npy").write_bytes(b"garbage")


@pytest.mark.parametrize("case, message", [
    ("unpaired", "unpaired files"),
    ("size", "is 40x30 (HxW) but its image"),
    ("fractional", "neither binary (0/1, 0/255) nor class indices"),
    ("grayscale", "neither binary (0/1, 0/255) nor class indices below 64"),
    ("colour", "is a colour image"),
    ("corrupt", "cannot read"),
    ("empty npy", "cannot read"),
])
def test_compare_bad_files(folders, tmp_path, capsys, case, message):
    images, masks = folders
    write_bad(images, masks, case)
    code, _, err = run(capsys, "--images", images, "--masks", masks, "--out", tmp_path / "r", *FAST)
    assert code == 2
    assert err.startswith("seesaw compare: error: ") and message in err


def test_compare_missing_folders_and_options(folders, tmp_path, capsys):
    images, masks = folders
    cases = [
        (["--images", tmp_path / "nope", "--masks", masks], "--images folder"),
        (["--images", images, "--masks", tmp_path / "nope"], "does not exist"),
        (["--images", images, "--masks", masks, "--val-images", images], "give both --val-images and --val-masks"),
        (["--images", images, "--masks", masks, "--image-size", "30"], "--image-size must be a multiple of 8"),
        (["--images", images, "--masks", masks, "--val-fraction", "1.5"], "--val-fraction must be between"),
        (["--images", images, "--masks", masks, "--loss", "focal:gamma=-1"], "gamma"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, "--out", tmp_path / "r", *FAST, *argv)
        assert code == 2 and message in err, (argv, err)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "--images", empty, "--masks", masks, "--out", tmp_path / "r", *FAST)
    assert code == 2 and "has no image files" in err


def test_compare_refuses_a_non_empty_output_without_force(folders, tmp_path, capsys):
    images, masks = folders
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "--images", images, "--masks", masks, "--out", out, "--loss", "bce", *FAST)
    assert code == 2 and "is not empty; pass --force" in err
    code, _, _ = run(capsys, "--images", images, "--masks", masks, "--out", out, "--loss", "bce", "--force", *FAST)
    assert code == 0 and (out / "keep.txt").read_text() == "mine" and (out / "results.json").exists()
