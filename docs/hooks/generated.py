"""MkDocs hook: the parts of the site that are generated at build time, so that no number or option is copied.

Markers a page may hold, each replaced by a Markdown table:

- ``<!-- bench:tables -->``: one table per workload of ``docs/bench.json``, rendered by
  :func:`seesaw_losses.bench.runner.format_table` exactly as ``seesaw bench`` prints them;
- ``<!-- bench:targets -->``: the performance targets, each with its bound, the measured ratios and met/missed;
- ``<!-- losses:table -->``: every registered loss, from the registry (``seesaw losses --markdown``);
- ``<!-- options: dotted.path -->``: the options of a function or class, with their defaults and the
  descriptions of its docstring's ``Args`` section.

It also renders the reStructuredText that docstrings share with ``help()``: ``.. math::`` blocks become display
math and ``:func:`x``` roles become code that links into the API reference, in the pages and in the API
reference.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

DOCS = Path(__file__).resolve().parents[1]
SRC = DOCS.parent / "src"
BENCH_TABLES, BENCH_TARGETS, LOSSES_TABLE = "<!-- bench:tables -->", "<!-- bench:targets -->", "<!-- losses:table -->"
OPTIONS = re.compile(r"<!-- options: ([\w.]+) -->")
ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj):`(~?)([\w.]+)`")
MATH = re.compile(r":math:`([^`]+)`")

# (what is measured, workloads, row, reference row (None: the native loss), time bound as a ratio to the
# reference, peak-memory bound as a ratio to the input or None)
TARGETS = [
    ("`weighted_bce` module vs BCE", ("binary2d", "binary3d"), "weighted_bce (module)", None, 1.3, 1.5),
    ("`focal` module vs BCE", ("binary2d", "binary3d"), "focal (module)", None, 1.3, 1.5),
    ("`binary_seesaw` module vs BCE", ("binary2d", "binary3d"), "binary_seesaw (module)", None, 1.3, 1.5),
    ("`build_loss('bce+dice')` vs BCE", ("binary2d", "binary3d"), "build_loss('bce+dice')", None, 1.8, None),
    ("`build_loss('binary_seesaw+dice')` vs BCE", ("binary2d", "binary3d"), "build_loss('binary_seesaw+dice')",
     None, 1.8, None),
    ("`lovasz_hinge` module vs BCE", ("binary2d", "binary3d"), "lovasz_hinge (module)", None, 4.0, 3.0),
    ("`logit_adjusted` module vs cross-entropy", ("longtail", "dense"), "logit_adjusted (module)", None, 1.2, None),
    ("`balanced_softmax` module vs cross-entropy", ("longtail", "dense"), "balanced_softmax (module)", None, 1.2,
     None),
    ("`asymmetric_loss` vs BCE", ("multilabel",), "asymmetric_loss", None, 1.5, None),
    ("`skeleton_recall` module, skeleton precomputed, vs the `dice` module", ("binary2d", "binary3d"),
     "skeleton_recall (module, skeleton precomputed)", "dice (module)", 1.5, None),
]


def targets_table(result: dict) -> str:
    """The targets as a Markdown table: bound, measured ratios per workload, met or missed."""
    rows = {(w["name"], r["name"]): r for w in result["workloads"] for r in w["rows"]}
    native = {w["name"]: w["native"] for w in result["workloads"]}
    lines = ["| target | bound | measured | |", "|---|---|---|---|"]
    for label, workloads, name, reference, time_bound, peak_bound in TARGETS:
        found = [(w, rows[(w, name)], rows.get((w, reference or native[w]))) for w in workloads if (w, name) in rows]
        if not found:
            continue
        bound = f"time <= {time_bound}x" + (f", peak <= {peak_bound}x the input" if peak_bound else "")
        measured, met = [], True
        for workload, row, base in found:
            ratio = row["median_ms"] / base["median_ms"]
            text = f"{workload}: time {ratio:.2f}x"
            met &= ratio <= time_bound
            if peak_bound and "peak_vs_input" in row:
                text += f", peak {row['peak_vs_input']:.2f}x"
                met &= row["peak_vs_input"] <= peak_bound
            measured.append(text)
        lines.append(f"| {label} | {bound} | {'; '.join(measured)} | {'met' if met else 'missed'} |")
    return "\n".join(lines)


def _roles(text: str) -> str:
    """``:func:`a.b``` as code linking to ``a.b`` in the API reference where it is documented (plain code
    elsewhere); ``:class:`~a.B``` shows ``B`` (Sphinx's ``~``: the last name only); ``:math:`x``` as math."""
    def link(match: re.Match) -> str:
        shown = match.group(2).rsplit(".", 1)[-1] if match.group(1) else match.group(2)
        return f'<autoref identifier="{match.group(2)}" optional><code>{shown}</code></autoref>'

    return MATH.sub(r"$\1$", ROLE.sub(link, text))


@functools.lru_cache(maxsize=None)
def _package(name: str):
    import griffe

    extension = f"{Path(__file__).with_name('griffe_doc_assignments.py')}:DocAssignments"
    return griffe.load(name, search_paths=[str(SRC)], docstring_parser="google",
                       extensions=griffe.load_extensions(extension))


def _value(function, default: str) -> str:
    """A default that names a module constant (``smooth_nr=DEFAULT_SMOOTH``) shown as the constant's value."""
    constant = function.module.members.get(default) if default.isidentifier() else None
    return str(constant.value) if constant is not None and getattr(constant, "value", None) is not None else default


def options_table(path: str) -> str:
    """Options of the function or class at ``path`` (all but the inputs ``logits``, ``target``): name, default and
    its docstring's description."""
    package, _, member = path.partition(".")
    obj = _package(package)[member]
    function = obj.members["__init__"] if obj.is_class else obj
    # An option a docstring leaves to a sibling ("the others are those of cldice_loss") is described there.
    siblings = [m for m in obj.parent.members.values() if m is not obj and not m.name.startswith("_")]
    described = {}
    for docstring in [m.docstring for m in siblings] + [obj.docstring, function.docstring]:
        for section in docstring.parsed if docstring else ():
            if section.kind.value == "parameters":
                described.update((p.name, p.description) for p in section.value)
    lines = ["| option | default | meaning |", "|---|---|---|"]
    for parameter in function.parameters:
        if parameter.name in ("self", "logits", "target"):
            continue
        meaning = " ".join(_roles(described.get(parameter.name, "")).split()).replace("|", "\\|")
        default = "required" if parameter.default is None else f"`{_value(function, str(parameter.default))}`"
        lines.append(f"| `{parameter.name}` | {default} | {meaning} |")
    if len(lines) == 2:
        raise ValueError(f"{path} has no options to list")
    return "\n".join(lines)


def restructured_text(markdown: str) -> str:
    """``.. math::`` blocks as ``$$`` display math, ``:role:`x``` as code."""
    lines, out, i = markdown.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == ".. math::":
            indent = len(line) - len(line.lstrip())
            body, i = [], i + 1
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                body.append(lines[i].strip())
                i += 1
            while body and not body[-1]:
                body.pop()
            out += ["", " " * indent + "$$", *(" " * indent + b for b in body if b), " " * indent + "$$", ""]
            continue
        out.append(_roles(line))
        i += 1
    return "\n".join(out)


class _RestructuredText(Preprocessor):
    def run(self, lines):
        return restructured_text("\n".join(lines)).split("\n")


class RestructuredTextExtension(Extension):
    def extendMarkdown(self, md):
        md.preprocessors.register(_RestructuredText(md), "seesaw_rst", 24)  # after code blocks are set aside


@event_priority(100)  # before mkdocstrings reads the Markdown extensions for the API reference
def on_config(config):
    config.markdown_extensions.append(RestructuredTextExtension())
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:
    if BENCH_TABLES in markdown or BENCH_TARGETS in markdown:
        from seesaw_losses.bench.runner import format_table

        result = json.loads((DOCS / "bench.json").read_text(encoding="utf-8"))
        markdown = markdown.replace(BENCH_TABLES, format_table(result))
        markdown = markdown.replace(BENCH_TARGETS, targets_table(result))
    if LOSSES_TABLE in markdown:
        from seesaw_losses.cli.losses import markdown_table

        markdown = markdown.replace(LOSSES_TABLE, markdown_table())
    return OPTIONS.sub(lambda match: options_table(match.group(1)), markdown)
