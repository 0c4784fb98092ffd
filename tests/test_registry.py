"""The registry: one entry per loss, read by build_loss, the CLI, the plot and the tests.

A toy loss declared here (its function and one entry, nothing else) is picked up by every reader.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import seesaw_losses as sl
from seesaw_losses import registry
from seesaw_losses.cli import main
from seesaw_losses.experiments import losses
from seesaw_losses.experiments.reporting import loss_curves

from properties import check_entry


def toy_squared_loss(logits, target, *, scale: float = 1.0, reduction: str = "mean"):
    """``scale * (sigmoid(x) - t)^2``: a toy loss for the registry tests."""
    x = logits.to(torch.promote_types(logits.dtype, torch.float32))  # half precision computed in float32
    loss = scale * (torch.sigmoid(x) - target) ** 2
    if reduction == "mean":
        return loss.sum() / max(loss.numel(), 1)  # an empty batch gives 0, as every loss does
    return loss.sum() if reduction == "sum" else loss


@pytest.fixture
def toy_entry():
    entry = registry.register(registry.LossEntry(
        name="toy_squared", function=toy_squared_loss, tasks=("binary",), summary="a toy squared error",
        reference="this test", target="binary", defaults={"scale": 1.0},
        search_space={"scale": registry.Hyperparameter(0.1, 10.0, log=True)}))
    yield entry
    registry.unregister("toy_squared")


def test_every_loss_is_registered_once_with_its_metadata():
    entries = sl.available_losses()
    names = [entry.name for entry in entries]
    assert len(names) == len(set(names))
    for entry in entries:
        assert entry.summary and entry.reference and entry.tasks
        assert isinstance(entry.build(**({"num_classes": 3} if "num_classes" in entry.options() else {}),
                                      **({"class_counts": [50, 5, 1]} if entry.counts_argument == "class_counts"
                                         and entry.tasks[0] != "binary" else {}),
                                      **({"class_counts": [90, 10]} if entry.counts_argument == "class_counts"
                                         and entry.tasks[0] == "binary" else {})), torch.nn.Module)
        for name, space in entry.search_space.items():
            assert name in entry.options(), (entry.name, name)
            assert space.choices or space.low <= space.high
    assert sl.get_loss("sigmoid_focal") is sl.get_loss("focal")


def test_unknown_names_get_a_suggestion():
    with pytest.raises(ValueError, match=r"build_loss: type must be one of .*got 'dcie'; did you mean 'dice'\?"):
        sl.build_loss("dcie")
    with pytest.raises(ValueError, match="register: name must be new, got 'dice'"):
        registry.register(registry.get_loss("dice"))


def test_entry_rejects_unknown_options_in_its_metadata():
    with pytest.raises(ValueError, match="defaults and search_space must name options"):
        registry.LossEntry(name="bad", function=toy_squared_loss, tasks=("binary",), summary="s", reference="r",
                           search_space={"gamma": registry.Hyperparameter(0, 1)})
    with pytest.raises(ValueError, match="tasks must be a non-empty tuple"):
        registry.LossEntry(name="bad", function=toy_squared_loss, tasks=("segmentation",), summary="s",
                           reference="r")


def test_parser_reads_exponents_and_negative_numbers():
    criterion = sl.build_loss("focal:gamma=1e+0,alpha=2.5e-1+0.5*dice:smooth_nr=1e-4")
    assert criterion.losses["focal"].gamma == 1.0 and criterion.losses["focal"].alpha == 0.25
    assert criterion.losses["dice"].options["smooth_nr"] == 1e-4
    assert criterion.weights == {"focal": 1.0, "dice": 0.5}
    assert sl.build_loss("weighted_bce:pos_weight=1E+1").pos_weight.item() == 10.0
    assert sl.build_loss("ce:ignore_index=-1").ignore_index == -1


def test_toy_loss_is_picked_up_by_build_loss(toy_entry):
    x, t = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) < 0.3).float()
    module = sl.build_loss("toy_squared:scale=2")
    torch.testing.assert_close(module(x, t), toy_squared_loss(x, t, scale=2.0))
    combined = sl.build_loss("bce+0.5*toy_squared")
    torch.testing.assert_close(combined(x, t), F.binary_cross_entropy_with_logits(x, t)
                               + 0.5 * toy_squared_loss(x, t))
    with pytest.raises(ValueError, match=r"build_loss: term 'toy_squared': options must be among scale, reduction, got "
                                         r"scal; "
                                         r"did you mean 'scale'\?"):
        sl.build_loss("toy_squared:scal=2")


def test_toy_loss_is_picked_up_by_the_cli(toy_entry, capsys):
    spec = losses.parse_loss("toy_squared:scale=3+dice")
    assert spec.family == "sigmoid"
    built = losses.build(spec, [90, 10])
    assert set(built.module.losses) == {"toy_squared", "dice"}
    with pytest.raises(losses.LossSpecError, match="toy_squared"):
        losses.parse_loss("toy_sqaured")
    assert main(["losses", "--json"]) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert listed["toy_squared"]["search_space"]["scale"]["log"] is True
    assert main(["losses", "--task", "binary"]) == 0
    table = capsys.readouterr().out
    assert "toy_squared" in table and "a toy squared error" in table and "seesaw" in table


def test_toy_loss_is_picked_up_by_the_property_suite(toy_entry):
    check_entry(toy_entry, max_examples=10)


def test_property_suite_catches_a_loss_that_breaks_on_empty_batches():
    entry = registry.LossEntry(
        name="toy_nan_on_empty", function=lambda logits, target, *, reduction="mean": ((logits - target) ** 2).mean(),
        tasks=("binary",), summary="s", reference="r")
    with pytest.raises(AssertionError, match="toy_nan_on_empty"):
        check_entry(entry, max_examples=20)


def test_toy_loss_is_picked_up_by_the_plot(toy_entry):
    built = loss_curves.build_for_curves(losses.parse_loss("toy_squared"), 10.0)
    p = np.array([0.1, 0.5, 0.9])
    value, _ = loss_curves.loss_and_gradient(built, p, loss_curves.RARE)
    np.testing.assert_allclose(value, (1 - p) ** 2)


def test_seesaw_losses_table_lists_every_loss(capsys):
    assert main(["losses"]) == 0
    out = capsys.readouterr().out
    for entry in sl.available_losses():
        assert entry.name in out


def test_readme_loss_table_is_the_registry():
    from pathlib import Path

    from seesaw_losses.cli.losses import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("<!-- losses-table:start -->\n")[1].split("\n<!-- losses-table:end -->")[0]
    assert block == markdown_table(), "regenerate the README's table with `seesaw losses --markdown`"


def test_entry_target_says_what_the_loss_takes_and_activation_reads_it_deprecated():
    assert {e.name: e.target for e in registry.available_losses()}["eqlv2"] == "index"
    assert {e.target for e in registry.available_losses()} == set(registry.TARGETS)
    with pytest.warns(DeprecationWarning, match="LossEntry.activation is deprecated.*LossEntry.target"):
        assert registry.get_loss("eqlv2").activation == "softmax"
    with pytest.warns(DeprecationWarning):
        assert registry.get_loss("focal").activation == "sigmoid"
    with pytest.raises(ValueError, match=r"target must be one of \('binary', 'index', 'option'\), got 'sigmoid'"):
        registry.LossEntry(name="bad", function=toy_squared_loss, tasks=("binary",), summary="s", reference="r",
                           target="sigmoid")


def test_default_loss_lists_live_in_the_registry_and_build():
    from seesaw_losses.cli import plot
    assert losses.DEFAULT_BINARY_LOSSES == registry.default_losses("binary")
    assert losses.DEFAULT_MULTICLASS_LOSSES == registry.default_losses("multi-class")
    assert plot.DEFAULT_LOSSES == registry.default_losses("curves")
    for kind in registry.DEFAULT_LOSSES:
        for spec in registry.default_losses(kind):
            assert all(registry.get_loss(term["type"]) for term in sl.compose.parse_config(spec)), spec
    with pytest.raises(ValueError, match="default_losses: kind must be one of .*got 'multiclass'; did you mean "
                                         "'multi-class'"):
        registry.default_losses("multiclass")
