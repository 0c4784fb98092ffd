"""Class-folder data (ImageFolder layout): checks, stratified splits, lazy reading, metrics, the trainer, plots."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seesaw_losses import adjust_logits
from seesaw_losses.experiments import DataError
from seesaw_losses.experiments.data.class_folders import ClassFolderDataset, load_class_folders
from seesaw_losses.experiments.data.groups import shot_groups
from seesaw_losses.experiments.data.splits import stratified_split
from seesaw_losses.experiments.reporting.class_plots import plot_accuracy_by_count, plot_confusion_matrix
from seesaw_losses.experiments.losses import build, parse_loss
from seesaw_losses.experiments.trainers import Budget
from seesaw_losses.experiments.trainers.classification import ClassificationTrainer, classification_scores
from trainer_support import make_run, one_thread  # noqa: F401 (an autouse fixture)

COUNTS = (30, 20, 10, 5, 2)
CLASSES = [f"class_{k}" for k in range(len(COUNTS))]


def _write(path: Path, label: int, rng: np.random.Generator, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 60, (16, 16)).astype(np.uint8)
    pixels[:, 3 * label:3 * label + 3] = 220  # a class-specific bright stripe
    Image.fromarray(pixels).convert(mode).save(path)


def make_folders(root: Path, counts=COUNTS, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label, count in enumerate(counts):
        for k in range(count):
            _write(root / CLASSES[label] / f"{k:03d}.png", label, rng, "RGB" if k == 0 else "L")
    return root


def _tree(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture
def folders(tmp_path):
    root = make_folders(tmp_path / "train")
    (root / ".DS_Store").write_bytes(b"\0junk")
    (root / CLASSES[0] / "._000.png").write_bytes(b"\0resource fork")
    (root / CLASSES[1] / "notes.txt").write_text("not an image")
    return root


def test_reads_classes_skips_hidden_files_and_splits_stratified(folders):
    data = load_class_folders(folders, test_fraction=0.2, val_fraction=0.2, seed=3)
    assert data.classes == CLASSES
    assert data.channels == 3  # one RGB image makes every image colour
    assert not any(p.name.startswith(".") for p in data.train.paths + data.validation.paths + data.test.paths)
    assert len(data.train) + len(data.validation) + len(data.test) == sum(COUNTS)
    assert (data.class_counts >= 1).all()  # every class keeps a training image
    assert data.class_counts.tolist() == np.bincount(data.train.labels).tolist()
    assert any("too few images to validate" in note and "class_4" in note for note in data.notes), data.notes
    assert "5 classes" in data.description


def test_stratified_split_keeps_one_sample_of_every_class():
    rng = np.random.default_rng(0)
    for trial in range(20):
        labels = rng.integers(0, 7, rng.integers(7, 60))
        fraction = rng.uniform(0.1, 0.9)
        kept, held = stratified_split(labels, fraction, trial)
        assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(labels)))
        assert set(labels[kept].tolist()) == set(labels.tolist())
        for label in np.unique(labels):
            n = int((labels == label).sum())
            assert (labels[held] == label).sum() == min(round(fraction * n), n - 1)
    assert (stratified_split(labels, 0.3, 5)[1] == stratified_split(labels, 0.3, 5)[1]).all()


def test_stratified_split_holds_out_a_minimum_per_class_where_half_the_class_remains():
    labels = np.repeat(np.arange(5), [100, 30, 10, 3, 1])
    kept, held = stratified_split(labels, 0.2, 0, minimum=5)
    assert np.bincount(labels[held], minlength=5).tolist() == [20, 6, 5, 1, 0]
    assert set(labels[kept].tolist()) == set(range(5))


def test_held_out_folder(folders, tmp_path):
    test_root = make_folders(tmp_path / "test", counts=(3, 3, 0, 3, 3), seed=1)
    data = load_class_folders(folders, test_root=test_root, val_fraction=0.2)
    assert len(data.test) == 12 and len(data.train) + len(data.validation) == sum(COUNTS)
    assert sorted(set(data.test.labels.tolist())) == [0, 1, 3, 4]
    assert any("no held-out images" in note and "class_2" in note for note in data.notes)


def _one_class(root):
    make_folders(root, counts=(4,))


def _empty_class(root):
    make_folders(root)
    (root / "empty").mkdir()
    (root / "empty" / ".DS_Store").write_bytes(b"\0")


def _loose_images(root):
    make_folders(root)
    _write(root / "stray.png", 0, np.random.default_rng(0))


def _unreadable(root):
    make_folders(root)
    (root / CLASSES[2] / "broken.png").write_bytes(b"this is not a PNG file")


@pytest.mark.parametrize("layout, message", [
    (_one_class, "1 class folder.*at least 2, one subfolder per class"),
    (_empty_class, "class folder.* without images: empty"),
    (_loose_images, "images both at its top \\(stray.png\\) and in class folders"),
    (_unreadable, "cannot read .*broken.png"),
])
@pytest.mark.parametrize("workers", [0, 1])
def test_data_checks_one_line_and_nothing_touched(tmp_path, layout, message, workers):
    root = tmp_path / "data"
    layout(root)
    before = _tree(tmp_path)
    with pytest.raises(DataError, match=message) as caught:
        load_class_folders(root, workers=workers)
    assert "\n" not in str(caught.value)
    assert _tree(tmp_path) == before


def test_test_class_missing_from_training(folders, tmp_path):
    test_root = make_folders(tmp_path / "test", counts=(2, 2), seed=1)
    _write(test_root / "zebra" / "0.png", 0, np.random.default_rng(0))
    before = _tree(tmp_path)
    with pytest.raises(DataError, match="test_root= has class folder.* that training does not: zebra"):
        load_class_folders(folders, test_root=test_root)
    assert _tree(tmp_path) == before


def test_dataset_reads_on_demand_resized_and_standardised(folders):
    data = load_class_folders(folders, image_size=8)
    dataset = ClassFolderDataset(data.test, data.channels, 8)
    image, label = dataset[0]
    assert image.shape == (3, 8, 8) and image.dtype == torch.float32
    assert label == int(data.test.labels[0])
    assert abs(float(image.mean())) < 1e-5 and abs(float(image.std()) - 1) < 1e-3


def test_shot_groups_follow_imagenet_lt():
    assert shot_groups([150, 101, 100, 20, 19, 1]) == {"many_shot": [0, 1], "medium_shot": [2, 3],
                                                       "few_shot": [4, 5]}


def test_scores_balanced_accuracy_adjusted_column_and_absent_classes():
    classes = ["a", "b", "c", "d"]
    counts = [200, 50, 10, 5]
    logits = torch.tensor([[3.0, 0, 0, 0], [2, 1.9, 0, 0], [0, 2, 0, 0], [1, 0, 0.5, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    labels = torch.tensor([0, 1, 1, 2, 3, 3])  # class "d" predicted wrongly once; no class is absent
    scores, arrays = classification_scores(logits, labels, classes, counts)
    per_class = [1.0, 0.5, 0.0, 0.5]
    assert scores["balanced_accuracy"] == pytest.approx(np.mean(per_class))
    assert scores["accuracy"] == pytest.approx(3 / 6)
    assert [scores[f"accuracy/{name}"] for name in classes] == pytest.approx(per_class)
    assert scores["many_shot_accuracy"] == 1.0 and scores["medium_shot_accuracy"] == 0.5
    assert scores["few_shot_accuracy"] == pytest.approx(0.25)
    adjusted = adjust_logits(logits, torch.tensor(counts)).argmax(1)
    assert arrays["correct_adjusted"].tolist() == (adjusted == labels).double().tolist()
    assert scores["accuracy_adjusted"] == pytest.approx(float((adjusted == labels).double().mean()))
    assert arrays["confusion"].sum() == 6 and arrays["confusion"][1, 0] == 1
    # class "c" without samples: no accuracy, left out of the balanced mean (it is predicted once)
    scores, _ = classification_scores(logits[[0, 1, 2, 4, 5]], labels[[0, 1, 2, 4, 5]], classes, counts)
    assert math.isnan(scores["accuracy/c"])
    assert scores["balanced_accuracy"] == pytest.approx(np.mean([1.0, 0.5, 0.5]))


@pytest.mark.parametrize("workers", [0, 1])
def test_trainer_final_run(folders, workers):
    data = load_class_folders(folders, image_size=16)
    trainer = ClassificationTrainer(data, Budget(epochs=1, batch_size=16, lr=1e-3), width=4, loader_workers=workers)
    run = make_run("seesaw", seed=1)
    criterion = build(parse_loss(run.loss), data.class_counts).module
    scores = trainer(criterion, run)
    for key in ("balanced_accuracy", "accuracy", "macro_f1", "few_shot_accuracy", "balanced_accuracy_adjusted",
                "few_shot_accuracy_adjusted", "accuracy/class_0", "accuracy/class_4"):
        assert key in scores
    assert len(run.history["train_loss"]) == 1 and len(run.history["validation"]) == 1
    correct, groups = run.samples["balanced_accuracy"]
    assert len(correct) == len(data.test) and groups.tolist() == data.test.labels.tolist()
    assert np.mean([np.mean([c for c, g in zip(correct, groups) if g == k]) for k in set(groups)]) \
        == pytest.approx(scores["balanced_accuracy"])
    assert run.artifacts["confusion"].shape == (5, 5)
    assert list(run.artifacts["per_class_accuracy"]) == CLASSES
    assert run.artifacts["outputs"].shape == (len(data.test), 5)
    assert run.artifacts["peak_mb"] > 0
    assert trainer.metric == "balanced_accuracy" and trainer.class_counts() == data.class_counts.tolist()


def test_trainer_tuning_run_scores_validation(folders):
    import pickle

    data = load_class_folders(folders, image_size=16)
    trainer = pickle.loads(pickle.dumps(ClassificationTrainer(data, Budget(epochs=1, batch_size=32, lr=1e-3),
                                                              width=4, loader_workers=0)))
    run = make_run("ce", tuning=True)
    scores = trainer(build(parse_loss("ce"), data.class_counts).module, run)
    assert scores["balanced_accuracy"] == run.history["validation"][-1]
    assert run.samples == {} and run.artifacts == {}
    with pytest.raises(ValueError, match="ClassificationTrainer: epochs must be a positive integer, got 0"):
        ClassificationTrainer(data, Budget(epochs=0, batch_size=8, lr=1e-3))


def test_plots_open_as_png(tmp_path):
    counts = [300, 120, 40, 12, 3]
    accuracies = {"seesaw": [0.9, 0.8, 0.6, 0.4, float("nan")], "ce": [0.95, 0.8, 0.5, 0.2, 0.0]}
    first = plot_accuracy_by_count(counts, accuracies, tmp_path / "per_class.png")
    confusion = np.diag([30, 12, 4, 2, 1]) + 1
    second = plot_confusion_matrix(confusion, [f"class {k}" for k in range(5)], tmp_path / "confusion.png")
    for path in (first, second):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 300
            assert len(set(np.asarray(image.convert("L")).ravel().tolist())) > 10  # not blank
