"""Every Python block of the README runs as written, in order, in a fresh interpreter.

A block that needs something optional is marked by an HTML comment on the line before it, e.g.
``<!-- requires: cuda -->`` (a CUDA device) or ``<!-- requires: cli, hydra -->`` (extras of ``pyproject.toml``);
it is skipped only where that is missing. Every block imports only the standard library, torch, seesaw_losses and
what the extras it names install.
"""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys

import pytest
import torch
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = re.compile(r"(?:<!--\s*requires:\s*(?P<requires>[\w ,-]+?)\s*-->\s*\n)?^```python\n(?P<code>.*?)^```",
                   re.MULTILINE | re.DOTALL)
PROJECT = "seesaw-losses"
ALWAYS = {"torch", "seesaw_losses"}  #: what a block may import without naming an extra (besides the standard library)


def _normal(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extras() -> dict:
    """Extra name -> the requirements ``pyproject.toml`` lists for it."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


def distributions(names) -> set:
    """The (normalised) distributions the extras ``names`` install, following ``seesaw-losses[other]``."""
    declared, found, todo = extras(), set(), list(names)
    while todo:
        for text in declared[todo.pop()]:
            requirement = Requirement(text)
            if _normal(requirement.name) == PROJECT:
                todo += sorted(requirement.extras)
            else:
                found.add(_normal(requirement.name))
    return found


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _available(requirement: str) -> bool:
    if requirement == "cuda":
        return torch.cuda.is_available()
    if requirement not in extras():
        raise ValueError(f"unknown requirement {requirement!r} (known: cuda, {', '.join(extras())})")
    return all(_installed(name) for name in distributions([requirement]))


def imported_modules(code: str) -> set:
    """The top-level modules ``code`` imports (absolute imports only)."""
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def python_blocks(text: str):
    """``(line, code, requirements)`` of each ```python block of ``text``, in order."""
    for match in BLOCK.finditer(text):
        requires = tuple(r.strip() for r in (match.group("requires") or "").split(",") if r.strip())
        yield text.count("\n", 0, match.start("code")) + 1, match.group("code"), requires


def _script(blocks) -> str:
    """One program running each block in a shared namespace, compiled under its README line for tracebacks."""
    lines = ["namespace = {'__name__': '__main__'}"]
    for line, code, _ in blocks:
        padded = "\n" * (line - 1) + code
        lines.append(f"exec(compile({padded!r}, 'README.md', 'exec'), namespace)")
    return "\n".join(lines) + "\n"


def test_marked_blocks_are_found_with_their_requirements():
    text = "x\n```python\na = 1\n```\n<!-- requires: cuda, cli -->\n```python\nb = 2\n```\n```bash\nls\n```\n"
    assert list(python_blocks(text)) == [(3, "a = 1\n", ()), (7, "b = 2\n", ("cuda", "cli"))]


def test_readme_python_blocks_run_in_order(tmp_path):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = list(python_blocks(f.read()))
    assert len(blocks) >= 4
    runnable = [b for b in blocks if all(_available(r) for r in b[2])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _script(runnable)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    skipped = len(blocks) - len(runnable)
    if skipped:
        pytest.skip(f"{skipped} README block(s) need what this machine lacks; the others ran")


def test_readme_command_tables_name_real_options():
    """Every ``--option`` in the table under a ``### `seesaw COMMAND``` heading is an option of that command."""
    from seesaw_losses.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        sections = re.split(r"^### `seesaw (\w+)`", f.read(), flags=re.MULTILINE)[1:]
    checked = set()
    for command, text in zip(sections[::2], sections[1::2]):
        table = "\n".join(line for line in text.split("\n## ")[0].splitlines() if line.startswith("|"))
        known = {option for action in subparsers[command]._actions for option in action.option_strings}
        named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", table))
        assert named <= known, f"seesaw {command}: {sorted(named - known)} are not options"
        checked.add(command)
    assert checked == set(subparsers), f"commands without a README section: {sorted(set(subparsers) - checked)}"


def _pages():
    yield "README.md"
    for folder, _, files in sorted(os.walk(os.path.join(ROOT, "docs"))):
        yield from (os.path.relpath(os.path.join(folder, name), ROOT) for name in sorted(files) if name.endswith(".md"))


def test_marked_blocks_import_only_what_their_extras_install():
    """Each block of the README and the docs imports the standard library, torch, seesaw_losses, or modules of a
    distribution that the extras named in its marker install (so the marker tells a reader what to install)."""
    owners = importlib.metadata.packages_distributions()
    checked, wrong = 0, []
    for page in _pages():
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            blocks = list(python_blocks(f.read()))
        for line, code, requires in blocks:
            allowed = distributions([r for r in requires if r != "cuda"])
            for module in sorted(imported_modules(code) - ALWAYS - set(sys.stdlib_module_names)):
                installers = {_normal(name) for name in owners.get(module, [])}
                if not installers & allowed:
                    wrong.append(f"{page}:{line} imports {module} ({', '.join(sorted(installers)) or 'not installed'})"
                                 f" but its marker names {', '.join(requires) or 'nothing'}")
            checked += 1
    assert checked >= 10 and not wrong, "\n".join(wrong)


def test_extras_resolve_through_the_project_and_unknown_markers_fail():
    assert "hydra-core" in distributions(["hydra"]) and "pyyaml" in distributions(["cli"])
    assert {"hydra-core", "mmengine", "pyyaml", "pytest"} <= distributions(["test"])  # test includes cli, hydra, ...
    assert imported_modules("import a.b\nfrom c.d import e\nfrom . import f\n") == {"a", "c"}
    with pytest.raises(ValueError, match="unknown requirement 'hidra'"):
        _available("hidra")
