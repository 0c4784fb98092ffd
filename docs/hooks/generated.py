"""MkDocs hook: the parts of the site that are generated at build time, so that no number or option is copied.

Markers a page may hold, each replaced by a Markdown table:

- ``<!-- bench:tables -->``: one table per workload of ``docs/bench.json``, rendered by
  :func:`seesaw_losses.bench.runner.format_table` exactly as ``seesaw bench`` prints them;
- ``<!-- bench:targets -->``: the performance targets, each with its bound, the measured ratios and met/missed;
- ``<!-- losses:table -->``: every registered loss, from the registry (``seesaw losses --markdown``);
- ``<!-- options: dotted.path -->``: the keyword options of a function or class, with defaults and the
  descriptions of its docstring's ``Args`` section.

It also renders the reStructuredText that docstrings share with ``help()``: ``.. math::`` blocks become display
math and ``:func:`x``` roles become code, in the pages and in the API reference.
"""

from __future__ import annotations

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
ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj):`~?([\w.]+)`")

# (what is measured, workloads, row of the table, time bound as a ratio to native, peak bound as a ratio to input)
TARGETS = [
    ("`weighted_bce` module vs BCE", ("binary2d", "binary3d"), "weighted_bce (module)", 1.3, 1.5),
    ("`focal` module vs BCE", ("binary2d", "binary3d"), "focal (module)", 1.3, 1.5),
    ("`binary_seesaw` module vs BCE", ("binary2d", "binary3d"), "binary_seesaw (module)", 1.3, 1.5),
    ("`build_loss('bce+dice')` vs BCE", ("binary2d", "binary3d"), "build_loss('bce+dice')", 1.8, None),
    ("`build_loss('binary_seesaw+dice')` vs BCE", ("binary2d", "binary3d"), "build_loss('binary_seesaw+dice')",
     1.8, None),
    ("`lovasz_hinge` module vs BCE", ("binary2d", "binary3d"), "lovasz_hinge (module)", 4.0, 3.0),
    ("`logit_adjusted` module vs cross-entropy", ("longtail", "dense"), "logit_adjusted (module)", 1.2, None),
    ("`balanced_softmax` module vs cross-entropy", ("longtail", "dense"), "balanced_softmax (module)", 1.2, None),
    ("`asymmetric_loss` vs BCE", ("multilabel",), "asymmetric_loss", 1.5, None),
]


def targets_table(result: dict) -> str:
    """The targets as a Markdown table: bound, measured ratios per workload, met or missed."""
    rows = {(w["name"], r["name"]): r for w in result["workloads"] for r in w["rows"]}
    lines = ["| target | bound | measured | |", "|---|---|---|---|"]
    for label, workloads, name, time_bound, peak_bound in TARGETS:
        found = [(w, rows[(w, name)]) for w in workloads if (w, name) in rows]
        if not found:
            continue
        bound = f"time <= {time_bound}x native" + (f", peak <= {peak_bound}x the input" if peak_bound else "")
        measured, met = [], True
        for workload, row in found:
            text = f"{workload}: time {row['time_vs_native']:.2f}x"
            met &= row["time_vs_native"] <= time_bound
            if peak_bound and "peak_vs_input" in row:
                text += f", peak {row['peak_vs_input']:.2f}x"
                met &= row["peak_vs_input"] <= peak_bound
            measured.append(text)
        lines.append(f"| {label} | {bound} | {'; '.join(measured)} | {'met' if met else 'missed'} |")
    return "\n".join(lines)


def options_table(path: str) -> str:
    """Keyword options of the object at ``path``: name, default and its docstring's description."""
    import griffe

    obj = griffe.load(path, search_paths=[str(SRC)], docstring_parser="google")
    function = obj.members["__init__"] if obj.is_class else obj
    described = {}
    for docstring in (obj.docstring, function.docstring):
        for section in docstring.parsed if docstring else ():
            if section.kind.value == "parameters":
                described.update((p.name, p.description) for p in section.value)
    lines = ["| option | default | meaning |", "|---|---|---|"]
    for parameter in function.parameters:
        if parameter.kind.value == "keyword-only":
            meaning = " ".join(ROLE.sub(r"`\1`", described.get(parameter.name, "")).split()).replace("|", "\\|")
            lines.append(f"| `{parameter.name}` | `{parameter.default}` | {meaning} |")
    if len(lines) == 2:
        raise ValueError(f"{path} has no keyword-only options to list")
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
        out.append(ROLE.sub(r"`\1`", line).replace(":math:`", "`"))
        i += 1
    return "\n".join(out)


class _RestructuredText(Preprocessor):
    def run(self, lines):
        return restructured_text("\n".join(lines)).split("\n")


class RestructuredTextExtension(Extension):
    def extendMarkdown(self, md):
        md.preprocessors.register(_RestructuredText(md), "seesaw_rst", 40)


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
