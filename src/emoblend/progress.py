"""The one progress-bar style for long work (dataset builds, training, videos, the demo).

Bars go to stderr so stdout keeps only results (``--json`` stays parseable), and they are
transient by default so that an error raised during the work is still a single line.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(*, enabled: bool = True, transient: bool = True) -> Progress:
    """A Rich progress bar: description, bar, done/total, elapsed and remaining time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
        disable=not enabled,
    )
