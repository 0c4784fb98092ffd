import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import seesaw_losses as sl
from seesaw_losses.functional import (
    blended_weights, class_balanced_weights, class_counts, class_weights, inverse_frequency_weights,
    inverse_sqrt_weights, pos_weight_from_counts,
)


def effective_number_weights(samples_per_cls, beta):
    """Cui et al.'s weights in float64: (1 - beta) / (1 - beta^n), scaled to sum to the class count."""
    effective_num = 1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64),
                                     torch.tensor(samples_per_cls, dtype=torch.float64))
    weights = (1.0 - beta) / effective_num
    return weights / weights.sum() * len(samples_per_cls)


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999, 0.9999])
def test_class_balanced_matches_float64_reference(beta):
    counts = [12000, 3000, 400, 25, 1]
    torch.testing.assert_close(class_balanced_weights(torch.tensor(counts), beta),
                               effective_number_weights(counts, beta).float())


def test_identities_and_sums():
    counts = torch.tensor([500, 50, 5])
    torch.testing.assert_close(class_balanced_weights(counts, 0.0), torch.ones(3))
    torch.testing.assert_close(blended_weights(counts, 0.0), torch.ones(3))
    torch.testing.assert_close(blended_weights(counts, 1.0), inverse_frequency_weights(counts))
    torch.testing.assert_close(inverse_frequency_weights(counts), torch.tensor([0.01, 0.1, 1.0]) * 3 / 1.11)
    r = torch.tensor([500.0, 50, 5]).rsqrt()
    torch.testing.assert_close(inverse_sqrt_weights(counts), r * 3 / r.sum())
    for strategy in ("class_balanced", "inverse_frequency", "inverse_sqrt", "blended", "uniform"):
        w = class_weights(counts, strategy, beta=0.99)
        assert w.dtype == torch.float32 and abs(w.sum().item() - 3) < 1e-5
    # beta -> 1 approaches inverse frequency
    torch.testing.assert_close(class_balanced_weights(counts, 1 - 1e-9), inverse_frequency_weights(counts),
                               rtol=1e-4, atol=1e-5)


def test_empty_classes_explicit_not_nan():
    counts = [1000, 0, 10]
    w_max = class_balanced_weights(counts, 0.999)
    assert torch.isfinite(w_max).all() and w_max[1] == w_max[2]
    w_zero = class_balanced_weights(counts, 0.999, empty_classes="zero")
    assert w_zero[1] == 0 and abs(w_zero.sum().item() - 3) < 1e-5
    assert (inverse_frequency_weights([0, 0]) == 1).all()


def test_pos_weight_from_counts():
    torch.testing.assert_close(pos_weight_from_counts(torch.tensor([10, 0, 5]), torch.tensor([90, 7, 5])),
                               torch.tensor([9.0, 1.0, 1.0]))
    torch.testing.assert_close(pos_weight_from_counts(1, 1000, max_weight=50.0), torch.tensor(50.0))


class _Masks(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        mask = torch.full((3, 3), i % 3)
        mask[0, 0] = 255
        return torch.zeros(1, 3, 3), mask


def test_class_counts_dataset_loader_and_dicts():
    expected = torch.tensor([16, 8, 8])
    assert torch.equal(class_counts(_Masks(), 3, ignore_index=255, progress=False), expected)
    loader = DataLoader(_Masks(), batch_size=3)
    assert torch.equal(class_counts(loader, 3, ignore_index=255), expected)
    items = [{"image": None, "mask": torch.tensor([[0.0, 1.0]])}, {"mask": torch.tensor([[1.0, 1.0]])}]
    assert torch.equal(class_counts(items, 2, progress=False), torch.tensor([1, 3]))
    assert torch.equal(class_counts([torch.tensor([1, 2])], 3, get_target=lambda m: m + 0, progress=False),
                       torch.tensor([0, 1, 1]))


def test_bad_input():
    with pytest.raises(ValueError, match="class_counts must be non-negative"):
        class_balanced_weights([5, -1], 0.9)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        class_balanced_weights([5, 1], 1.0)
    with pytest.raises(ValueError, match="strategy must be one of .*did you mean 'inverse_sqrt'"):
        class_weights([5, 1], "inverse_sqr")
    with pytest.raises(ValueError, match="empty_classes must be one of"):
        class_balanced_weights([5, 0], 0.9, empty_classes="min")
    with pytest.raises(ValueError, match="pass ignore_index=255"):
        class_counts(_Masks(), 3, progress=False)
    with pytest.raises(ValueError, match="binarise them first"):
        class_counts([torch.tensor([0.5])], 2, progress=False)
    with pytest.raises(TypeError, match="class_counts must be a 1-D tensor or sequence"):
        sl.class_balanced_weights("abc", 0.9)
