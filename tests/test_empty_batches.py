"""An empty batch (N = 0) gives a zero loss with a zero gradient in every loss, reduction and composition."""

import itertools

import pytest
import torch

import seesaw_losses as sl
from properties import Case, activations, make_inputs

REDUCTIONS = ("mean", "sum", "none")


@pytest.mark.parametrize("entry", sl.available_losses(), ids=lambda entry: entry.name)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_every_loss_and_reduction(entry, reduction):
    forms = ("module", "function") if entry.function is not None else ("module",)
    per_images = (False, True) if "per_image" in entry.options() else (False,)
    for activation, per_image, form in itertools.product(activations(entry), per_images, forms):
        case = Case(form=form, activation=activation, batch=0, channels=3, spatial=(3, 2), dtype=torch.float32,
                    scale=1.0, ignore=False, dense=True, per_image=per_image, reduction=reduction, layout="contiguous", seed=0)
        inputs = make_inputs(entry, case)
        x = inputs.logits.requires_grad_(True)
        loss = inputs.call(x, inputs.target)
        assert not loss.isnan().any() and (loss == 0).all(), (entry.name, case)
        loss.sum().backward()
        assert x.grad is not None and x.grad.shape == x.shape


def test_zero_sized_spatial_dimensions():
    z = torch.randn(2, 3, 0, 4, requires_grad=True)
    for loss in (sl.functional.dice_loss(z, torch.zeros(2, 0, 4, dtype=torch.long), activation="softmax"),
                 sl.functional.lovasz_softmax_loss(z, torch.zeros(2, 0, 4, dtype=torch.long), per_image=True),
                 sl.SeesawLoss(3)(z, torch.zeros(2, 0, 4, dtype=torch.long))):
        assert loss.item() == 0
        loss.backward()


@pytest.mark.parametrize("config, sigmoid", [
    ("bce+dice", True), ("focal+0.5*tversky+lovasz_hinge", True),
    ("seesaw:num_classes=3+dice:activation=softmax", False), ("ce+lovasz_softmax+generalized_dice:activation=softmax",
                                                             False),
])
def test_compositions(config, sigmoid):
    criterion = sl.build_loss(config)
    x = torch.randn(0, 1 if sigmoid else 3, 4, 4, requires_grad=True)
    target = torch.zeros(0, 1, 4, 4) if sigmoid else torch.zeros(0, 4, 4, dtype=torch.long)
    total, parts = criterion(x, target, return_components=True)
    assert total.item() == 0 and all(part.item() == 0 for part in parts.values())
    total.backward()
    assert x.grad.shape == x.shape
