"""Progress of a comparison on stderr: on a terminal, ``rich`` bars (one for the whole plan with its ETA, one for
the current run); otherwise (output redirected to a file, a pipe, a CI log) one line per finished run."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


class RunProgress:
    """What ``Tracker.run`` yields: call it once per epoch with a status text; set ``result`` (e.g.
    ``"dice 0.512"``) before the run ends to have it in the run's log line instead of the last status."""

    def __init__(self, advance) -> None:
        self._advance = advance
        self.result = ""

    def __call__(self, status: str) -> None:
        self.result = status or self.result
        self._advance(status)


class Tracker:
    """Counts steps (``unit``: epochs, or whole runs when the epochs of a run are unknown) against the plan's
    total; ``enabled=False`` shows nothing.

    ``with tracker.run("focal seed 1", epochs) as advance:`` follows one training run; ``advance(text)`` marks an
    epoch done with ``text`` (the epoch's loss and validation score). On a terminal the run has its own bar with
    ``text`` beside it; otherwise a line is written when the run ends:
    ``focal seed 1: loss 0.3121, val_dice 0.512; 12.3 s [36/108 epochs]``.
    """

    def __init__(self, total_epochs: int, *, enabled: bool = True, title: str = "comparison",
                 unit: str = "epochs") -> None:
        self.enabled = enabled and total_epochs > 0
        self.unit = unit
        self._progress = None
        self._total_epochs, self._done = total_epochs, 0
        if self.enabled:
            from rich.console import Console

            console = Console(stderr=True)
            if not console.is_terminal:
                return  # line-per-run log
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            # markup=False: loss strings and titles (the user's file and function names) are shown literally
            self._progress = Progress(TextColumn("{task.description:<34.34}", markup=False), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                                      TimeRemainingColumn(), TextColumn("{task.fields[status]}", markup=False),
                                      console=console, transient=False)
            self._total = self._progress.add_task(title, total=total_epochs, status="")

    def __enter__(self) -> "Tracker":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance_plan(self, epochs: int) -> None:
        """Count epochs done elsewhere (trials of worker processes)."""
        if not self.enabled or not epochs:
            return
        self._done += epochs
        if self._progress is not None:
            self._progress.update(self._total, advance=epochs)
        else:
            self._log(f"{epochs} {self.unit} trained by the worker processes")

    @contextmanager
    def run(self, description: str, epochs: int) -> Iterator[RunProgress]:
        if not self.enabled:
            yield RunProgress(lambda status: None)
            return
        if self._progress is None:
            progress = RunProgress(lambda status: setattr(self, "_done", self._done + 1))
            start = time.perf_counter()
            try:
                yield progress
            finally:
                self._log(f"{description}: {progress.result or 'ended'}; {time.perf_counter() - start:.1f} s")
            return
        task = self._progress.add_task(description, total=epochs, status="")

        def advance(status: str) -> None:
            self._done += 1
            self._progress.update(task, advance=1, status=status)
            self._progress.update(self._total, advance=1)

        try:
            yield RunProgress(advance)
        finally:
            self._progress.remove_task(task)

    def _log(self, text: str) -> None:
        print(f"{text} [{self._done}/{self._total_epochs} {self.unit}]", file=sys.stderr, flush=True)


QUIET = Tracker(0, enabled=False)
