"""Repeat-factor sampling: the LVIS factors, the sampler's statistics, shards and determinism, errors."""

import math

import pytest
import torch

from seesaw_losses.sampling import RepeatFactorSampler, repeat_factors

from long_tail_references import repeat_factors_reference

# 10 images of a detection set: class 0 everywhere, class 1 in two, class 2 in one, one image without boxes
IMAGES = [[0], [0, 1], [0], [0, 2, 0], [0], [0], [1, 0], [0], [], [0]]


def test_repeat_factors_by_hand_and_against_the_papers_formula():
    factors = repeat_factors(IMAGES, threshold=0.3)
    # f_0 = 0.9 -> 1; f_1 = 0.2 -> sqrt(1.5); f_2 = 0.1 -> sqrt(3); an image takes its rarest class's factor
    expected = [1, math.sqrt(1.5), 1, math.sqrt(3), 1, 1, math.sqrt(1.5), 1, 1, 1]
    torch.testing.assert_close(factors, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(factors, torch.tensor(repeat_factors_reference(IMAGES, 0.3), dtype=torch.float64))
    classes = torch.tensor([0] * 97 + [1, 1, 2])
    torch.testing.assert_close(repeat_factors(classes, 1e-3), torch.ones(100, dtype=torch.float64))
    torch.testing.assert_close(repeat_factors(classes, 0.04)[-3:],
                               torch.tensor([math.sqrt(2), math.sqrt(2), 2.0], dtype=torch.float64))
    assert torch.equal(repeat_factors([{1, 2}, (2,), torch.tensor([1])], 1.0),
                       torch.tensor(repeat_factors_reference([[1, 2], [2], [1]], 1.0), dtype=torch.float64))


@pytest.fixture
def one_thread():
    """Tiny tensors, many epochs: keep the intra-op thread pool (and its wake-ups) out of the loop."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_each_sample_appears_as_often_as_its_factor(one_thread):
    sampler = RepeatFactorSampler(IMAGES, threshold=0.3, seed=7, shuffle=False)
    epochs = 20000  # > 4 standard deviations of the mean below 1% for every factor here
    seen = torch.zeros(len(IMAGES), dtype=torch.float64)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        seen += torch.bincount(sampler.epoch_indices(), minlength=len(IMAGES))
    factors = repeat_factors(IMAGES, threshold=0.3)
    assert bool(((seen / epochs - factors).abs() <= 0.01 * factors).all()), seen / epochs


def test_same_seed_and_epoch_same_order_and_every_sample_at_least_floor_times():
    a, b = RepeatFactorSampler(IMAGES, threshold=0.3, seed=3), RepeatFactorSampler(IMAGES, threshold=0.3, seed=3)
    a.set_epoch(5)
    b.set_epoch(5)
    assert list(a) == list(b)
    b.set_epoch(6)
    assert list(a) != list(b)
    assert list(RepeatFactorSampler(IMAGES, threshold=0.3, seed=4)) != list(RepeatFactorSampler(IMAGES, threshold=0.3))
    counts = torch.bincount(torch.tensor(list(a)), minlength=len(IMAGES))
    assert bool((counts >= repeat_factors(IMAGES, 0.3).floor()).all()) and len(a) == len(list(a))


@pytest.mark.parametrize("replicas", [2, 3])
def test_shards_are_disjoint_equal_and_cover_the_epoch_once(replicas):
    labels = torch.tensor([0] * 40 + [1] * 3 + [2])
    for epoch in range(4):
        shards = []
        for rank in range(replicas):
            sampler = RepeatFactorSampler(labels, threshold=0.2, seed=1, num_replicas=replicas, rank=rank)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
            assert len(sampler) == len(shards[-1])
        whole = RepeatFactorSampler(labels, threshold=0.2, seed=1)
        whole.set_epoch(epoch)
        epoch_list = whole.epoch_indices().tolist()
        assert len({len(s) for s in shards}) == 1
        interleaved = [shards[i % replicas][i // replicas] for i in range(replicas * len(shards[0]))]
        assert interleaved[:len(epoch_list)] == epoch_list           # each position of the list taken once
        assert interleaved[len(epoch_list):] == epoch_list[:len(interleaved) - len(epoch_list)]  # the padding


def test_drives_a_data_loader():
    sampler = RepeatFactorSampler([0] * 30 + [1, 1], threshold=0.25)
    loader = torch.utils.data.DataLoader(list(range(32)), sampler=sampler, batch_size=8)
    seen = torch.cat(list(loader))
    assert len(seen) == len(sampler) and (seen >= 30).sum() >= 4      # each rare sample at least twice


def test_bad_input_raises_the_library_errors():
    with pytest.raises(ValueError, match=r"repeat_factors: threshold must be in \(0, 1\], got 0"):
        repeat_factors(IMAGES, 0)
    with pytest.raises(ValueError, match=r"RepeatFactorSampler: threshold must be in \(0, 1\], got 1.5"):
        RepeatFactorSampler(IMAGES, threshold=1.5)
    with pytest.raises(ValueError, match=r"repeat_factors: labels\[1\] must be class indices >= 0, got \[0, -1\]"):
        repeat_factors([[0], [0, -1]])
    with pytest.raises(ValueError, match=r"RepeatFactorSampler: labels\[3\] must be class indices in \[0, 1\]"):
        RepeatFactorSampler(IMAGES, num_classes=2)
    with pytest.raises(TypeError, match="repeat_factors: labels must be a 1-D integer tensor"):
        repeat_factors(torch.rand(5))
    with pytest.raises(ValueError, match=r"RepeatFactorSampler: rank must be in \[0, 1\] for num_replicas=2, got 2"):
        RepeatFactorSampler(IMAGES, num_replicas=2, rank=2)
