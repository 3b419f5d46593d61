"""Build the feature table from FER2013: caps, augmentation, parallel resumable extraction.

The build is a fixed *plan* (one row per image or augmented copy, in CSV order) cut into
chunks. Worker processes, each holding one IMAGE-mode FaceLandmarker for its whole life,
turn chunks into features; the parent writes every finished chunk atomically as a shard
under ``OUT/.shards/``. A killed build therefore loses at most the chunks in flight, and a
rerun with the same inputs skips the shards it finds: IMAGE mode is deterministic and every
augmentation is drawn from (seed, image_id, copy), so the resumed table is identical to an
uninterrupted one. The final table, report and figure are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing.util import Finalize
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..face.blendshapes import BLENDSHAPE_NAMES
from ..features.crop import aligned_crop
from ..features.table import (
    CROPS_NAME,
    LANDMARK_COLUMNS,
    MATRIX_COLUMNS,
    META_COLUMNS,
    face_row,
)
from ..io.atomic import atomic_path, check_output
from ..io.signals import signals_deferred
from ..labels import fer_to_label
from ..progress import progress_bar
from .augment import NONE, apply_augmentation, draw_augmentation
from .fer2013 import TRAIN_CAPS, Fer2013, load_fer2013, select_rows

SHARD_DIR = ".shards"
TABLE_NAME = "features.parquet"
NO_CAPS: dict[str, int | None] = dict.fromkeys(TRAIN_CAPS)
"""Caps that keep every Training image (``dataset build --no-caps``)."""
_PLAN_VERSION = 1  # bump when the shard layout or the extraction changes


def default_workers() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides the table (and how fast it is made)."""

    fer2013: Path
    out: Path
    limit: int | None = None
    workers: int | None = None
    augment_copies: int = 1
    landmarks: bool = False
    seed: int = 0
    face_model: Path | None = None
    chunk_size: int = 256
    caps: Mapping[str, int | None] = field(default_factory=lambda: dict(TRAIN_CAPS))
    crop_size: int | None = None
    """Also write each row's aligned face crop (S×S grey) to OUT/crops.npy; needs landmarks."""

    def __post_init__(self) -> None:
        if self.crop_size is not None and not 16 <= self.crop_size <= 256:
            raise DatasetError(f"--crops is {self.crop_size}; give a side of 16 to 256 pixels")
        if self.crop_size is not None and not self.landmarks:
            raise DatasetError("--crops needs --landmarks (the crop is aligned on them)")
        if self.limit is not None and self.limit < 1:
            raise DatasetError(f"--limit is {self.limit}; give 1 or more rows per split")
        if self.workers is not None and self.workers < 1:
            raise DatasetError(f"--workers is {self.workers}; give 1 or more")
        if self.augment_copies < 0:
            raise DatasetError(f"--augment-copies is {self.augment_copies}; give 0 or more")
        if self.out.exists() and not self.out.is_dir():
            raise DatasetError(f"--out {self.out} is a file; give a folder for the build")
        if self.chunk_size < 1:
            raise DatasetError(f"chunk size is {self.chunk_size}; give 1 or more")

    def summary(self) -> dict:
        """The build's settings as plain JSON-able data (for the report)."""
        summary = asdict(self)
        summary["fer2013"] = str(self.fer2013)
        summary["out"] = str(self.out)
        summary["face_model"] = str(self.face_model) if self.face_model else None
        summary["caps"] = dict(self.caps)
        return summary


def feature_columns(landmarks: bool) -> tuple[str, ...]:
    return BLENDSHAPE_NAMES + (LANDMARK_COLUMNS + MATRIX_COLUMNS if landmarks else ())


def plan_rows(data: Fer2013, rows: np.ndarray, *, augment_copies: int, seed: int) -> pd.DataFrame:
    """The table's metadata, one row per image to extract: each kept image as it is
    ("none"), then, for Training images, ``augment_copies`` augmented copies of it."""
    frame = data.frame().iloc[data.positions(rows)]
    parts = []
    for image_id, split, emotion in zip(
        frame["image_id"], frame["split"], frame["emotion"], strict=True
    ):
        parts.append((image_id, split, emotion, NONE))
        if split == "train":
            for copy in range(1, augment_copies + 1):
                parts.append((image_id, split, emotion, draw_augmentation(seed, image_id, copy)))
    plan = pd.DataFrame(parts, columns=["image_id", "split", "emotion", "augmentation"])
    plan["image_id"] = plan["image_id"].astype(np.int64)
    plan["emotion"] = plan["emotion"].astype(np.int64)
    plan.insert(3, "label", fer_to_label(plan["emotion"].to_numpy()))
    return plan


# ---------------------------------------------------------------- worker side

class ChunkExtractor:
    """One worker's IMAGE-mode landmarker, mapping chunks ``(pixels, augmentations)`` to
    ``(features, detected)``: built inside the worker process, closed when it ends. The local
    pool below and the Ray engine (``emoblend.batch.ray``) both run it, so their tables match."""

    def __init__(self, model_path: str, landmarks: bool) -> None:
        from ..face.landmarker import FaceLandmarker

        self.landmarker = FaceLandmarker(model_path, mode="image")
        self.landmarks = landmarks

    def __call__(self, chunk: tuple[np.ndarray, list[str]]) -> tuple[np.ndarray, np.ndarray]:
        pixels, augmentations = chunk
        return extract_images(self.landmarker, pixels, augmentations, self.landmarks)

    def close(self) -> None:
        self.landmarker.close()


_worker: ChunkExtractor | None = None


def _init_worker(model_path: str, landmarks: bool) -> None:
    """Open this worker's one extractor; closed by multiprocessing's exit hooks."""
    global _worker
    _worker = ChunkExtractor(model_path, landmarks)
    Finalize(_worker, _worker.close, exitpriority=10)


def _extract_chunk(pixels: np.ndarray, augmentations: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, NaN where no face) and detected flags for one chunk of images."""
    return _worker((pixels, augmentations))


def extract_images(
    landmarker, pixels: np.ndarray, augmentations: list[str], landmarks: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``landmarker`` on each image after its augmentation; the first face's features."""
    columns = feature_columns(landmarks)
    features = np.empty((len(pixels), len(columns)), dtype=np.float32)
    detected = np.zeros(len(pixels), dtype=bool)
    for i, (image, name) in enumerate(zip(pixels, augmentations, strict=True)):
        faces = landmarker.detect(apply_augmentation(image, name))
        detected[i] = bool(faces)
        row = face_row(faces[0] if faces else None, landmarks=landmarks)
        features[i] = [row[c] for c in columns]
    return features, detected


# ---------------------------------------------------------------- parent side


@dataclass
class BuildResult:
    table: pd.DataFrame
    report: dict
    out: Path


def build_dataset(
    config: BuildConfig,
    *,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
    extract: Callable[..., Iterator[tuple[int, np.ndarray, np.ndarray]]] | None = None,
) -> BuildResult:
    """Run the whole build; returns the table and the report (also written to disk).

    Workers are spawned processes: a script calling this needs the usual
    ``if __name__ == "__main__":`` guard. ``extract`` runs the chunks elsewhere (the Ray
    engine); it takes :func:`extract_parallel`'s arguments and yields what it yields.
    """
    from ..face.model_file import resolve_face_model
    from .report import make_report, write_report

    say = on_stage or (lambda _msg: None)
    started = time.perf_counter()
    if not Path(config.fer2013).is_file():  # the input first, then the output, then the model
        raise DatasetError(f"FER2013 CSV not found: {config.fer2013}")
    check_output(config.out, folder=True)
    model_path = resolve_face_model(config.face_model)
    data = load_fer2013(config.fer2013, limit=config.limit)
    loaded = time.perf_counter()
    rows = select_rows(data, caps=config.caps, seed=config.seed, limit=config.limit)
    plan = plan_rows(data, rows, augment_copies=config.augment_copies, seed=config.seed)
    chunks = [
        range(start, min(start + config.chunk_size, len(plan)))
        for start in range(0, len(plan), config.chunk_size)
    ]
    shard_dir = config.out / SHARD_DIR
    reused = _prepare_shards(
        shard_dir, _fingerprint(config, plan), plan, chunks, config.landmarks, say
    )
    todo = [i for i in range(len(chunks)) if i not in reused]
    workers = min(config.workers or default_workers(), max(len(todo), 1))
    say(
        f"{len(plan):,} images to extract in {len(chunks)} chunks"
        + (f" ({len(reused)} done by an earlier run)" if reused else "")
        + f", {workers} worker(s)"
    )
    t0 = time.perf_counter()
    extracted = _run_chunks(
        data, plan, chunks, todo, shard_dir, model_path, config.landmarks, workers, progress,
        extract or extract_parallel,
    )
    extract_s = time.perf_counter() - t0

    table = pd.concat(
        [pd.read_parquet(_shard_path(shard_dir, i)) for i in range(len(chunks))],
        ignore_index=True,
    )
    if len(table) != len(plan) or not table["image_id"].equals(plan["image_id"]):
        raise RuntimeError("the shards do not add up to the plan; delete OUT/.shards and rerun")
    config.out.mkdir(parents=True, exist_ok=True)
    crop_s = None
    if config.crop_size is not None:
        t1 = time.perf_counter()
        crops = table_crops(data, table, config.crop_size)
        with atomic_path(config.out / CROPS_NAME) as tmp, open(tmp, "wb") as fh:
            np.save(fh, crops)
        crop_s = time.perf_counter() - t1
    with atomic_path(config.out / TABLE_NAME) as tmp:
        table.to_parquet(tmp, index=False)
    timings = {
        "load_s": loaded - started,
        "extract_s": extract_s,
        "images_extracted": extracted,
        "images_per_s": extracted / extract_s if extract_s > 0 and extracted else None,
        "workers": workers,
        "chunks": len(chunks),
        "chunks_reused": len(reused),
        "crops_s": crop_s,
        "total_s": time.perf_counter() - started,
    }
    report = make_report(data, rows, table, config, timings)
    write_report(report, config.out)
    _write_undetected_figure(data, table, config.out / "undetected.png")
    shutil.rmtree(shard_dir, ignore_errors=True)
    return BuildResult(table, report, config.out)


def table_crops(data: Fer2013, table: pd.DataFrame, size: int) -> np.ndarray:
    """Aligned crops [rows, size, size] uint8 for a table with landmark columns: each row's
    image (after its augmentation) cropped on the landmarks found in it; zeros without a face."""
    row_of = np.searchsorted(data.image_id, table["image_id"].to_numpy())
    points = table[list(LANDMARK_COLUMNS)].to_numpy(np.float32).reshape(len(table), -1, 3)
    crops = np.zeros((len(table), size, size), dtype=np.uint8)
    found = table["detected"].to_numpy()
    for i in np.flatnonzero(found):
        image = apply_augmentation(data.pixels[row_of[i]], table["augmentation"].iat[i])
        crops[i] = aligned_crop(image, points[i], size)
    return crops


def _shard_path(shard_dir: Path, index: int) -> Path:
    return shard_dir / f"{index:05d}.parquet"


def _fingerprint(config: BuildConfig, plan: pd.DataFrame) -> str:
    """What the shards depend on: the CSV's bytes, the plan, the columns and chunking."""
    digest = hashlib.sha256()
    with open(config.fer2013, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    digest.update(
        json.dumps(
            [_PLAN_VERSION, config.landmarks, config.chunk_size, len(plan)], sort_keys=True
        ).encode()
    )
    digest.update(pd.util.hash_pandas_object(plan, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _prepare_shards(
    shard_dir: Path,
    fingerprint: str,
    plan: pd.DataFrame,
    chunks: list[range],
    landmarks: bool,
    say: Callable[[str], None],
) -> set[int]:
    """Shards a previous run of the same build left behind and that hold up; stale ones are
    removed, and a damaged one is removed (and said so) to be extracted again."""
    stamp = shard_dir / "plan.json"
    if stamp.is_file():
        try:
            same = json.loads(stamp.read_text())["fingerprint"] == fingerprint
        except (ValueError, KeyError):
            same = False
        if not same:
            shutil.rmtree(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        with atomic_path(stamp) as tmp:
            tmp.write_text(json.dumps({"fingerprint": fingerprint}))
    columns = table_columns(landmarks)
    reused = set()
    for i, chunk in enumerate(chunks):
        path = _shard_path(shard_dir, i)
        if not path.is_file():
            continue
        problem = _shard_problem(path, plan.iloc[chunk.start : chunk.stop], columns)
        if problem is None:
            reused.add(i)
        else:
            say(f"shard {path} from an earlier run is damaged ({problem}); "
                f"extracting its {len(chunk)} images again")
            path.unlink()
    return reused


def _shard_problem(path: Path, plan: pd.DataFrame, columns: list[str]) -> str | None:
    """What is wrong with a shard left by an earlier run, or None if it can be reused.

    It must read back as Parquet (its pages' checksums included), with the build's columns
    and types, and hold exactly the images its part of the plan names, in order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        shard = pq.read_table(path, page_checksum_verification=True).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        return f"unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if list(shard.columns) != columns:
        return "its columns are not the build's"
    if len(shard) != len(plan):
        return f"{len(shard)} rows where the plan has {len(plan)}"
    for key in ("image_id", "split", "emotion", "label", "augmentation"):
        if not np.array_equal(shard[key].to_numpy(dtype=object), plan[key].to_numpy(dtype=object)):
            return f"its {key} column differs from the plan's"
    features = shard[columns[len(META_COLUMNS):]]
    if shard["detected"].dtype != bool or (features.dtypes != np.float32).any():
        return "its columns have the wrong types"
    return None


def extract_parallel(
    pixels: list[np.ndarray],
    augmentations: list[list[str]],
    model_path: Path,
    *,
    landmarks: bool,
    workers: int,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Extract chunks of images in ``workers`` processes; yields (chunk number, features,
    detected) as each chunk finishes, in any order.

    ``pixels[k]`` holds chunk k's 48×48 images, ``augmentations[k]`` their augmentation
    names. Each worker opens one landmarker for its whole life. Processes are spawned, not
    forked: a forked MediaPipe graph would share state with its parent.
    """
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(str(model_path), landmarks),
    )
    try:
        # Workers start (on submit) with the stop signals blocked, and keep them so: a Ctrl-C
        # reaches the terminal's whole process group, a service manager's SIGTERM often the
        # whole group too, and the parent alone should decide, stopping the pool below.
        with signals_deferred():
            futures = {
                pool.submit(_extract_chunk, images, names): k
                for k, (images, names) in enumerate(zip(pixels, augmentations, strict=True))
            }
        for future in as_completed(futures):
            yield (futures[future], *future.result())
    finally:
        # On Ctrl-C or an error, drop the chunks not yet started instead of waiting for them.
        pool.shutdown(wait=True, cancel_futures=True)


def _run_chunks(
    data: Fer2013,
    plan: pd.DataFrame,
    chunks: list[range],
    todo: list[int],
    shard_dir: Path,
    model_path: Path,
    landmarks: bool,
    workers: int,
    progress: bool,
    extract: Callable[..., Iterator[tuple[int, np.ndarray, np.ndarray]]],
) -> int:
    """Extract the chunks in ``todo``, writing each as a shard; returns images extracted."""
    if not todo:
        return 0
    row_of = np.searchsorted(data.image_id, plan["image_id"].to_numpy())
    columns = list(feature_columns(landmarks))
    pending = set(todo)
    done_before = sum(len(chunk) for i, chunk in enumerate(chunks) if i not in pending)
    bar = progress_bar(enabled=progress, transient=False)
    extracted = 0
    with bar:
        task = bar.add_task("extracting blendshapes", total=len(plan), completed=done_before)
        results = extract(
            [data.pixels[row_of[chunks[i].start : chunks[i].stop]] for i in todo],
            [plan["augmentation"].iloc[chunks[i].start : chunks[i].stop].tolist() for i in todo],
            model_path,
            landmarks=landmarks,
            workers=workers,
        )
        for k, features, detected in results:
            i = todo[k]
            shard = plan.iloc[chunks[i].start : chunks[i].stop].reset_index(drop=True)
            shard["detected"] = detected
            shard = pd.concat([shard, pd.DataFrame(features, columns=columns)], axis=1)
            with atomic_path(_shard_path(shard_dir, i)) as tmp:
                # page checksums let a rerun tell a damaged shard from a good one
                shard.to_parquet(tmp, index=False, write_page_checksum=True)
            extracted += len(shard)
            bar.advance(task, len(shard))
    return extracted


def _write_undetected_figure(data: Fer2013, table: pd.DataFrame, path: Path) -> None:
    from .figures import plot_undetected_grid

    missed = table[~table["detected"] & (table["augmentation"] == NONE)]
    samples = missed.groupby("emotion", sort=True).head(6)
    row_of = np.searchsorted(data.image_id, samples["image_id"].to_numpy())
    plot_undetected_grid(
        data.pixels[row_of],
        samples["emotion"].to_numpy(),
        samples["image_id"].to_numpy(),
        path,
        total=len(missed),
    )


def table_columns(landmarks: bool) -> list[str]:
    """The feature table's columns, in order."""
    return list(META_COLUMNS) + list(feature_columns(landmarks))
