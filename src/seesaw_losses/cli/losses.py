"""``seesaw losses``: every loss of the library, from the registry."""

from __future__ import annotations

import argparse
import json

from ..registry import TASKS, available_losses
from ._common import require_extras


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "losses", help="list every loss: name, task, summary, reference",
        description="List every loss of the library (the registry that build_loss and --loss read): its name, "
                    "the tasks it serves, a one-line summary and its reference.")
    parser.add_argument("--task", choices=TASKS, help="only the losses that serve this task")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the entries as JSON (with defaults and search "
                                                             "spaces) instead of a table")
    output.add_argument("--markdown", action="store_true", help="print the table as Markdown (the README's table)")
    parser.set_defaults(func=run)


def markdown_table(task=None) -> str:
    """The table as Markdown: what the README's loss table is generated from (a test keeps them equal)."""
    lines = ["| name | task | summary | reference |", "|---|---|---|---|"]
    for entry in available_losses():
        if task is None or task in entry.tasks:
            name = f"`{entry.name}`" + "".join(f" (`{alias}`)" for alias in entry.aliases)
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in (
                name, entry.kind, entry.summary, entry.reference)) + " |")
    return "\n".join(lines)


def rows(task=None):
    """``(name, task kinds, summary, reference)`` per registered loss (aliases after the name)."""
    return [(", ".join((entry.name,) + entry.aliases), entry.kind, entry.summary, entry.reference)
            for entry in available_losses() if task is None or task in entry.tasks]


def run(args: argparse.Namespace) -> int:
    entries = [entry for entry in available_losses() if args.task is None or args.task in entry.tasks]
    if args.json:
        print(json.dumps([{
            "name": entry.name, "aliases": list(entry.aliases), "tasks": list(entry.tasks),
            "target": entry.target, "needs_counts": entry.needs_counts, "region": entry.region,
            "defaults": dict(entry.defaults), "summary": entry.summary, "reference": entry.reference,
            "search_space": {name: {"low": h.low, "high": h.high, "log": h.log, "integer": h.integer,
                                    "choices": list(h.choices)} for name, h in entry.search_space.items()},
        } for entry in entries], indent=2, default=repr))
        return 0
    if args.markdown:
        print(markdown_table(args.task))
        return 0
    require_extras("losses")
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Losses (build_loss names; combine with '+', weight with 'factor*')", title_justify="left")
    for column in ("name", "task", "summary", "reference"):
        table.add_column(column, overflow="fold")
    for row in rows(args.task):
        table.add_row(*row)
    Console(width=max(Console().width, 140)).print(table)
    return 0
