"""Read and validate the FER2013 CSV; apply the paper's labels, splits and Training caps.

The CSV is checked in full before any work starts, so a bad row stops the build with one
line naming that row, not a crash an hour later in a worker. ``image_id`` is the 0-based
data-row number in the CSV (the header is not counted): it is the image's stable index,
carried into every derived row so that any prediction can be traced back to its pixels.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..labels import FER_EMOTIONS, SPLITS, fer_to_label

IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")

TRAIN_CAPS: dict[str, int | None] = {
    "angry": 1500,
    "disgust": None,
    "fear": 1500,
    "happy": 4000,
    "sad": 4000,
    "surprise": 1500,
    "neutral": 1500,
}
"""The paper's Table 2: most Training images kept per FER emotion (None: keep all)."""

SPLIT_ORDER = ("train", "val", "test")

_DAMAGED = (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError, zipfile.BadZipFile)
"""What a truncated or corrupt compressed file raises (a cut-off .gz: EOFError, which Typer
would print as a bare "Aborted!")."""


@dataclass(frozen=True)
class Fer2013:
    """The whole CSV, validated: one entry per row, in CSV order."""

    image_id: np.ndarray
    """(N,) int64 row numbers in the CSV."""
    emotion: np.ndarray
    """(N,) int64 FER codes 0-6."""
    split: np.ndarray
    """(N,) str: train / val / test."""
    pixels: np.ndarray
    """(N, 48, 48) uint8 grey images."""

    def __len__(self) -> int:
        return len(self.image_id)

    def positions(self, image_ids: np.ndarray) -> np.ndarray:
        """Where rows with these ``image_id`` values sit here (all of the CSV, or the rows a
        ``limit`` kept)."""
        return np.searchsorted(self.image_id, image_ids)

    def frame(self) -> pd.DataFrame:
        """The labels as a table (no pixels): image_id, split, emotion, label."""
        return pd.DataFrame(
            {
                "image_id": self.image_id,
                "split": self.split,
                "emotion": self.emotion,
                "label": fer_to_label(self.emotion),
            }
        )


def load_fer2013(path: str | os.PathLike, limit: int | None = None) -> Fer2013:
    """Read a FER2013 CSV (``.csv`` or ``.csv.gz``) and validate every row.

    Raises DatasetError naming the first bad row: a missing column, an emotion code outside
    0-6, a Usage other than Training / PublicTest / PrivateTest, or a pixel string that is
    not 2,304 integers in 0..255. With ``limit``, only the first ``limit`` rows of each split
    are kept and checked, and reading stops once every split has them (``image_id`` stays the
    row number in the whole CSV).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"FER2013 CSV not found: {path}")
    try:
        raw = _read_csv(path, limit)
    except (*_DAMAGED, ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(_unreadable(path, exc)) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DatasetError(
            f"{path} lacks column(s) {', '.join(missing)} (it has {', '.join(raw.columns)}); "
            "a FER2013 CSV has the columns emotion,pixels,Usage"
        )
    if raw.empty:
        raise DatasetError(f"{path} has no data rows")

    def where(i: int) -> str:
        row = int(raw.index[i])
        return f"{path}: row {row} (line {row + 2})"

    codes = pd.to_numeric(raw["emotion"].str.strip(), errors="coerce")
    bad = ~codes.isin(range(7))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(
            f"{where(i)} has emotion {raw['emotion'].iat[i]!r}; FER2013 codes are integers 0-6 "
            f"({', '.join(f'{k} {n}' for k, n in enumerate(FER_EMOTIONS))})"
        )
    usage = raw["Usage"].str.strip()
    bad = ~usage.isin(list(SPLITS))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(
            f"{where(i)} has Usage {raw['Usage'].iat[i]!r}; it must be one of {', '.join(SPLITS)}"
        )
    pixels = _parse_pixels(raw["pixels"], where)
    return Fer2013(
        image_id=raw.index.to_numpy(dtype=np.int64),
        emotion=codes.to_numpy(dtype=np.int64),
        split=usage.map(SPLITS).to_numpy(dtype=object),
        pixels=pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
    )


READ_CHUNK_ROWS = 2048


def _read_csv(path: Path, limit: int | None) -> pd.DataFrame:
    """The CSV as strings, indexed by row number; with ``limit``, the first ``limit`` rows of
    each split, read in chunks until every split has them (FER2013 lists its splits one
    after the other, so a quick build stops before the last rows and never parses the rest)."""
    if limit is None:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    counts = dict.fromkeys(SPLITS, 0)
    kept = []
    with pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=READ_CHUNK_ROWS) as reader:
        for chunk in reader:
            if "Usage" not in chunk.columns:
                return chunk  # reported as a missing column by the caller
            usage = chunk["Usage"].str.strip()
            seen = usage.map(counts).fillna(0).astype(int) + usage.groupby(usage).cumcount()
            keep = ~usage.isin(list(SPLITS)) | (seen < limit)  # bad Usage: kept, reported
            kept.append(chunk[keep.to_numpy()])
            for split, n in usage.value_counts().items():
                if split in counts:
                    counts[split] += int(n)
            if all(n >= limit for n in counts.values()):
                break
    return pd.concat(kept) if kept else pd.DataFrame(columns=list(REQUIRED_COLUMNS))


def _unreadable(path: Path, exc: BaseException) -> str:
    """One line: why ``path`` cannot be read as a CSV, and what to do about it."""
    cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, _DAMAGED):
        fix = "the file is truncated or damaged; download or copy it again"
    elif isinstance(exc, UnicodeDecodeError):
        fix = "it is not a text file; give the FER2013 CSV (plain or .csv.gz)"
    else:
        fix = "give the FER2013 CSV (emotion,pixels,Usage; plain or .csv.gz)"
    return f"cannot read {path} as a CSV file ({cause}): {fix}"


def _parse_pixels(strings: pd.Series, where) -> np.ndarray:
    """All pixel strings as an (N, 2304) uint8 array, or DatasetError naming the first bad row.

    pandas' C parser reads the well-formed case ~2x faster than a per-row numpy loop; only
    when it fails does the slow loop run, to find and name the bad row.
    """
    try:
        values = pd.read_csv(
            io.StringIO("\n".join(strings)),
            sep=" ",
            header=None,
            dtype=np.int64,
            na_filter=False,
            skipinitialspace=True,
            engine="c",
        ).to_numpy()
        if values.shape == (len(strings), NUM_PIXELS) and values.min() >= 0 and values.max() <= 255:
            return values.astype(np.uint8)
    except (ValueError, pd.errors.ParserError):
        pass
    with warnings.catch_warnings():
        # At a token that is not a number np.fromstring stops and warns (older numpy) or
        # raises ValueError (newer); either way the row is reported below.
        warnings.simplefilter("ignore", DeprecationWarning)
        for i, text in enumerate(strings):
            try:
                row = np.fromstring(text, dtype=np.float64, sep=" ")
            except ValueError:
                row = np.empty(0)
            if row.size != NUM_PIXELS or not all(map(_is_number, text.split()[:1])):
                raise DatasetError(
                    f"{where(i)} has a pixel string of {_count_tokens(text)} values; FER2013 "
                    f"images need {NUM_PIXELS:,} (48×48) integer grey values separated by spaces"
                )
            bad = row[~((row >= 0) & (row <= 255) & (row == np.round(row)))]
            if bad.size:
                raise DatasetError(
                    f"{where(i)} has pixel value {bad[0]:g}; grey values must be integers in 0..255"
                )
    raise DatasetError(
        "the pixel strings could not be parsed as 2,304 integers 0..255 per row; check the CSV"
    )


def _count_tokens(text: str) -> str:
    tokens = text.split()
    bad = [t for t in tokens if not _is_number(t)]
    if not bad:
        return f"{len(tokens):,}"
    return f"{len(tokens):,} (including the non-number {bad[0][:12]!r})"


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def select_rows(
    data: Fer2013,
    *,
    caps: Mapping[str, int | None] = TRAIN_CAPS,
    seed: int = 0,
    limit: int | None = None,
) -> np.ndarray:
    """Row numbers (sorted) to build: the Training caps, and ``limit`` rows per split.

    ``limit`` takes the first N rows of each split (before capping: a quick build sees the
    same images whatever the caps). The caps apply to Training only and pick rows with a
    generator seeded from ``seed`` and the emotion code, so each class's choice is stable
    whatever the others'. Validation and test keep all their rows.
    """
    frame = data.frame()
    if limit is not None:
        frame = frame.groupby("split", sort=False).head(limit)
    keep: list[np.ndarray] = []
    for split in SPLIT_ORDER:
        rows = frame[frame["split"] == split]
        if split != "train":
            keep.append(rows["image_id"].to_numpy())
            continue
        for code, name in enumerate(FER_EMOTIONS):
            ids = rows.loc[rows["emotion"] == code, "image_id"].to_numpy()
            cap = caps.get(name)
            if cap is not None and len(ids) > cap:
                rng = np.random.default_rng([seed, code])
                ids = np.sort(rng.choice(ids, size=cap, replace=False))
            keep.append(ids)
    return np.sort(np.concatenate(keep)).astype(np.int64)
