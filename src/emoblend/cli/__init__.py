"""The ``emoblend`` command line: one command per verb, a one-line error for a user's mistake.

Each area registers its commands from its own module, so this file stays a table of contents.
"""

from __future__ import annotations

import sys

import typer
import typer.main

from ..errors import EmoblendError
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
    """Entry point: run the app; turn user errors into one line on stderr and exit status 2."""
    try:
        plain_help(typer.main.get_command(app))(prog_name="emoblend")
    except EmoblendError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
