"""Every Python block of the README runs as written, in order, in a fresh interpreter.

A block that needs something optional is marked by an HTML comment on the line before it, e.g.
``<!-- requires: cuda -->`` (a CUDA device) or ``<!-- requires: cli -->`` (the ``cli`` extra); it is skipped
only where that is missing.
"""

import importlib.util
import os
import re
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = re.compile(r"(?:<!--\s*requires:\s*(?P<requires>[\w ,-]+?)\s*-->\s*\n)?^```python\n(?P<code>.*?)^```",
                   re.MULTILINE | re.DOTALL)


def _available(requirement: str) -> bool:
    if requirement == "cuda":
        return torch.cuda.is_available()
    if requirement == "cli":
        from seesaw_losses.cli._common import EXTRAS
        return all(importlib.util.find_spec(name) is not None for name in EXTRAS)
    raise ValueError(f"unknown README requirement {requirement!r} (known: cuda, cli)")


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
