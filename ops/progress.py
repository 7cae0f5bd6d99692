"""Progress bars for long work, on stderr, only when a person is watching (a terminal)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress(description: str, total: int | None = None, unit: str = "items",
             enabled: bool = True):
    """Yields `advance(n)`; draws a bar (or a counter, without `total`) when enabled and
    stderr is a terminal, and does nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n: None
        return
    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), count,
               TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
