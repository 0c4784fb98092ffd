"""The documentation site builds with ``mkdocs build --strict`` (no warning: every link, anchor and docstring
resolves), its generated tables hold the numbers of ``docs/bench.json`` and the registry's losses, and every
```python block of its pages runs."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_readme import _available, _script, python_blocks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

needs_mkdocs = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("mkdocs", "material", "mkdocstrings_handlers")),
    reason="mkdocs, mkdocs-material or mkdocstrings[python] is not installed (pip install -e '.[docs]')")


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
                NO_MKDOCS_2_WARNING="1")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


@needs_mkdocs
def test_performance_page_is_generated_from_bench_json(site):
    page = (site / "performance" / "index.html").read_text(encoding="utf-8")
    bench = json.loads((DOCS / "bench.json").read_text(encoding="utf-8"))
    for workload in bench["workloads"]:
        row = next(r for r in workload["rows"] if r["group"] == "library")
        assert f"{row['median_ms']:.1f}" in page and f"{row['time_vs_native']:.2f}" in page, (workload["name"], row)
    assert "<!-- bench:" not in page


@needs_mkdocs
def test_losses_page_lists_every_registered_loss(site):
    import seesaw_losses

    page = (site / "losses" / "index.html").read_text(encoding="utf-8")
    for entry in seesaw_losses.available_losses():
        assert f"<code>{entry.name}</code>" in page, entry.name


@needs_mkdocs
def test_api_reference_renders_docstrings(site):
    page = (site / "api" / "functional" / "index.html").read_text(encoding="utf-8")
    assert 'id="seesaw_losses.functional.seesaw_loss"' in page
    assert ".. math::" not in page and ":func:" not in page   # the docstrings' reStructuredText is rendered
    assert 'class="autorefs autorefs-internal"' in page        # and its roles link into the reference


def test_docs_python_blocks_run(tmp_path):
    """Each page's blocks run in order in one namespace per page (one interpreter for all pages)."""
    programs = []
    for path in sorted(DOCS.rglob("*.md")):
        blocks = [b for b in python_blocks(path.read_text(encoding="utf-8")) if all(_available(r) for r in b[2])]
        if blocks:
            name = str(path.relative_to(ROOT))
            programs.append(f"exec(compile({_script(blocks).replace('README.md', name)!r}, {name!r}, 'exec'), {{}})")
    assert len(programs) >= 8
    proc = subprocess.run([sys.executable, "-c", "\n".join(programs)], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
