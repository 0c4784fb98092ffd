"""``class_weight`` means ``torch.nn.functional.cross_entropy``'s ``weight`` in every loss on class indices: each
element's loss times its class's weight, ``"mean"`` divided by the summed weights of the non-ignored elements."""

import pytest
import torch
import torch.nn.functional as TF

import seesaw_losses as sl
from seesaw_losses import functional as F

C = 4
COUNTS = torch.tensor([400, 90, 12, 3])
UNIFORM = torch.ones(C, dtype=torch.int64)

# each loss on class indices that takes class_weight, with the options that make it cross-entropy:
# (module options, the function at those options)
CROSS_ENTROPY_CASES = {
    "ce": ({}, None),
    "softmax_focal": ({"gamma": 0.0}, lambda x, t, **kw: F.softmax_focal_loss(x, t, gamma=0.0, **kw)),
    "seesaw": ({"num_classes": C, "p": 0.0, "q": 0.0},
               lambda x, t, **kw: F.seesaw_loss(x, t, COUNTS, p=0.0, q=0.0, **kw)),
    "logit_adjusted": ({"num_classes": C, "tau": 0.0, "class_counts": COUNTS},
                       lambda x, t, **kw: F.logit_adjusted_loss(x, t, COUNTS, tau=0.0, **kw)),
    "balanced_softmax": ({"num_classes": C, "class_counts": UNIFORM},
                         lambda x, t, **kw: F.balanced_softmax_loss(x, t, UNIFORM, **kw)),
    "ldam": ({"num_classes": C, "max_margin": 0.0, "scale": 1.0, "class_counts": COUNTS},
             lambda x, t, **kw: F.ldam_loss(x, t, COUNTS, max_margin=0.0, scale=1.0, **kw)),
}


def test_every_index_target_loss_with_class_weight_is_checked():
    taking = {entry.name for entry in sl.available_losses()
              if entry.target == "index" and "class_weight" in entry.options()}
    assert taking == set(CROSS_ENTROPY_CASES)


@pytest.mark.parametrize("name", sorted(CROSS_ENTROPY_CASES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(12, C), (3, C, 5, 4)])
def test_class_weight_at_the_cross_entropy_point_is_weighted_cross_entropy(name, reduction, shape):
    gen = torch.Generator().manual_seed(len(shape) * 7 + len(name))
    logits = torch.randn(shape, generator=gen, dtype=torch.float64) * 3
    target = torch.randint(0, C, (shape[0],) + shape[2:], generator=gen)
    target.view(-1)[::5] = -100
    weight = torch.tensor([0.2, 1.0, 3.0, 7.5], dtype=torch.float64)
    expected = TF.cross_entropy(logits, target, weight=weight, reduction=reduction)
    options, function = CROSS_ENTROPY_CASES[name]
    module = sl.build_loss({"type": name, **options, "class_weight": weight, "reduction": reduction})
    torch.testing.assert_close(module(logits, target).double(), expected, rtol=1e-10, atol=1e-12)
    if function is not None:
        torch.testing.assert_close(function(logits, target, class_weight=weight, reduction=reduction), expected,
                                   rtol=1e-10, atol=1e-12)


def test_softmax_focal_mean_divides_by_the_summed_weights_at_any_gamma():
    gen = torch.Generator().manual_seed(5)
    logits, target = torch.randn(64, C, generator=gen), torch.randint(0, C, (64,), generator=gen)
    weight = torch.tensor([0.1, 1.0, 2.0, 4.0])
    total = F.softmax_focal_loss(logits, target, class_weight=weight, reduction="sum")
    torch.testing.assert_close(F.softmax_focal_loss(logits, target, class_weight=weight), total / weight[target].sum())
