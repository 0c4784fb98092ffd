"""Progress of a comparison on stderr (``rich``): one bar for the whole plan with its ETA, one for the current run."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


class Tracker:
    """Counts epochs against the plan's total; ``enabled=False`` draws nothing.

    ``with tracker.run("focal seed 1", epochs) as advance:`` shows a bar for one training run; ``advance(text)``
    marks an epoch done and shows ``text`` (the epoch's loss and validation score) beside it.
    """

    def __init__(self, total_epochs: int, *, enabled: bool = True, title: str = "comparison") -> None:
        self.enabled = enabled and total_epochs > 0
        self._progress = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description:<34.34}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[status]}"), console=Console(stderr=True),
                                      transient=False)
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
        if self._progress is not None and epochs:
            self._progress.update(self._total, advance=epochs)

    @contextmanager
    def run(self, description: str, epochs: int) -> Iterator[Callable[[str], None]]:
        if self._progress is None:
            yield lambda status: None
            return
        task = self._progress.add_task(description, total=epochs, status="")

        def advance(status: str) -> None:
            self._progress.update(task, advance=1, status=status)
            self._progress.update(self._total, advance=1)

        try:
            yield advance
        finally:
            self._progress.remove_task(task)


QUIET = Tracker(0, enabled=False)
