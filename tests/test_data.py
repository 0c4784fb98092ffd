import numpy as np
import pytest

from seesaw_losses.experiments.data.generated import FOREGROUND_RANGE, long_tail, vessel_dataset, vessels


@pytest.fixture(scope="module")
def split():
    return vessels(24, size=64, seed=3)


def test_vessels_shapes_and_binary_masks(split):
    assert split.images.shape == (24, 1, 64, 64) and split.images.dtype == np.float32
    assert split.masks.shape == (24, 64, 64) and set(np.unique(split.masks)) == {0, 1}
    assert len(split.names) == 24 and len(set(split.names)) == 24
    assert np.isfinite(split.images).all()


def test_vessels_foreground_is_sparse_in_every_image(split):
    fractions = split.masks.mean(axis=(1, 2))
    low, high = FOREGROUND_RANGE
    assert ((fractions >= low) & (fractions <= high)).all(), fractions


def test_vessels_are_thin_structures_not_blobs(split):
    # Thin curves: most foreground pixels touch the background within 2 pixels (a blob's interior would not).
    mask = split.masks.astype(bool)
    padded = np.pad(mask, ((0, 0), (2, 2), (2, 2)))
    interior = np.ones_like(mask)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            interior &= padded[:, 2 + dy:66 + dy, 2 + dx:66 + dx]
    assert interior.sum() < 0.1 * mask.sum()


def test_vessels_are_visible_in_the_image(split):
    # Foreground pixels differ from the background on average (dark, or bright in flipped images).
    gaps = [abs(img[0][m == 1].mean() - img[0][m == 0].mean()) for img, m in zip(split.images, split.masks)]
    assert np.median(gaps) > 0.5


def test_vessels_are_deterministic_per_seed():
    a, b, c = vessels(4, size=32, seed=7), vessels(4, size=32, seed=7), vessels(4, size=32, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.masks, c.masks)


def test_vessel_dataset_splits_are_independent():
    data = vessel_dataset(10, 3, size=32, seed=0)
    assert data.binary and data.num_classes == 2 and data.channels == 1
    assert len(data.train) == 8 and len(data.validation) == 2 and len(data.test) == 3
    assert not set(data.train.names) & set(data.validation.names)
    assert not np.array_equal(data.train.masks[:3], data.test.masks)
    assert "foreground" in data.description


def test_long_tail_is_imbalanced_with_a_balanced_test_set():
    data = long_tail(seed=0)
    counts = np.bincount(data.train_y, minlength=data.num_classes)
    np.testing.assert_array_equal(counts, data.class_counts)
    assert counts[0] / counts[-1] >= 50
    assert (np.diff(counts) <= 0).all()
    assert len(set(np.bincount(data.test_y))) == 1
    assert (np.bincount(data.val_y, minlength=data.num_classes) < data.class_counts).all()
    assert len(data.val_y) > 0.15 * (len(data.val_y) + len(data.train_y))
    groups = data.groups
    assert sorted(groups["many_shot"] + groups["medium_shot"] + groups["few_shot"]) == list(range(data.num_classes))
    assert all(groups[name] for name in ("many_shot", "medium_shot", "few_shot"))
    again = long_tail(seed=0)
    np.testing.assert_array_equal(data.train_x, again.train_x)


def test_every_layout_splits_by_class_and_standardises_images_through_one_function(tmp_path, monkeypatch):
    from PIL import Image

    from seesaw_losses.experiments.data import generated, pairs, splits

    calls = []

    def counted(function):
        def call(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(generated, "stratified_split", counted(splits.stratified_split))
    data = long_tail(num_classes=4, largest=40, imbalance=10, test_per_class=5)
    assert calls == ["stratified_split"]
    held = np.bincount(data.val_y, minlength=4)
    assert (held == np.round(0.2 * (data.class_counts + held))).all()  # round(val_fraction * n) of each class

    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(tmp_path / "images" / f"{k}.png")
        Image.fromarray((rng.random((20, 24)) < 0.3).astype(np.uint8) * 255).save(tmp_path / "masks" / f"{k}.png")
    monkeypatch.setattr(pairs, "standardised", counted(pairs.standardised))
    pairs.load_user_data(tmp_path / "images", tmp_path / "masks", size=16, test_fraction=0.25)
    assert calls[1:] == ["standardised"] * 4
