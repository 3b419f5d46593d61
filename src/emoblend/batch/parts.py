"""The batch dataset on disk: one Parquet part per unit, its per-input records, summary.csv.

Layout of ``--out DIR``::

    DIR/parts/*.parquet   the rows (read with pandas.read_parquet("DIR/parts"), pyarrow, Ray)
    DIR/summary.csv       one line per input: frames, faces, seconds, status, reason
    DIR/run.json          the settings the parts were made with

A worker writes its part in row groups as rows arrive (a long video never sits in memory),
under a hidden temporary name that readers skip, and renames it when the unit is done. The
per-input records travel inside the part's footer, so a finished part is the whole truth
about its inputs and a rerun only has to list the folder to know what is done.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.build import feature_columns
from ..errors import BatchError
from ..io.atomic import atomic_path
from ..io.timeline import timeline_columns

PARTS_DIR = "parts"
SUMMARY_NAME = "summary.csv"
SETTINGS_NAME = "run.json"
METADATA_KEY = b"emoblend.inputs"
ROWS_PER_GROUP = 1024
"""Rows buffered before a row group is written: ~6 MB with --landmarks."""


@dataclass
class InputRecord:
    """One input's line in summary.csv."""

    source: str
    kind: str
    frames: int = 0
    faces: int = 0
    """Face rows written (one per face per kept frame)."""
    seconds: float = 0.0
    status: str = "ok"
    """"ok" or "failed"."""
    reason: str = ""
    part: str = ""

    SUMMARY_COLUMNS = ("source", "kind", "frames", "faces", "seconds", "status", "reason", "part")


def head_columns(classes: tuple[str, ...]) -> list[str]:
    """Row columns before the features: the source, then `emoblend video`'s timeline columns
    with one probability column per class of the classifier."""
    return ["source", *timeline_columns(classes)]


def part_schema(classes: tuple[str, ...], landmarks: bool) -> pa.Schema:
    """The Arrow schema of every part (fixed, so an empty part concatenates with the rest)."""
    types = {"source": pa.string(), "label": pa.string(), "stable_label": pa.string()}
    fields = [
        pa.field(name, types.get(name, pa.float64() if name.startswith("p_") else pa.int64()))
        for name in head_columns(classes)
    ]
    fields += [pa.field(name, pa.float32()) for name in feature_columns(landmarks)]
    return pa.schema(fields)


class PartWriter:
    """Write one part: rows in row groups to a temporary file, renamed by :meth:`commit`.

    Use as a context manager; leaving it without commit() (an error, a kill) leaves no part.
    """

    def __init__(self, path: Path, classes: tuple[str, ...], landmarks: bool) -> None:
        self.path = path
        self.schema = part_schema(classes, landmarks)
        self._head = head_columns(classes)
        self._n_features = len(feature_columns(landmarks))
        self._meta: list[dict] = []
        self._features = np.empty((ROWS_PER_GROUP, self._n_features), dtype=np.float32)
        self.rows = 0
        """Rows added so far."""

    def __enter__(self) -> PartWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
        return self

    def add(self, head: dict, features: np.ndarray) -> None:
        """One row: the head columns as a dict, the feature columns as an array."""
        self._features[len(self._meta)] = features
        self._meta.append(head)
        self.rows += 1
        if len(self._meta) == ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        n = len(self._meta)
        columns = [pa.array([m[c] for m in self._meta], type=self.schema.field(c).type)
                   for c in self._head]
        columns += [pa.array(self._features[:n, j]) for j in range(self._n_features)]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self._meta.clear()

    def commit(self, records: list[InputRecord]) -> None:
        """Write the last rows and the inputs' records, close, and rename into place."""
        if self._meta or self.rows == 0:
            self._flush()
        self._writer.add_key_value_metadata(
            {METADATA_KEY: json.dumps([asdict(r) for r in records])}
        )
        self._writer.close()
        self._writer = None
        self._atomic.__exit__(None, None, None)

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if self._writer is not None:  # not committed: drop the temporary file
            self._writer.close()
            self._atomic.__exit__(exc_type or RuntimeError, exc, tb)


def read_records(path: Path) -> list[InputRecord] | None:
    """The input records in a finished part's footer; None if it is not a readable part."""
    try:
        meta = pq.read_metadata(path).metadata or {}
        return [InputRecord(**r) for r in json.loads(meta[METADATA_KEY])]
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
        return None


def prepare_out(out: Path, settings: dict) -> Path:
    """Make ``out`` ready and return its parts folder.

    The first run stores its settings; a rerun with other settings would mix rows of two
    kinds in one dataset, so it is refused. Temporary files of a killed run are removed.
    """
    if out.exists() and not out.is_dir():
        raise BatchError(f"--out {out} is a file; give a folder for the dataset")
    parts = out / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    stamp = out / SETTINGS_NAME
    if stamp.is_file():
        try:
            before = json.loads(stamp.read_text(encoding="utf-8"))
        except ValueError:
            before = None
        if before != settings:
            changed = sorted(k for k in settings if (before or {}).get(k) != settings[k])
            raise BatchError(
                f"{out} holds a run made with other settings ({', '.join(changed)}); "
                "give a new --out folder, or the same settings to resume it"
            )
    else:
        with atomic_path(stamp) as tmp:
            tmp.write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")
    remove_leftovers(parts)
    return parts


def remove_leftovers(parts: Path) -> None:
    """Delete the temporary files of units whose worker was killed."""
    for leftover in parts.glob(".*.tmp.parquet"):
        leftover.unlink(missing_ok=True)


def finished_parts(parts: Path) -> dict[str, list[InputRecord]]:
    """Part name -> its input records, for every finished part in the folder."""
    done = {}
    for path in parts.glob("*.parquet"):
        if path.name.startswith("."):  # a temporary file (pathlib's glob does not skip them)
            continue
        records = read_records(path)
        if records is not None:
            done[path.name] = records
    return done


def write_summary(path: Path, records: list[InputRecord]) -> None:
    """summary.csv, atomically: one line per input in the run's order."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=InputRecord.SUMMARY_COLUMNS)
        writer.writeheader()
        for r in records:
            row = asdict(r)
            row["seconds"] = round(r.seconds, 3)
            writer.writerow(row)
