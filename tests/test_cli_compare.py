import csv
import json

import numpy as np
import pytest
from PIL import Image

from cli_checks import assert_png, inches, load_results
from seesaw_losses.cli import main
from seesaw_losses.experiments.data.generated import vessels
from seesaw_losses.experiments.reporting.plots import per_class_size, prediction_grid_size

FAST = ["--epochs", "1", "--image-size", "32", "--width", "4", "--no-progress", "--threads", "1", "--seeds", "1"]


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


def snapshot(*folders):
    """Every file under the folders with its size and modification time: what 'touching nothing' compares."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for f in folders for p in sorted(f.rglob("*"))}


def test_compare_binary_over_seeds_writes_tables_report_and_winner(folders, tmp_path, capsys):
    images, masks = folders
    out = tmp_path / "report"
    code, stdout, _ = run(capsys, "--images", images, "--masks", masks, "--loss", "bce", "--loss",
                          "focal:gamma=2", "--loss", "binary_seesaw:p=0.8,q=2", "--out", out, *FAST, "--seeds", "2")
    assert code == 0
    assert "binary masks" in stdout and "ranked by Dice/img" in stdout and "validation split" in stdout
    assert "held out: 1 of 6 pairs" in stdout and "validation: 1 of the 5 training pairs" in stdout
    assert "±" in stdout and "Recommendation: " in stdout and "Dice@0.5" in stdout
    assert stdout.rstrip().splitlines()[-1].startswith("    criterion = seesaw_losses.build_loss(")
    document = load_results(out / "results.json")
    results = document["segmentation"]["results"]
    assert {r["loss"] for r in results} == {"bce", "focal:gamma=2", "binary_seesaw:p=0.8,q=2"}
    for result in results:
        assert [run["seed"] for run in result["runs"]] == [0, 1]
        assert {"image_dice", "dice", "dice@0.5", "threshold", "average_precision", "surface_dice@1px",
                "surface_dice@2px"} <= set(result["summary"])
        assert 0 <= result["best_fraction"] <= 1 and result["equivalent"] in (True, False)
        assert result["epoch_seconds"] > 0 and result["peak_mb"] > 0
    with open(out / "segmentation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"dice", "dice_ci_low", "dice_ci_high", "epoch_seconds", "peak_mb", "tied"} <= set(rows[0])
    winner = json.loads((out / "winner.json").read_text())
    assert set(winner) == {"loss", "metric", "mean", "ci95", "best_fraction", "tied", "equivalent", "hyperparameters"}
    assert winner["metric"] == "image_dice" and document["segmentation"]["margin"] == 0.005
    report = (out / "report.md").read_text()
    for image in ("segmentation_curves.png", "segmentation_precision_recall.png", "segmentation_predictions.png"):
        assert f"]({image})" in report
    assert "| Loss |" in report and "Recommendation" in report and "Topology and costs:" in report
    assert "At threshold 0.5:" in report and "| Best in | vs best |" in report
    assert_png(out / "segmentation_curves.png", inches(11, 4))
    assert_png(out / "segmentation_precision_recall.png", inches(6, 5))
    assert_png(out / "segmentation_predictions.png", inches(*prediction_grid_size(1, 3)))


def test_compare_index_masks_per_class_table_and_a_test_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (tmp_path / split / "img").mkdir(parents=True)
        (tmp_path / split / "lbl").mkdir(parents=True)
        for k in range(4 if split == "train" else 2):
            mask = np.zeros((24, 24), dtype=np.int64)
            mask[4:10, 4:10] = 1
            if split == "train":  # class 2 is absent from the held-out masks
                mask[14:20, 12:22] = 2
            image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            image[mask == 1] //= 3
            Image.fromarray(image).save(tmp_path / split / "img" / f"{k}.jpg")
            np.save(tmp_path / split / "lbl" / f"{k}.npy", mask)
    out = tmp_path / "report"
    code, stdout, _ = run(capsys, "--images", tmp_path / "train/img", "--masks", tmp_path / "train/lbl",
                          "--test-images", tmp_path / "test/img", "--test-masks", tmp_path / "test/lbl",
                          "--loss", "ce", "--loss", "dice:activation=softmax", "--out", out, *FAST)
    assert code == 0
    assert "3-class index masks" in stdout and "ranked by mIoU/img" in stdout and "IoU 2" in stdout
    assert "Your data: per class" in stdout and "threshold 0.5" not in stdout
    document = load_results(out / "results.json")
    for result in document["segmentation"]["results"]:
        scores = result["runs"][0]["metrics"]
        present = [scores[f"iou/{c}"] for c in range(3) if scores[f"iou/{c}"] is not None]
        assert scores["mean_iou"] == pytest.approx(np.mean(present))  # an absent class is not scored 1
    assert_png(out / "segmentation_per_class.png", inches(*per_class_size(3, 2)))


def test_compare_binary_loss_on_index_masks_is_refused(tmp_path, capsys):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    for k in range(3):
        np.save(tmp_path / "i" / f"{k}.npy", np.zeros((16, 16), dtype=np.float32))
        np.save(tmp_path / "m" / f"{k}.npy", np.full((16, 16), k, dtype=np.uint8))
    code, _, err = run(capsys, "--images", tmp_path / "i", "--masks", tmp_path / "m", "--loss", "bce",
                       "--out", tmp_path / "r", *FAST)
    assert code == 2 and "is a binary (one-logit) loss but the labels have 3 classes" in err
    assert not (tmp_path / "r").exists()


def instance_mask(name_index):
    mask = np.zeros((40, 40), dtype=np.uint16)
    for label in range(1, 7 + name_index % 3):
        y, x = divmod(label * 5, 40)
        mask[y:y + 4, x:x + 4] = label
    return mask


def write_bad(images, masks, case):
    names = sorted(p.stem for p in images.iterdir())
    name = names[0]
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
    elif case == "instances":
        for k, other in enumerate(names):
            Image.fromarray(instance_mask(k)).save(masks / f"{other}.png")
    elif case == "jpeg":
        (masks / f"{name}.png").rename(masks / f"{name}.jpg")
    elif case == "skip value":
        mask = np.asarray(Image.open(masks / f"{name}.png")) // 255
        mask[:5] = 255
        Image.fromarray(mask.astype(np.uint8)).save(masks / f"{name}.png")


@pytest.mark.parametrize("case, message", [
    ("unpaired", "unpaired files"),
    ("size", "is 40x30 (HxW) but its image"),
    ("fractional", "neither binary (0/1, 0/255) nor class indices"),
    ("grayscale", "neither binary (0/1, 0/255) nor class indices below 64"),
    ("colour", "is a colour image"),
    ("corrupt", "cannot read"),
    ("empty npy", "cannot read"),
    ("instances", "looks like an instance-label mask (6 labels, each one connected blob"),
    ("jpeg", "is a JPEG: lossy compression changes mask values"),
    ("skip value", "pixels to skip (--ignore-index 255)"),
])
def test_compare_bad_files_exit_2_and_touch_nothing(folders, tmp_path, capsys, case, message):
    images, masks = folders
    write_bad(images, masks, case)
    before = snapshot(images, masks)
    code, _, err = run(capsys, "--images", images, "--masks", masks, "--out", tmp_path / "r", *FAST)
    assert code == 2
    assert err.startswith("seesaw compare: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert snapshot(images, masks) == before and not (tmp_path / "r").exists()


@pytest.mark.parametrize("case, option, expected", [
    ("instances", ["--mask-mode", "binary"], "binary masks"),
    ("jpeg", ["--allow-lossy-masks"], "binary masks"),
    ("skip value", ["--ignore-index", "255"], "255 skipped in"),
])
def test_compare_options_that_accept_the_refused_masks(folders, tmp_path, capsys, case, option, expected):
    images, masks = folders
    write_bad(images, masks, case)
    code, stdout, _ = run(capsys, "--images", images, "--masks", masks, "--out", tmp_path / "r", "--loss", "bce",
                          "--loss", "dice", *FAST, *option)
    assert code == 0 and expected in stdout
    if case == "skip value":
        winner = json.loads((tmp_path / "r" / "winner.json").read_text())
        assert "ignore_index=255" in winner["loss"]


def test_compare_resizes_with_a_note_or_refuses_with_no_resize(folders, tmp_path, capsys):
    images, masks = folders
    name = sorted(p.stem for p in images.iterdir())[0]
    Image.fromarray(np.full((48, 40), 90, dtype=np.uint8)).save(images / f"{name}.png")
    Image.fromarray(np.zeros((48, 40), dtype=np.uint8)).save(masks / f"{name}.png")
    (images / "._ghost.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (masks / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (images / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    code, _, err = run(capsys, "--images", images, "--masks", masks, "--out", tmp_path / "r", *FAST, "--no-resize")
    assert code == 2 and "images differ in size (40x40 (5), 48x40 (1))" in err
    code, stdout, _ = run(capsys, "--images", images, "--masks", masks, "--out", tmp_path / "r", "--loss", "bce",
                          *FAST)
    assert code == 0
    assert "images of 2 size(s)" in stdout and "resized to 32x32" in stdout
    assert "skipped 3 hidden file(s): .DS_Store, ._ghost.png, Thumbs.db" in stdout


def test_compare_options_and_folders(folders, tmp_path, capsys):
    images, masks = folders
    cases = [
        (["--images", tmp_path / "nope", "--masks", masks], "--images folder"),
        (["--images", images, "--masks", tmp_path / "nope"], "does not exist"),
        (["--images", images, "--masks", masks, "--test-images", images], "give both --test-images and --test-masks"),
        (["--images", images, "--masks", masks, "--image-size", "30"], "--image-size must be a multiple of 8"),
        (["--images", images, "--masks", masks, "--test-fraction", "1.5"], "--test-fraction must be between"),
        (["--images", images, "--masks", masks, "--loss", "focal:gamma=-1"], "gamma"),
        (["--images", images, "--masks", masks, "--storage", "postgresql://db/x"], "need --artifacts FOLDER"),
        (["--images", images, "--masks", masks, "--tune", "2", "--resume"], "no study to continue"),
        (["--images", images, "--masks", masks, "--tune", "1", "--storage", "nosuchdb://x", "--artifacts",
          tmp_path / "a"], "cannot be opened"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, "--out", tmp_path / "r", *FAST, *argv)
        assert code == 2 and message in err, (argv, err)
        assert not (tmp_path / "r").exists()
    before = snapshot(images, masks)
    code, _, err = run(capsys, "--images", images, "--masks", masks, "--out", images / "report", *FAST)
    assert code == 2 and "is inside the input folder" in err and snapshot(images, masks) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "--images", empty, "--masks", masks, "--out", tmp_path / "r", *FAST)
    assert code == 2 and "has no image files" in err


def test_a_failed_run_leaves_no_report_only_its_study(folders, tmp_path, capsys, monkeypatch):
    from seesaw_losses.experiments import DataError
    from seesaw_losses.experiments.trainers import SegmentationTrainer

    def diverge(self, criterion, run):
        raise DataError("bce: the loss became nan during training; try a smaller --lr")

    monkeypatch.setattr(SegmentationTrainer, "__call__", diverge)
    images, masks = folders
    code, _, err = run(capsys, "--images", images, "--masks", masks, "--out", tmp_path / "r", "--loss", "bce",
                       *FAST)
    assert code == 2 and "the loss became nan" in err
    # the study stays, so that --resume trains only what is missing; no report is written
    assert {path.name for path in (tmp_path / "r").iterdir()} <= {"study.db", "study-artifacts"}


def test_compare_refuses_a_non_empty_output_without_force(folders, tmp_path, capsys):
    images, masks = folders
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "--images", images, "--masks", masks, "--out", out, "--loss", "bce", *FAST)
    assert code == 2 and "is not empty; pass --force" in err
    code, _, _ = run(capsys, "--images", images, "--masks", masks, "--out", out, "--loss", "bce", "--force", *FAST)
    assert code == 0 and (out / "keep.txt").read_text() == "mine" and (out / "results.json").exists()


def test_split_seed_keeps_the_splits_when_seed_changes(folders, tmp_path, capsys, monkeypatch):
    from seesaw_losses.experiments.trainers import SegmentationTrainer

    seen = []
    train = SegmentationTrainer.__call__

    def recording(self, criterion, run):
        seen.append((run.seed, tuple(self.data.validation.names), tuple(self.data.test.names)))
        return train(self, criterion, run)

    monkeypatch.setattr(SegmentationTrainer, "__call__", recording)
    images, masks = folders
    splits = {}
    for seed, split_seed in ((0, 0), (1, 0), (0, 3)):
        seen.clear()
        code, stdout, _ = run(capsys, "--images", images, "--masks", masks, "--loss", "bce", "--seed", seed,
                              "--split-seed", split_seed, "--out", tmp_path / f"r{seed}{split_seed}", *FAST)
        assert code == 0 and f"(split seed {split_seed})" in stdout
        assert [s[0] for s in seen] == [seed]  # --seed: the runs' initialisation and order
        splits[seed, split_seed] = seen[0][1:]
    assert splits[0, 0] == splits[1, 0]  # --seed alone leaves the validation and held-out images where they were
    assert splits[0, 3] != splits[0, 0]  # --split-seed moves them


def test_margin_and_tolerance_reach_the_statistics_and_the_topology_metrics(folders, tmp_path, capsys):
    images, masks = folders
    out = tmp_path / "r"
    code, stdout, _ = run(capsys, "--images", images, "--masks", masks, "--loss", "bce", "--loss", "dice",
                          "--margin", "1", "--tolerance", "1.5", "--tolerance", "3", "--out", out, *FAST,
                          "--seeds", "2")
    assert code == 0 and "SDice@1.5px" in stdout and "SDice@3px" in stdout and "SDice@1px" not in stdout
    document = load_results(out / "results.json")
    comparison = document["segmentation"]
    assert comparison["margin"] == 1.0 and document["settings"]["segmentation"]["tolerances"] == [1.5, 3.0]
    for result in comparison["results"]:
        assert {"surface_dice@1.5px", "surface_dice@3px"} <= set(result["summary"])
        assert "surface_dice@1px" not in result["summary"]
        assert len(result["runs"][0]["per_image"]["surface_dice@3px"]) == 1
        assert result["equivalent"] == result["tied"]  # every tied loss lies within a margin of 1
    assert "upper bound on the deficit to the best is within 1;" in comparison["statistics"]
    for argv, message in ((["--margin", "-0.1"], "expected a number >= 0"),
                          (["--tolerance", "0"], "expected a number > 0")):
        with pytest.raises(SystemExit) as exit_code:
            main(["compare", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "bad"), *argv])
        assert exit_code.value.code == 2 and message in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_default_size_header_and_log_line_per_run(folders, tmp_path, capsys):
    images, masks = folders  # 40x40 images: the default size is theirs, not 128
    code, stdout, err = run(capsys, "--images", images, "--masks", masks, "--loss", "bce", "--epochs", "1",
                            "--width", "4", "--threads", "1", "--seeds", "1", "--out", tmp_path / "r")
    assert code == 0 and "resized to 40x40" in stdout and "up-sampled" not in stdout
    assert "1 seed(s), on cpu, 1 thread" in stdout
    line = next(line for line in err.splitlines() if line.startswith("bce · seed 1/1: "))
    assert line.startswith("bce · seed 1/1: image_dice 0.") or line.startswith("bce · seed 1/1: image_dice 1.")
    document = load_results(tmp_path / "r" / "results.json")
    assert document["settings"]["segmentation"]["image_size"] == "auto"
