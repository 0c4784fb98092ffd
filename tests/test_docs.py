"""The documentation site builds with ``mkdocs build --strict`` (no warning: every link, anchor and docstring
resolves), its generated tables hold the numbers of ``docs/bench.json`` and the registry's losses, docstring
examples come out as code, every page is in the nav, the site loads no script or stylesheet from elsewhere
(formulas are typeset by the KaTeX it serves), and every ```python block of its pages runs."""

import importlib
import importlib.util
import inspect
import itertools
import json
import os
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

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


class _Page(HTMLParser):
    """What the tests read of a built page: the text of each ``<pre>`` under the last element with an ``id`` that
    names an object (``seesaw_losses.x``), the number of ``<blockquote>``, the scripts and stylesheets it loads."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.blocks, self.blockquotes, self.scripts, self.stylesheets = [], 0, [], []
        self._object, self._pre = None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id", "").startswith("seesaw_losses."):
            self._object = attrs["id"]
        if tag == "pre":
            self._pre = []
        elif tag == "blockquote":
            self.blockquotes += 1
        elif tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("rel") == "stylesheet":
            self.stylesheets.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "pre":
            self.blocks.append((self._object, "".join(self._pre)))
            self._pre = None

    def handle_data(self, data):
        if self._pre is not None:
            self._pre.append(data)


def _docstring_examples(dotted: str) -> str:
    """The ``Examples:`` section of an object's docstring, dedented ("" without one)."""
    module, _, name = dotted.rpartition(".")
    lines = (inspect.getdoc(getattr(importlib.import_module(module), name)) or "").splitlines()
    if "Examples:" not in lines:
        return ""
    section = itertools.takewhile(lambda line: not line or line.startswith(" "),
                                  lines[lines.index("Examples:") + 1:])
    return textwrap.dedent("\n".join(section)).strip()


@needs_mkdocs
def test_docstring_examples_render_as_code(site):
    """Each ``Examples:`` section of the functional reference is one code block, prompts and lines as written."""
    page = _Page((site / "api" / "functional" / "index.html").read_text(encoding="utf-8"))
    objects = {name for name, _ in page.blocks if name and name.startswith("seesaw_losses.functional.")}
    examples = {name: _docstring_examples(name) for name in sorted(objects)}
    examples = {name: text for name, text in examples.items() if text}
    assert len(examples) >= 10, sorted(examples)
    for name, text in examples.items():
        assert text.startswith(">>> "), (name, text)
        assert text in [block.strip() for owner, block in page.blocks if owner == name], name
    assert page.blockquotes == 0


def _nav_pages(item) -> set:
    if isinstance(item, str):
        return {item}
    values = item.values() if isinstance(item, dict) else item
    return set().union(*(_nav_pages(value) for value in values))


def test_every_page_is_in_the_nav():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = {str(path.relative_to(DOCS).as_posix()) for path in DOCS.rglob("*.md")
             if path.relative_to(DOCS).parts[0] not in ("hooks", "vendor")}
    assert pages - _nav_pages(config["nav"]) == set()


@needs_mkdocs
def test_site_loads_nothing_from_elsewhere(site):
    """Every script and stylesheet of every page is a file of the site: formulas are typeset offline."""
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 20
    for path in pages:
        page = _Page(path.read_text(encoding="utf-8"))
        for url in page.scripts + page.stylesheets:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc, (path.relative_to(site), url)
            file = site / parts.path.lstrip("/") if parts.path.startswith("/") else path.parent / parts.path
            assert file.resolve().is_file(), (path.relative_to(site), url)   # 404.html: paths from the root
    overlap = (site / "losses" / "overlap" / "index.html").read_text(encoding="utf-8")
    loaded = _Page(overlap)
    assert 'class="arithmatex"' in overlap
    assert any(url.endswith("vendor/katex/katex.min.js") for url in loaded.scripts)
    assert any(url.endswith("vendor/katex/katex.min.css") for url in loaded.stylesheets)
    assert (site / "vendor" / "katex" / "LICENSE").is_file()


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
