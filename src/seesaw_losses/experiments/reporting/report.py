"""Tables for the terminal (``rich``) and a report folder: ``report.md`` with the tables and PNG plots (matplotlib,
Agg, from :mod:`.plots`), ``results.json``, one CSV per task, and the winner as ``winner.json``, a Hydra/YAML and an
mmengine config.

Metrics travel as ``{name: value}`` dicts from the runs to every table and file: a metric a run reports appears
in the table, the CSV and ``results.json`` without being named here: its declaration in
:mod:`..evaluation.catalog` gives its short header and its table, and a metric declared nowhere (the user's own)
is shown under its name in the ranking table.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ...compose import parse_config
from .. import BINARY, CLASSIFICATION, LONG_TAIL, MULTICLASS, DataError
from ..evaluation.catalog import ADJUSTED, AT_HALF, PER_CLASS, POOLED, TOPOLOGY, describe
from ..losses import LossSpec, term_prefixes
from ..result import Comparison, Ranked
from .plots import (held_out, plot_classification, plot_curves, plot_per_class, plot_precision_recall,
                    plot_predictions)

REPORT_SPACE_MB = 32  #: free space asked of the report folder's disk: room for its plots, CSVs and results.json
TABLE_WIDTH = 120  #: the widest a printed table may be: it fits a 120-column terminal without wrapping
VERDICT = "vs best"  #: the column saying best / equivalent / tied / worse with the p-value


TITLES = {ADJUSTED: "after post-hoc logit adjustment", AT_HALF: "at threshold 0.5", PER_CLASS: "per class"}
"""The tables after the ranking and the topology-and-costs one, in the order they print."""


def header(key: str) -> str:
    """The short column header of metric ``key``."""
    return describe(key).header


def _keys(comparison: Comparison, table: str) -> List[str]:
    """The metrics of ``table``; the ranking metric leads the pooled table and is in no other."""
    keys = [k for k in comparison.metric_keys() if k != comparison.metric and describe(k).table == table]
    return [comparison.metric] + keys if table == POOLED else keys


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _ranking_cell(result: Ranked) -> str:
    low, high = result.ci95
    return _number(result.mean) if math.isnan(low) else f"{result.mean:.3f} ±{(high - low) / 2:.3f}"


def _verdict(result: Ranked, best: Ranked) -> str:
    """``best``, or ``equivalent`` / ``tied`` / ``worse`` with the adjusted p-value of "worse than the best"."""
    if result is best:
        return "best"
    if math.isnan(result.p_value):
        return "-"
    p = result.p_value
    shown = "p<0.01" if p < 0.01 else f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"  # 0.049 and 0.051: not both 0.05
    word = "equivalent" if result.equivalent else "tied" if result.tied else "worse"
    return f"{word} {shown}"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f} %"


def _resampled(comparison: Comparison) -> bool:
    """Whether the statistics resampled anything (an interval, a test): not with one seed and no per-sample
    scores, where "best in" and the verdicts say nothing."""
    best = comparison.ranking[0]
    return not (math.isnan(comparison.winner_entry.ci95[0])
                and all(math.isnan(e.p_value) for e in comparison.ranking if e is not best))


def _cost_keys(comparison: Comparison) -> List[str]:
    """The cost columns the runs can fill: seconds per epoch (else per run), peak memory when measured."""
    spent = [entry.costs() for entry in comparison.ranking]
    time = "epoch_seconds" if any(not math.isnan(c["epoch_seconds"]) for c in spent) else "run_seconds"
    return [time] + (["peak_mb"] if any(not math.isnan(c["peak_mb"]) for c in spent) else [])


COST_HEADERS = {"epoch_seconds": "s/epoch", "run_seconds": "s/run", "peak_mb": "Peak MB"}
EPOCH_TIMING = {  #: how the trainers measured ``epoch_seconds`` (``run.artifacts["epoch_timing"]``)
    "after_first": "the median epoch (training and validation) after the first, which pays the process warm-up",
    "only": "the one epoch, warm-up included",
    None: "the whole run divided by its epochs, warm-up included (the loss trained first pays it)",
}


def cost_note(comparison: Comparison) -> str:
    """How the cost columns were measured ("" when there is nothing to say)."""
    if "epoch_seconds" not in _cost_keys(comparison):
        return "s/run: the whole call of train, the first loss's including the process warm-up"
    timings = {run.artifacts.get("epoch_timing") for entry in comparison.ranking for run in entry.runs}
    return "s/epoch: " + "; or ".join(EPOCH_TIMING[t] for t in sorted(timings, key=str))


def _rows(comparison: Comparison, keys: Sequence[str], *, ranked: bool = False, costs: bool = False
          ) -> Tuple[List[str], List[List[str]]]:
    """Header and rows: rank, loss, ``keys`` (means over seeds); ``ranked``: the ranking metric with its
    interval first and the "best in" and verdict columns last; ``costs``: seconds per epoch and peak memory."""
    entries, resampled = comparison.ranking, _resampled(comparison)
    cost_keys = _cost_keys(comparison) if costs else []
    head = ["#", "Loss"] + [header(k) for k in keys] + [COST_HEADERS[k] for k in cost_keys] \
        + (["Best in", VERDICT] if ranked else [])
    rows = []
    for rank, result in enumerate(entries, start=1):
        row = [str(rank), result.loss] + [_ranking_cell(result) if ranked and k == comparison.metric
                                          else _number(result.summary(k)[0]) for k in keys]
        spent = result.costs()
        row += [_number(spent[k], 2 if k != "peak_mb" else 1) for k in cost_keys]
        row += [_percent(result.best_fraction) if resampled else "n/a", _verdict(result, entries[0])] if ranked \
            else []
        rows.append(row)
    return head, rows


def _tables(comparison: Comparison) -> List[Tuple[str, List[str], List[List[str]]]]:
    """``(title, header, rows)`` of each table: the ranking with the pooled metrics and the verdicts; topology
    and costs; then those of :data:`TITLES` that have metrics."""
    title = comparison.title
    tables = [(f"{title} (held-out, ranked by {header(comparison.metric)})",
               *_rows(comparison, _keys(comparison, POOLED), ranked=True))]
    topology = _keys(comparison, TOPOLOGY)
    tables.append((f"{title}: {'topology and costs' if topology else 'costs'}",
                   *_rows(comparison, topology, costs=True)))
    for table, caption in TITLES.items():
        keys = _keys(comparison, table)
        if keys:
            tables.append((f"{title}: {caption}", *_rows(comparison, keys)))
    return tables


def _uses_samples(comparison: Comparison) -> bool:
    """Whether every final run recorded per-sample scores of the ranking metric (the statistics then use them)."""
    return all(comparison.metric in run.samples for entry in comparison.ranking for run in entry.runs)


def interval_text(comparison: Comparison) -> str:
    """What the ± of the ranking column is."""
    seeds = len(comparison.seeds)
    if _uses_samples(comparison):
        unit = "images" if comparison.kind in (BINARY, MULTICLASS) else "samples"
        return f"95 % t-interval over held-out {unit} x seeds (seed and sample variance components)"
    if seeds < 2:
        return "no interval (one seed, no per-sample scores)"
    return f"95 % t-interval over {seeds} seeds (seed level only: no per-sample scores)"


def ranking_note(comparison: Comparison) -> str:
    seeds = len(comparison.seeds)
    interval = interval_text(comparison)
    measured = (f"no interval ({interval.removeprefix('no interval (')}" if interval.startswith("no interval")
                else f"± the half-width of its {interval}")
    note = (f"Held-out split, mean over {seeds} seed(s); ranked by {header(comparison.metric)}, {measured}; the "
            "other columns are means over the seeds")
    if comparison.kind == BINARY:
        note += (" (Thr: the threshold of the best F1 on the validation split, applied to the held-out split; "
                 "the @0.5 columns use 0.5; SDice@t: surface Dice at a tolerance of t pixels)")
    note += f". {comparison.footnote[0].upper()}{comparison.footnote[1:]}"
    tuned = comparison.tuned_trials
    if tuned:
        note += f"; hyperparameters tuned with {tuned} Optuna TPE trials per loss on the validation split"
    return note + f". {cost_note(comparison)}."


def _names(entries: Sequence[Ranked]) -> str:
    names = [entry.loss for entry in entries]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def recommendation(comparison: Comparison) -> str:
    """The loss to use (the one most often best in the resamples; among equally often best, the simplest) and
    how much the choice matters: which losses are equivalent, tied or worse."""
    from ..statistics import WINNER_TOLERANCE

    entries = comparison.ranking
    best, winner = entries[0], comparison.winner_entry
    mean, low, high = winner.mean, *winner.ci95
    shown = f"{header(comparison.metric)} {mean:.3f}" + ("" if math.isnan(low) else f" [{low:.3f}, {high:.3f}]")
    if not _resampled(comparison):
        return (f"Recommendation: {winner.loss} ({shown}){', the best mean' if winner is best else ''}; with one "
                "seed and no per-sample scores nothing is resampled or tested: train 3 or more seeds.")
    text = f"Recommendation: {winner.loss} ({shown}), best in {_percent(winner.best_fraction)} of resamples"
    rivals = [e for e in entries if e is not winner and e.best_fraction >= winner.best_fraction - WINNER_TOLERANCE]
    if rivals:
        text += (f", as often as {_names(rivals)}: the simplest (fewest terms, then fewest tunable "
                 "hyperparameters)")
    if winner is not best and best not in rivals:
        text += f"; {best.loss} has the best mean, but is best in fewer resamples"
    equivalent = [e for e in entries if e.equivalent]
    open_ = [e for e in entries if e is not best and e.tied and not e.equivalent]
    margin = comparison.margin
    if len(equivalent) > 1:
        text += (f". The choice among {_names(equivalent)} does not matter: with 95 % confidence for all at once, "
                 f"none is more than {margin:g} below {best.loss}")
    if open_:
        text += (f". Not settled: {_names(open_)} {'is' if len(open_) == 1 else 'are'} neither shown worse nor "
                 f"shown within {margin:g} of the best ("
                 + "; ".join(f"{e.loss}: {e.settle}" for e in open_) + ")")
    if len(entries) > 1 and all(not e.tied for e in entries if e is not best):
        text += "; every other loss is significantly worse"
    if len(comparison.seeds) < 2:
        text += "; one seed: the interval and the test leave out the seed-to-seed variation (train 3 or more seeds)"
    return text + "."


def paste_line(comparison: Comparison) -> str:
    """The line that builds the winner; for class folders, preceded by a comment with the class names in the
    order of the class indices (the counts in the string follow it)."""
    line = f'criterion = seesaw_losses.build_loss("{comparison.winner}")'
    classes = comparison.settings.get("classes")
    if not classes:
        return line
    return (f"# class indices as torchvision's ImageFolder numbers the folders (sorted names): "
            f"{', '.join(f'{k}: {name}' for k, name in enumerate(classes))}\n{line}")


def _render(title: str, head: List[str], rows: List[List[str]]) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rich import box

    # Text, not str: the user's names (paths, classes, functions such as my_mnist.py:train) stay literal, never
    # read as rich markup ("[red]") or emoji codes (":train:"). The title goes above it: rich would wrap it to the
    # table's width.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for k, name in enumerate(head):
        table.add_column(Text(name), justify="left" if k < 2 or name == VERDICT else "right", no_wrap=True)
    for row in rows:
        table.add_row(*map(Text, row))
    buffer = io.StringIO()
    # As wide as the table needs: a wrapped loss name or a cell split over two lines is hard to read and to copy.
    Console(file=buffer, width=1000, force_terminal=False, color_system=None).print(table)
    return "\n".join([title] + [line.rstrip() for line in buffer.getvalue().rstrip().splitlines()])


def _rich_table(title: str, head: List[str], rows: List[List[str]]) -> str:
    """The table, its columns after rank and loss split over several tables where one would be wider than
    :data:`TABLE_WIDTH` (many classes)."""
    parts, start = [], 2
    while start < len(head) or not parts:
        stop = len(head)
        while stop > start + 1 and _width(_render(title, *_columns(head, rows, start, stop))) > TABLE_WIDTH:
            stop -= 1
        parts.append(_render(title + (f" ({len(parts) + 1})" if stop < len(head) or parts else ""),
                             *_columns(head, rows, start, stop)))
        start = stop
    return "\n".join(parts)


def _columns(head: List[str], rows: List[List[str]], start: int, stop: int) -> Tuple[List[str], List[List[str]]]:
    return head[:2] + head[start:stop], [row[:2] + row[start:stop] for row in rows]


def _width(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def format_tables(comparison: Comparison) -> str:
    """The ranking (pooled metrics and verdicts), topology and costs, per-class / threshold-0.5 values, the note
    on what the numbers are and the recommendation, each table at most :data:`TABLE_WIDTH` columns wide."""
    parts = [_rich_table(*table) for table in _tables(comparison)]
    return "\n\n".join(parts + [ranking_note(comparison), recommendation(comparison)])


def _markdown_table(head: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if k < 2 else "---:" for k in range(len(head))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# --------------------------------------------------------------------------------------------------- files


def _summary(result: Ranked, keys: Sequence[str]) -> Dict[str, Dict[str, object]]:
    def clean(value: float) -> Optional[float]:
        return None if math.isnan(value) else round(value, 6)

    out = {}
    for key in keys:
        mean, low, high = result.summary(key)
        out[key] = {"mean": clean(mean), "ci95": [clean(low), clean(high)]}
    return out


def write_csv(comparison: Comparison, path: Path) -> Path:
    """One row per loss: rank, the loss and its built config, every metric's mean and interval, costs."""
    keys = comparison.metric_keys()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "loss", "config", "seeds", "tied", "p_value", "trials"]
                        + [f"{k}{part}" for k in keys for part in ("", "_ci_low", "_ci_high")]
                        + ["run_seconds", "epoch_seconds", "peak_mb"])
        for rank, result in enumerate(comparison.ranking, start=1):
            values = [f"{v:.6f}" for k in keys for v in result.summary(k)]
            costs = result.costs()
            writer.writerow([rank, result.loss, result.config, len(result.runs), result.tied,
                             f"{result.p_value:.4f}", result.trials] + values
                            + [f"{costs['run_seconds']:.3f}", f"{costs['epoch_seconds']:.3f}",
                               f"{costs['peak_mb']:.1f}"])
    return path


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _per_image(run) -> Dict[str, list]:
    """A run's per-sample scores by metric, with each image's name and ``size`` ``[height, width]`` when the run
    kept per-image entries (segmentation at native resolution, where sizes differ)."""
    document = {name: scores.tolist() for name, (scores, _) in run.samples.items()}
    entries = run.artifacts.get("per_image")
    if entries:
        document["name"] = [entry["name"] for entry in entries]
        document["size"] = [[entry["height"], entry["width"]] for entry in entries]
    return document


def comparison_json(comparison: Comparison) -> Dict[str, object]:
    keys = comparison.metric_keys()
    return _nan_to_none({
        "title": comparison.title, "description": comparison.description, "ranked_by": comparison.metric,
        "seeds": comparison.seeds, "margin": comparison.margin, "notes": comparison.notes,
        "statistics": comparison.footnote, "recommendation": recommendation(comparison),
        "results": [
            {"rank": rank, "loss": r.loss, "config": r.config, "hyperparameters": r.hyperparameters,
             "trials": r.trials, "pruned": r.pruned, "tied": r.tied, "equivalent": r.equivalent,
             "p_value": r.p_value, "best_fraction": r.best_fraction, "deficit_bound": r.deficit_bound,
             "settle": r.settle,
             "summary": _summary(r, keys), **r.costs(),
             "runs": [{"seed": run.seed, "metrics": run.metrics,
                       "per_image": _per_image(run),
                       "history": run.history, "seconds": round(run.seconds, 3),
                       "peak_mb": run.artifacts.get("peak_mb", math.nan)}
                      for run in r.runs]}
            for rank, r in enumerate(comparison.ranking, start=1)
        ],
    })


def hyperparameters(config: str) -> Dict[str, object]:
    """The options of a ``build_loss`` string, prefixed by term in a combination (as the search space names
    them)."""
    terms = parse_config(config)
    spec = LossSpec(config, terms)
    return {prefix + k: v for prefix, term in zip(term_prefixes(spec), terms) for k, v in term.items() if k != "type"}


def winner_document(comparison: Comparison) -> Dict[str, object]:
    winner = comparison.winner_entry
    mean, low, high = winner.summary(comparison.metric)
    return _nan_to_none({"loss": winner.config, "metric": comparison.metric, "mean": mean,
                         "ci95": [low, high], "best_fraction": winner.best_fraction, "tied": comparison.tied,
                         "equivalent": [entry.config for entry in comparison.ranking if entry.equivalent],
                         "hyperparameters": hyperparameters(winner.config)})


def write_winner(comparison: Comparison, out: Path) -> List[Path]:
    """``winner.json``, ``winner.yaml`` (Hydra: ``instantiate(cfg.loss)``) and ``winner_mmengine.py``
    (``build_loss(cfg.loss)``)."""
    document = winner_document(comparison)
    config = document["loss"]
    paths = [out / "winner.json", out / "winner.yaml", out / "winner_mmengine.py"]
    paths[0].write_text(json.dumps(document, indent=2) + "\n")
    paths[1].write_text(f"# Hydra / OmegaConf: criterion = hydra.utils.instantiate(cfg.loss)\n"
                        f"loss:\n  _target_: seesaw_losses.build_loss\n  config: {json.dumps(config)}\n")
    terms = parse_config(config)
    body = ", ".join(f"dict({', '.join(f'{k}={v!r}' for k, v in term.items())})" for term in terms)
    paths[2].write_text("# mmengine config: criterion = seesaw_losses.build_loss(cfg.loss)\n"
                        f"loss = {body if len(terms) == 1 else '[' + body + ']'}\n")
    return paths


def _trials(result: Ranked) -> str:
    return f"{result.trials} ({result.pruned} pruned)" if result.pruned else str(result.trials)


def _markdown(comparison: Comparison, images: Sequence[Path]) -> str:
    lines = [f"## {comparison.title}", "", comparison.description, ""]
    lines += [f"- {note}" for note in comparison.notes] + ([""] if comparison.notes else [])
    for k, (title, head, rows) in enumerate(_tables(comparison)):
        caption = title.removeprefix(f"{comparison.title}: ")
        lines += ([f"{caption[0].upper()}{caption[1:]}:", ""] if k else []) + [_markdown_table(head, rows), ""]
    lines += [ranking_note(comparison), "", f"**{recommendation(comparison)}**", "", "```python",
              paste_line(comparison), "```", ""]
    configs = [[result.loss, f"`{result.config}`", _trials(result)] for result in comparison.ranking]
    lines += ["Trained as (the `build_loss` string, data-derived settings written out):", "",
              _markdown_table(["Loss", "build_loss", "Trials"], configs), ""]
    lines += [f"![{path.stem}]({path.name})\n" for path in images]
    return "\n".join(lines)


def _has_curves(comparison: Comparison) -> bool:
    """Whether every run kept a training loss and a validation value per epoch, the same number of each."""
    lengths = {len(run.history.get(key, [])) for entry in comparison.ranking for run in entry.runs
               for key in ("train_loss", "validation")}
    return len(lengths) == 1 and 0 not in lengths


def write_report(out: Path, comparisons: Dict[str, Comparison], settings: Dict[str, object], title: str
                 ) -> List[Path]:
    """Write every plot (those the runs kept what it needs for), ``results.json``, one CSV per comparison, the
    winner of the first and ``report.md`` into ``out``; return the paths written. ``results.json`` comes first,
    whole or not at all (a temporary file renamed), so that a failure writing the rest keeps every number."""
    out.mkdir(parents=True, exist_ok=True)
    from ... import __version__

    document = {"seesaw_losses_version": __version__, "settings": settings,
                **{name: comparison_json(comparison) for name, comparison in comparisons.items()}}
    results = out / "results.json"
    write_atomically(results, json.dumps(document, indent=2))
    written: List[Path] = []
    sections = []
    for name, comparison in comparisons.items():
        images = [plot_curves(comparison, out / f"{name}_curves.png")] if _has_curves(comparison) else []
        segmentation = held_out(comparison)
        if comparison.kind == BINARY and segmentation is not None:
            images.append(plot_precision_recall(comparison, segmentation, out / f"{name}_precision_recall.png"))
        if comparison.kind in (BINARY, MULTICLASS) and segmentation is not None:
            images.append(plot_predictions(comparison, segmentation, out / f"{name}_predictions.png"))
        if comparison.kind == MULTICLASS:
            images.append(plot_per_class(comparison, "iou", out / f"{name}_per_class.png"))
        if comparison.kind == LONG_TAIL:
            images.append(plot_per_class(comparison, "accuracy", out / f"{name}_per_class.png",
                                         comparison.class_counts))
        if comparison.kind == CLASSIFICATION:
            images += plot_classification(comparison, out, name)
        written += images + [write_csv(comparison, out / f"{name}.csv")]
        sections.append(_markdown(comparison, images))
    first = next(iter(comparisons.values()))
    written += write_winner(first, out)

    report = out / "report.md"
    report.write_text(f"# {title}\n\n" + "\n".join(sections)
                      + f"\nThe winner of {first.title.lower()} as a config: `winner.json`, `winner.yaml` (Hydra), "
                        "`winner_mmengine.py`. All numbers: `results.json` and the CSV files.\n")
    return written + [results, report]


def write_atomically(path: Path, text: str) -> None:
    """``path`` holds ``text`` whole, or keeps what it held: written to a temporary file beside it, then renamed."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_report_folder(out: Optional[Path]) -> None:
    """Before any training: ``out`` (None: no report) is a folder or can be made one, this process may write
    there, and its disk has :data:`REPORT_SPACE_MB` free; a :class:`DataError` naming ``out=`` otherwise."""
    if out is None:
        return
    out = Path(out)
    existing = next(folder for folder in (out, *out.absolute().parents) if folder.exists())
    if not existing.is_dir():
        where = "exists and is not a folder" if existing == out else f"is under {str(existing)!r}, a file"
        raise DataError(f"compare: out={str(out)!r} {where}; choose another out= folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "is" if existing == out else f"would be made in {str(existing)!r}, which is"
        raise DataError(f"compare: out={str(out)!r} {where} not writable (read-only, or not yours); choose "
                        "another out= folder")
    free = shutil.disk_usage(existing).free / 2**20
    if free < REPORT_SPACE_MB:
        raise DataError(f"compare: out={str(out)!r} is on a disk with {free:.1f} MB free; the report needs about "
                        f"{REPORT_SPACE_MB} MB: free some space or choose another out= folder")


class ReportError(DataError):
    """The comparison finished but its report could not be written whole; ``result`` holds every number, and
    ``results.json`` in the folder too when it was written."""

    def __init__(self, result: Comparison, out: Path, error: OSError) -> None:
        self.result = result
        self.failure = (f"writing the report into out={str(out)!r} failed ({type(error).__name__}: "
                        f"{error.strerror or error}); " + (f"the results are kept in {out / 'results.json'}"
                                                          if (out / "results.json").is_file() else
                                                          "no file could be written"))
        super().__init__(f"compare: the comparison finished, but {self.failure}; free space (or choose another "
                         "folder) and write the report again with error.result.save(folder)")


def save_report(result: Comparison, out: Path) -> List[Path]:
    """Write the report of one comparison into ``out``; an ``OSError`` on the way (a full disk) is a
    :class:`ReportError` carrying ``result``."""
    try:
        return write_report(out, {result.name: result}, {result.name: result.settings},
                            f"{result.title}: losses compared")
    except OSError as error:
        raise ReportError(result, out, error) from error
