"""Every loss builds from keyword arguments alone, as Hydra's ``instantiate`` builds it from a YAML config."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import seesaw_losses


def _config(entry, options: dict) -> dict:
    """A Hydra config for ``entry``: its class or factory by import path (the top-level name where the package
    exports it), or ``build_loss`` for an entry without a module of its own."""
    if entry.module is None:
        return {"_target_": "seesaw_losses.build_loss", "_convert_": "all", "config": {"type": entry.name, **options}}
    module = entry.module
    exported = getattr(seesaw_losses, module.__name__, None) is module
    target = f"seesaw_losses.{module.__name__}" if exported else f"{module.__module__}.{module.__qualname__}"
    return {"_target_": target, "_convert_": "all", **options}


def test_seesaw_from_yaml():
    config = OmegaConf.create("_target_: seesaw_losses.SeesawLoss\nnum_classes: 5\np: 0.6\nq: 1.5\n"
                              "class_weight: [1.0, 1.0, 2.0, 2.0, 4.0]\n_convert_: all\n")
    criterion = instantiate(config)
    assert type(criterion) is seesaw_losses.SeesawLoss and (criterion.p, criterion.q) == (0.6, 1.5)
    assert torch.equal(criterion.class_weight, torch.tensor([1.0, 1.0, 2.0, 2.0, 4.0]))
    logits, target = torch.randn(8, 5), torch.randint(0, 5, (8,))
    torch.testing.assert_close(criterion(logits, target), seesaw_losses.functional.seesaw_loss(
        logits, target, criterion.class_counts, p=0.6, q=1.5, class_weight=criterion.class_weight))


def _inside(space) -> object:
    """A value of a search space that is none of its ends (a default sits at an end or the middle)."""
    if space.choices:
        return space.choices[0]
    if space.integer:
        return int(space.low) + 1
    if space.log:
        return float(space.low * (space.high / space.low) ** 0.37)
    return float(space.low + 0.37 * (space.high - space.low))


# options that a builder turns into something else instead of keeping: how to read them back
DERIVED = {
    ("weighted_bce", "max_weight"): lambda built, value: float(built.pos_weight) == pytest.approx(min(9.0, value)),
    ("class_balanced_ce", "beta"): lambda built, value: torch.allclose(
        built.weight, seesaw_losses.class_weights(torch.tensor([50, 5, 1]), "class_balanced", beta=value)),
}


def _holds(built, entry, name, value) -> bool:
    """Whether ``built`` holds ``value`` for option ``name``: its attribute of that name, its ``options`` entry,
    or what the builder derived from it."""
    if (entry.name, name) in DERIVED:
        return DERIVED[entry.name, name](built, value)
    options = getattr(built, "options", {})
    if isinstance(options, dict) and name in options:
        return options[name] == value
    if name in vars(built) or name in dict(built.named_buffers()):
        return getattr(built, name) == value
    pytest.fail(f"{entry.name}: the built {type(built).__name__} keeps no option {name!r}")


def test_every_registered_module_builds_from_a_yaml_config_with_its_options():
    for entry in seesaw_losses.available_losses():
        options = {}
        if "num_classes" in entry.options():
            options["num_classes"] = 3
        if entry.counts_argument == "class_counts":
            options["class_counts"] = [90, 10] if entry.tasks[0] == "binary" else [50, 5, 1]
        chosen = {**entry.defaults, **{name: _inside(space) for name, space in entry.search_space.items()}}
        options.update(chosen)
        built = instantiate(OmegaConf.create(OmegaConf.to_yaml(OmegaConf.create(_config(entry, options)))))
        assert isinstance(built, torch.nn.Module), entry.name
        assert type(built) is type(entry.build(**options)), entry.name
        for name, value in chosen.items():
            assert _holds(built, entry, name, value), (entry.name, name, value)


def test_the_option_check_fails_on_an_ignored_option():
    entry = seesaw_losses.get_loss("focal")
    assert not _holds(seesaw_losses.SigmoidFocalLoss(gamma=1.0), entry, "gamma", 2.5)
