"""The ``emoblend`` command line: one command per verb, a one-line error for a user's mistake.

Each area registers its commands from its own module, so this file stays a table of contents.
"""

from __future__ import annotations

import sys

import typer
import typer.main

from ..errors import EmoblendError
from ..io.signals import stop_on_signals
from . import batch_cmd, blendshapes_cmd, dataset_cmd, realtime_cmd, serve_cmd, train_cmd
from .common import plain_help

app = typer.Typer(
    name="emoblend",
    help="Emotion (happy / sad / unknown) from MediaPipe face blendshapes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: PATHS..., --csv FILE (see common.plain_help)
    context_settings={"max_content_width": 100},
)
blendshapes_cmd.register(app)
dataset_cmd.register(app)
realtime_cmd.register(app)
serve_cmd.register(app)
batch_cmd.register(app)
train_cmd.register(app)


def main() -> None:
    """Entry point: run the app; turn user errors into one line on stderr and exit status 2.

    SIGTERM unwinds like Ctrl-C (temporary files removed, `live` keeps its timeline), and a
    process stopped by either exits with the shell's status for it: 130 or 143.
    """
    with stop_on_signals() as stop:
        try:
            status = _run()
        except Exception:
            if stop.signum is None:
                raise
            status = None  # a failure the stop caused (say, a worker it ended): the stop says it
    if stop.signum is not None:
        sys.stderr.write(f"{stop.description}\n")
        status = stop.exit_status
    sys.exit(status)


def _run() -> int | str | None:
    try:
        plain_help(typer.main.get_command(app))(prog_name="emoblend")
    except EmoblendError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:  # Typer turns one into exit status 130 itself; this is a fallback
        return 130
    except SystemExit as exc:
        return exc.code
    return 0
