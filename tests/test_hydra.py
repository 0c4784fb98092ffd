"""Every loss builds from keyword arguments alone, as Hydra's ``instantiate`` builds it from a YAML config."""

import inspect

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


def test_every_registered_module_builds_from_a_yaml_config():
    for entry in seesaw_losses.available_losses():
        options = {}
        if "num_classes" in entry.options():
            options["num_classes"] = 3
        if entry.counts_argument == "class_counts":
            options["class_counts"] = [90, 10] if entry.tasks[0] == "binary" else [50, 5, 1]
        options.update(entry.defaults)
        built = instantiate(OmegaConf.create(OmegaConf.to_yaml(OmegaConf.create(_config(entry, options)))))
        assert isinstance(built, torch.nn.Module), entry.name
        assert type(built) is type(entry.build(**options)), entry.name
        if inspect.isclass(entry.builder):
            for name, value in entry.defaults.items():
                assert getattr(built, name, value) == value, (entry.name, name)
