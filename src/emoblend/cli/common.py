"""Pieces shared by the command modules: options that mean the same everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from ..errors import EmoblendError

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


MaxPixelsOption = typer.Option(
    None, "--max-pixels", min=1,
    help="Refuse images with more pixels than this, read from the header before decoding "
    "(default: $EMOBLEND_MAX_PIXELS or 50000000).",
)

IMAGE_NUM_FACES = 20
"""Photo commands find every face by default (a group photo); videos follow the largest one."""

PARTIAL_EXIT = 3
"""Exit status of a batch command that wrote its results but could not read some inputs
(2 means nothing was done: a user's mistake; 1 is a bug's traceback)."""


def image_batch(paths: list[Path], max_pixels: int | None) -> list[Path]:
    """The image files behind ``paths`` (folders expanded), checked before any model loads.

    Cheap checks only (the files exist, the limit is valid), so ``image not found`` is what a
    user sees for a mistyped name, even where the face model is missing too.
    """
    from ..io.images import check_image_file, expand_image_paths, max_pixels_limit

    max_pixels_limit(max_pixels)
    files = expand_image_paths(paths)
    if not files:
        raise EmoblendError("no image files found in the given folders")
    if not any(f.is_file() for f in files):
        check_image_file(files[0])
    return files


def check_batch(failures: list[tuple[Path, str]], total: int) -> None:
    """Before writing a batch's results: if no file could be read, the first reason (exit 2)."""
    if failures and len(failures) == total:
        more = f" (and {total - 1} more files could not be read)" if total > 1 else ""
        raise EmoblendError(failures[0][1] + more)


def finish_batch(failures: list[tuple[Path, str]], total: int) -> None:
    """After writing a batch's results: if some files failed, a one-line count on stderr and
    exit status :data:`PARTIAL_EXIT`."""
    if failures:
        sys.stderr.write(
            f"error: {len(failures)} of {total} images could not be read (first: "
            f"{failures[0][0]}); their rows say why\n"
        )
        raise typer.Exit(PARTIAL_EXIT)


_METAVARS = {"file": "FILE", "directory": "DIR", "dir": "DIR", "path": "PATH", "int": "N",
             "int range": "N", "float": "NUMBER", "float range": "NUMBER", "str": "TEXT",
             "bool": ""}


def plain_help(command):  # noqa: ANN001, ANN201 - a command of the click that Typer brings
    """Make ``--help`` read like an ordinary command line tool's, for ``command`` and below.

    Typer labels each option with a tag such as ``<bool>`` or ``<int range>`` and writes a
    required argument as ``{paths}`` in the usage line; this gives options the usual
    metavars (FILE, DIR, N, TEXT; none for flags) and arguments their upper-case name
    (``PATHS...``, ``[NAME]`` when optional). Only the help text changes, never parsing.
    """
    ctx = command.context_class(command)  # Typer may vendor its own click: no import of ours
    help_option = command.get_help_option(ctx)  # click caches it, so the change sticks
    for param in [*command.params, *([help_option] if help_option else [])]:
        if param.param_type_name == "argument":
            name = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
            param.metavar = name
            usage = name if param.required else f"[{name}]"
            param.get_usage_pieces = lambda ctx, usage=usage: [usage]
            param.display_type_rich = lambda ctx: None
        elif param.metavar is not None:
            continue
        elif getattr(param, "is_flag", False):
            param.metavar = ""
        else:
            tag = param.display_type(ctx).strip("<>")
            param.metavar = _METAVARS.get(tag.removeprefix("list[").removesuffix("]"), "VALUE")
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command
