"""``emoblend blendshapes``: the 52 scores of each face in images, and the paper's selection."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..errors import EmoblendError
from .common import (
    IMAGE_NUM_FACES,
    DefaultCommandGroup,
    FaceModelOption,
    MaxPixelsOption,
    check_batch,
    finish_batch,
    image_batch,
)

blendshapes_app = typer.Typer(
    cls=DefaultCommandGroup,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Blendshape scores of faces in images (default), or the paper's selection rule (select).",
)


def register(app: typer.Typer) -> None:
    app.add_typer(blendshapes_app, name="blendshapes")


@blendshapes_app.command("extract")
def extract(
    images: list[Path] = typer.Argument(..., help="Image files or folders of images."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line, per face."),
    csv: Path | None = typer.Option(
        None, "--csv", help="Write one row per face to this CSV.", dir_okay=False
    ),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="Draw the first face's scores beside the image (the paper's Fig. 2) to this PNG.",
        dir_okay=False,
    ),
    num_faces: int = typer.Option(
        IMAGE_NUM_FACES, "--num-faces", min=1, help="Most faces to find per image."
    ),
    max_pixels: int | None = MaxPixelsOption,
    face_model: Path | None = FaceModelOption,
) -> None:
    """Print the 52 blendshape scores and the box of each face (IMAGE mode, deterministic).

    `emoblend blendshapes IMAGE...` is short for `emoblend blendshapes extract IMAGE...`.
    A file that cannot be read gets a row (an "error" key in JSON, an error column in the
    CSV); the others are still read and written, and the command then exits with status 3.
    """
    import pandas as pd

    from ..errors import ImageError
    from ..face.blendshapes import BLENDSHAPE_NAMES
    from ..face.figures import plot_face_blendshapes
    from ..face.landmarker import FaceLandmarker
    from ..io.atomic import atomic_path, check_output
    from ..io.images import read_image

    paths = image_batch(images, max_pixels)
    for output in (csv, plot):
        if output is not None:
            check_output(output)
    rows: list[dict] = []
    failures: list[tuple[Path, str]] = []
    first_face = None  # (image, face, path) for --plot, drawn once every image has been read
    with FaceLandmarker(face_model, num_faces=num_faces) as landmarker:
        for path in paths:
            box = dict.fromkeys(("x", "y", "w", "h"), None)
            try:
                image = read_image(path, max_pixels=max_pixels)
            except ImageError as exc:
                failures.append((path, str(exc)))
                rows.append(box | {"file": str(path), "face": None, "error": str(exc)})
                continue
            faces = landmarker.detect(image)
            if plot is not None and faces and first_face is None:
                first_face = (image, faces[0], path)
            if not faces:
                rows.append(box | {"file": str(path), "face": None})
            for i, face in enumerate(faces):
                row = {"file": str(path), "face": i}
                row.update(zip(("x", "y", "w", "h"), face.box, strict=True))
                row.update(zip(BLENDSHAPE_NAMES, map(float, face.blendshapes), strict=True))
                rows.append(row)
    check_batch(failures, len(paths))
    if plot is not None and first_face is None:
        raise EmoblendError(f"no face found in the images, so no plot was drawn to {plot}")
    console = Console(stderr=as_json)
    if plot is not None:
        image, face, path = first_face
        plot_face_blendshapes(image, face, plot, title=path.name)
    if csv is not None:
        columns = ["file", "face", "x", "y", "w", "h", *BLENDSHAPE_NAMES, "error"]
        with atomic_path(csv) as tmp:
            pd.DataFrame(rows, columns=columns).to_csv(tmp, index=False)
    if as_json:
        for row in rows:
            typer.echo(json.dumps({k: v for k, v in row.items() if v is not None or k == "face"}))
    elif csv is None:
        _print_table(console, rows)
    if plot is not None:
        console.print(f"plot written to {plot}", highlight=False)
    if csv is not None:
        console.print(f"{len(rows)} rows written to {csv}", highlight=False)
    finish_batch(failures, len(paths))


def _print_table(console: Console, rows: list[dict]) -> None:
    from ..face.blendshapes import BLENDSHAPE_NAMES

    faces = [r for r in rows if r["face"] is not None]
    for r in rows:
        if r["face"] is None:
            console.print(f"{r['file']}: {r.get('error') or 'no face found'}", highlight=False)
    if not faces:
        return
    table = Table(title="blendshape scores")
    table.add_column("blendshape")
    for r in faces:
        table.add_column(f"{Path(r['file']).name} #{r['face']}", justify="right")
    table.add_row("box (x, y, w, h)", *[f"{r['x']},{r['y']},{r['w']},{r['h']}" for r in faces])
    for name in BLENDSHAPE_NAMES:
        table.add_row(name, *[f"{r[name]:.3f}" for r in faces])
    console.print(table)


@blendshapes_app.command("select")
def select(
    table_path: Path = typer.Argument(..., metavar="TABLE", help="Feature table (Parquet or CSV)."),
    threshold: float = typer.Option(
        0.4, "--threshold", help="A score counts when it exceeds this."
    ),
    min_count: int = typer.Option(
        100, "--min-count", help="Keep a blendshape counted in more than this many images."
    ),
    split: str = typer.Option("train", "--split", help="Rows to count: train, val, test or all."),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="Draw all 52 scores with the threshold (the paper's Fig. 5) to this PNG.",
        dir_okay=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Apply the paper's rule: keep blendshapes above THRESHOLD in more than MIN_COUNT images."""
    from ..data.figures import plot_blendshape_scatter
    from ..face.blendshapes import BLENDSHAPE_NAMES, count_above, select_blendshapes
    from ..features.table import read_table

    table = read_table(table_path)
    if split != "all":
        if "split" not in table.columns or split not in set(table["split"]):
            raise EmoblendError(f"{table_path} has no rows with split={split!r}; use --split all")
        table = table[table["split"] == split]
    kept = select_blendshapes(table, threshold, min_count)
    counts = count_above(table, threshold)
    result = {
        "rows": len(table),
        "threshold": threshold,
        "min_count": min_count,
        "kept": kept,
        "dropped": [n for n in BLENDSHAPE_NAMES if n not in kept],
        "counts": {k: int(v) for k, v in counts.items()},
    }
    if plot is not None:
        plot_blendshape_scatter(table, threshold, plot)
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console()
    console.print(
        f"kept {len(kept)} of {len(BLENDSHAPE_NAMES)} blendshapes (paper: 27):", highlight=False
    )
    for name in kept:
        console.print(f"  {name}  ({counts[name]} images)", highlight=False)
    if plot is not None:
        console.print(f"plot written to {plot}", highlight=False)
