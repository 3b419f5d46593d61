"""Pieces shared by the command modules: options that mean the same everywhere."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

FaceModelOption = typer.Option(
    None,
    "--face-model",
    help="MediaPipe face_landmarker.task file "
    "(default: $EMOBLEND_FACE_MODEL, the cache, or a download).",
    dir_okay=False,
)


class DefaultCommandGroup(TyperGroup):
    """A group that runs its ``default_command`` when the first word names no subcommand.

    It lets ``emoblend blendshapes IMAGE...`` and ``emoblend blendshapes select TABLE``
    live side by side.
    """

    default_command = "extract"

    def parse_args(self, ctx, args):  # noqa: ANN001 - click's signature
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args.insert(0, self.default_command)
        return super().parse_args(ctx, args)
