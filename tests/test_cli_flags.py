"""The experiments speak in parameters (``compare(losses=...)``), the command in flags: ``in_flags`` says one as the
other, so a message is written once and reads right in both."""

import pytest

from seesaw_losses import compare
from seesaw_losses.cli.errors import FLAGS, in_flags
from seesaw_losses.experiments import DataError


@pytest.mark.parametrize("message, said", [
    ("compare: resume=True but there is no study; run without resume=True", "--resume but there is no study; run "
                                                                            "without --resume"),
    ("give both test_images= and test_masks=, or neither (then test_fraction= splits the data)",
     "give both --test-images and --test-masks, or neither (then --test-fraction splits the data)"),
    ("unknown loss 'focl' in losses='focl': choose", "unknown loss 'focl' in --loss 'focl': choose"),
    ("pass mask_mode='binary' to read label > 0", "pass --mask-mode binary to read label > 0"),
    ("size=None was given; drop size=None to resize them to size=", "--no-resize was given; drop --no-resize to "
                                                                    "resize them to --image-size"),
    ("PatchSegmentationTrainer: overlap must be in [0, 1), got 1.0", "--overlap must be in [0, 1), got 1.0"),
    ("these losses diverge", "these losses diverge"),  # plain words stay words
])
def test_parameters_are_said_as_flags(message, said):
    assert in_flags(message) == said


def test_every_flag_exists_on_the_command():
    from seesaw_losses.cli import build_parser

    compare_parser = build_parser()._subparsers._group_actions[0].choices["compare"]
    flags = {option for action in compare_parser._actions for option in action.option_strings}
    assert set(FLAGS.values()) - flags == set()


def test_the_python_api_names_its_parameters_not_flags(tmp_path):
    with pytest.raises(ValueError, match=r"unknown loss 'focall' in losses='focall'") as raised:
        compare(lambda criterion, run: {"score": 1.0}, ["focall"], metric="score", progress=False)
    assert "--" not in str(raised.value)
    with pytest.raises(DataError, match=r"resume=True but there is no study") as raised:
        compare(lambda criterion, run: {"score": 1.0}, ["focal"], metric="score", tune=1, resume=True,
                out=tmp_path, progress=False)
    assert "--" not in str(raised.value)


def test_a_missing_extra_is_named_by_the_package_to_install(monkeypatch):
    import importlib.util

    from seesaw_losses.cli._common import require_extras
    from seesaw_losses.cli.errors import InputError

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "skimage" else found(name))
    with pytest.raises(InputError, match=r"`seesaw compare` needs scikit-image: pip install 'seesaw-losses\[cli\]'"):
        require_extras("compare")  # binary comparisons score topology with it after the first final run


def _literals(tree):
    """The string constants of a module, f-strings' pieces included, its docstrings left out."""
    import ast

    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_string_of_the_experiments_names_a_flag():
    import ast
    import re
    from pathlib import Path

    import seesaw_losses.experiments as experiments

    flag = re.compile(r"(?<![\w-])--[a-z]")
    found = [f"{path.name}: {text!r}" for path in sorted(Path(experiments.__file__).parent.rglob("*.py"))
             for text in _literals(ast.parse(path.read_text(encoding="utf-8"))) if flag.search(text)]
    assert not found


def test_the_one_seed_recommendation_asks_for_seeds_in_words_both_the_api_and_the_command_read():
    result = compare(lambda criterion, run: {"score": 0.5}, ["bce", "dice"], metric="score", seeds=1, progress=False)
    recommendation = str(result).splitlines()[-1]
    assert recommendation.endswith("nothing is resampled or tested: train 3 or more seeds.") and "--" not in recommendation


def test_too_few_images_to_validate_names_val_fraction_said_as_its_flag_by_the_command(tmp_path):
    from test_class_folders import make_folders

    from seesaw_losses.experiments.data.class_folders import load_class_folders

    with pytest.raises(DataError, match="add images or raise val_fraction=") as raised:
        load_class_folders(make_folders(tmp_path, counts=(1, 1)), test_fraction=0.0, val_fraction=0.2)
    assert in_flags(str(raised.value)).endswith("add images or raise --val-fraction")
