"""``emoblend batch``: emotions and blendshapes of whole video and photo collections."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .common import FaceModelOption
from .realtime_cmd import ModelOption, NumFacesOption

EngineOption = typer.Option(
    "local", "--engine", help="local: a process pool on this machine; ray: Ray actors "
    '(pip install "emoblend[ray]").'
)
RayAddressOption = typer.Option(
    None, "--ray-address",
    help="Join a running Ray cluster (auto, or ray://HOST:PORT); default: start a local Ray.",
)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)


def batch(
    inputs: list[str] = typer.Argument(
        ..., help="Videos, photos, folders (searched recursively) or @list.txt (one path a line)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder: parts/*.parquet, summary.csv.",
                             file_okay=False),
    engine: str = EngineOption,
    workers: int | None = typer.Option(
        None, "--workers", help="Worker processes or Ray actors (default: all cores)."),
    ray_address: str | None = RayAddressOption,
    model: str | None = ModelOption,
    num_faces: int = NumFacesOption,
    landmarks: bool = typer.Option(
        False, "--landmarks", help="Also store the 478 landmarks and the 4×4 face matrix."),
    every: int = typer.Option(1, "--every", help="Keep every Nth video frame."),
    face_model: Path | None = FaceModelOption,
) -> None:
    """Read every face in every video and photo into one Parquet dataset, resumably.

    Videos are read in VIDEO mode (tracked, stabilized, as in `emoblend video`), photos in
    IMAGE mode. Rerun the same command after a crash or Ctrl-C to finish the rest. Exit
    status 1 when some inputs failed (their reasons are in summary.csv).
    """
    from ..batch import BatchSettings, run_batch

    console = Console(stderr=True)
    settings = BatchSettings(model=model, num_faces=num_faces, landmarks=landmarks, every=every,
                             face_model=str(face_model) if face_model else None)
    result = run_batch(inputs, out, settings, engine=engine, workers=workers,
                       ray_address=ray_address,
                       on_stage=lambda msg: console.print(msg, highlight=False, soft_wrap=True))
    faces = sum(r.faces for r in result.records)
    ok = len(result.records) - len(result.failed)
    Console().print(
        f"{ok} of {len(result.records)} inputs read: {result.frames:,} frames, {faces:,} face "
        f"rows; wrote {result.parts_dir} and {result.summary_path}",
        highlight=False, soft_wrap=True,
    )
    if result.failed:
        console.print(f"{len(result.failed)} of {len(result.records)} inputs failed; reasons "
                      f"in {result.summary_path}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
