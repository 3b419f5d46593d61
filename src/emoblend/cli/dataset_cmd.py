"""``emoblend dataset``: build the FER2013 blendshape feature table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..errors import EmoblendError
from .batch_cmd import EngineOption, RayAddressOption
from .common import FaceModelOption

dataset_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Build the FER2013 feature table."
)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")


@dataset_app.command("build")
def build(
    fer2013: Path = typer.Option(
        ...,
        "--fer2013",
        help="FER2013 CSV (.csv or .csv.gz) with emotion,pixels,Usage.",
        dir_okay=False,
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder: features.parquet, report.md/json, undetected.png.",
        file_okay=False,
    ),
    limit: int | None = typer.Option(
        None, "--limit", help="Take only the first N rows of each split (a quick build)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Worker processes (default: all cores)."
    ),
    no_augment: bool = typer.Option(
        False, "--no-augment", help="No augmented copies (same as --augment-copies 0)."
    ),
    augment_copies: int = typer.Option(
        1,
        "--augment-copies",
        help="Augmented copies (flip / rotation up to ±36°) per kept Training image.",
    ),
    landmarks: bool = typer.Option(
        False, "--landmarks", help="Also store the 478 landmarks and the 4×4 face matrix."
    ),
    no_caps: bool = typer.Option(
        False,
        "--no-caps",
        help="Keep every Training image (no Table 2 caps): what the shipped models train on.",
    ),
    crops: int | None = typer.Option(
        None,
        "--crops",
        help="Also write OUT/crops.npy: each row's aligned S×S grey face crop (needs --landmarks).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the Training caps and augmentation."),
    chunk_size: int = typer.Option(
        256, "--chunk-size", help="Images per shard (the unit a killed build resumes from)."
    ),
    face_model: Path | None = FaceModelOption,
    engine: str = EngineOption,
    ray_address: str | None = RayAddressOption,
) -> None:
    """Turn FER2013 into a table of blendshape scores, one row per image or augmented copy.

    Training is capped per the paper's Table 2 (--no-caps keeps it whole); PublicTest (val) and
    PrivateTest (test) are
    kept whole. A killed build resumes from the shards in OUT/.shards when rerun with the
    same options, and gives the same table.
    """
    from ..data.build import NO_CAPS, TABLE_NAME, BuildConfig, build_dataset
    from ..features.table import CROPS_NAME

    config = BuildConfig(
        fer2013=fer2013,
        out=out,
        limit=limit,
        workers=workers,
        augment_copies=0 if no_augment else augment_copies,
        landmarks=landmarks,
        seed=seed,
        face_model=face_model,
        chunk_size=chunk_size,
        crop_size=crops,
        **({"caps": NO_CAPS} if no_caps else {}),
    )
    extract = None
    if engine == "ray":
        from functools import partial

        from ..batch.ray import import_ray, ray_extract

        import_ray()  # a missing Ray is said before any work
        extract = partial(ray_extract, address=ray_address)
    elif engine != "local":
        raise EmoblendError(f"--engine {engine!r}: use local or ray")
    console = Console(stderr=True)
    result = build_dataset(config, on_stage=lambda msg: console.print(msg, highlight=False),
                           extract=extract)
    r, t = result.report, result.report["timings"]
    missed = r["table3_undetected"]["by_class"]
    splits = ", ".join(f"{s} {n:,}" for s, n in r["table"]["rows_by_split"].items())
    console.print(
        f"{r['table']['rows']:,} rows ({splits}); "
        f"no face in {sum(sum(v.values()) for v in missed.values()):,} original images; "
        f"{t['total_s']:.0f} s in all",
        highlight=False,
    )
    console.print(
        f"wrote {out / TABLE_NAME}" + (f", {CROPS_NAME}" if crops else "")
        + ", report.md, report.json, undetected.png",
        highlight=False,
    )
