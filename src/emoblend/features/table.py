"""The feature table at the centre of the offline path: its columns, reading and checking.

One row per image (or augmented image): ``image_id`` (row number in fer2013.csv), ``split``
(train / val / test), ``emotion`` (FER code), ``label`` (happy / unknown / sad),
``augmentation``, ``detected``, the 52 blendshape columns under MediaPipe's names, and
optionally the 478 landmarks (``lm{i}_x/y/z``) and the 4×4 facial transformation matrix
(``m{r}{c}``). Parquet on disk; CSV is accepted wherever a table is read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..face.blendshapes import BLENDSHAPE_NAMES
from ..face.landmarker import NUM_LANDMARKS, Face
from ..labels import CLASSES, fer_to_label

META_COLUMNS = ("image_id", "split", "emotion", "label", "augmentation", "detected")
LANDMARK_COLUMNS = tuple(f"lm{i}_{axis}" for i in range(NUM_LANDMARKS) for axis in "xyz")
MATRIX_COLUMNS = tuple(f"m{r}{c}" for r in range(4) for c in range(4))
CROPS_NAME = "crops.npy"
"""Beside a table built with ``--crops S``: uint8 [rows, S, S] aligned face crops, row i for
table row i (all zero where no face was found); see :mod:`emoblend.features.crop`."""


def face_row(face: Face | None, *, landmarks: bool) -> dict[str, float]:
    """Feature columns for one image: the first face's scores, or NaN where none was found."""
    names = BLENDSHAPE_NAMES + (LANDMARK_COLUMNS + MATRIX_COLUMNS if landmarks else ())
    if face is None:
        return dict.fromkeys(names, np.nan)
    values = [face.blendshapes]
    if landmarks:
        values += [face.landmarks.reshape(-1), face.matrix.reshape(-1)]
    return dict(zip(names, np.concatenate(values).tolist(), strict=True))


def has_landmarks(table: pd.DataFrame) -> bool:
    return all(c in table.columns for c in (LANDMARK_COLUMNS[0], LANDMARK_COLUMNS[-1], "m33"))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a feature table (Parquet or CSV) and check it can be evaluated or trained on.

    It must hold the 52 blendshape columns and a ``label`` (happy/unknown/sad) or ``emotion``
    (0-6) column; a ``label`` column is derived from ``emotion`` where missing.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"feature table not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"cannot read {path} as a Parquet or CSV table ({first})") from None
    return check_table(table, source=str(path))


def check_table(table: pd.DataFrame, source: str = "the table") -> pd.DataFrame:
    """Validate the columns a classifier needs; return the table with a ``label`` column."""
    if table.empty:
        raise DatasetError(f"{source} has no rows")
    missing = [n for n in BLENDSHAPE_NAMES if n not in table.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise DatasetError(
            f"{source} lacks blendshape columns {shown}; it needs the 52 MediaPipe names "
            "(see emoblend.BLENDSHAPE_NAMES)"
        )
    table = table.copy()
    if "label" in table.columns:
        bad = sorted(set(table["label"].dropna().astype(str)) - set(CLASSES))
        if bad or table["label"].isna().any():
            shown = bad[:3] if bad else ["an empty value"]
            raise DatasetError(
                f"{source} has label {', '.join(map(repr, shown))}; labels must be one of "
                f"{', '.join(CLASSES)}"
            )
        table["label"] = table["label"].astype(str)
    elif "emotion" in table.columns:
        codes = pd.to_numeric(table["emotion"], errors="coerce")
        if codes.isna().any() or not codes.between(0, 6).all() or (codes % 1 != 0).any():
            raise DatasetError(f"{source} has emotion codes outside 0-6; FER2013 uses 0 to 6")
        table["label"] = fer_to_label(codes.astype(int).to_numpy())
    else:
        raise DatasetError(
            f"{source} has neither a 'label' (happy/unknown/sad) nor an 'emotion' (0-6) column"
        )
    detected = _check_detected(table, source)
    table[list(BLENDSHAPE_NAMES)] = _check_scores(table, detected, source)
    return table


SCORE_TOLERANCE = 1e-3
"""How far outside [0, 1] a blendshape score may stray (float rounding) before it is refused."""

_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


def _where(table: pd.DataFrame, i: int, source: str) -> str:
    """Row ``i`` (0-based position) named so a user finds it: its image_id and CSV line."""
    extra = []
    if "image_id" in table.columns:
        extra.append(f"image_id {table['image_id'].iat[i]}")
    if source.lower().endswith((".csv", ".csv.gz")):
        extra.append(f"line {i + 2} of the CSV")
    return f"row {i}" + (f" ({', '.join(extra)})" if extra else "")


def _check_detected(table: pd.DataFrame, source: str) -> np.ndarray | None:
    """The ``detected`` column as booleans (None if absent); one line on a value not a boolean."""
    if "detected" not in table.columns:
        return None
    column = table["detected"]
    if pd.api.types.is_bool_dtype(column) and not column.isna().any():
        return column.to_numpy(dtype=bool)
    text = column.astype("string").str.strip().str.lower()
    good = text.isin(_TRUE | _FALSE).fillna(False).to_numpy(dtype=bool)
    if not good.all():
        i = int(np.flatnonzero(~good)[0])
        raise DatasetError(
            f"{source}: column detected has {column.iat[i]!r} at {_where(table, i, source)}; "
            "it must be true or false (1 or 0): fix that row"
        )
    flags = text.isin(_TRUE).to_numpy(dtype=bool)
    table["detected"] = flags
    return flags


def _check_scores(table: pd.DataFrame, detected: np.ndarray | None, source: str) -> np.ndarray:
    """The 52 scores as floats, or one line naming the column and first row of a bad value.

    Scores are numbers in [0, 1] (within :data:`SCORE_TOLERANCE`). Empty cells (NaN) mean no
    face was found: allowed where ``detected`` is false, or, without that column, only for a
    whole row.
    """
    raw = table[list(BLENDSHAPE_NAMES)]
    values = np.column_stack(
        [pd.to_numeric(raw[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
         for name in BLENDSHAPE_NAMES]
    )
    empty = np.column_stack([raw[name].isna().to_numpy() for name in BLENDSHAPE_NAMES])
    fix = "blendshape scores are numbers in [0, 1]: fix or remove that row"

    def first(bad: np.ndarray) -> tuple[int, str, object]:
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        j = int(np.flatnonzero(bad[i])[0])
        value = raw.iat[i, j]
        return i, BLENDSHAPE_NAMES[j], f"{value:g}" if isinstance(value, float) else repr(value)

    checks = (
        (np.isnan(values) & ~empty, "the non-numeric value"),
        (np.isinf(values), "the infinite value"),
        ((values < -SCORE_TOLERANCE) | (values > 1 + SCORE_TOLERANCE), "the out-of-range value"),
    )
    for bad, what in checks:
        if bad.any():
            i, name, value = first(bad)
            raise DatasetError(
                f"{source}: column {name} has {what} {value} at {_where(table, i, source)}; "
                + fix
            )
    if detected is not None:
        bad = empty & detected[:, None]
        why, reason = "where detected is true", "give all 52 scores or set detected to false"
    else:
        bad = empty & ~empty.all(axis=1, keepdims=True)
        why = "while other scores in that row are not"
        reason = "a row without a face has all 52 empty: fill it or empty the whole row"
    if bad.any():
        i, name, _ = first(bad)
        raise DatasetError(
            f"{source}: column {name} is empty at {_where(table, i, source)} {why}; {reason}"
        )
    return values


def detected_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows whose blendshapes are all present (a face was found, and ``detected`` says so)."""
    found = table[list(BLENDSHAPE_NAMES)].notna().all(axis=1).to_numpy()
    if "detected" in table.columns:
        found = found & table["detected"].to_numpy(dtype=bool)
    return found


def crops_file(table_path: str | os.PathLike, crops_path: str | os.PathLike | None = None
               ) -> Path:
    """Where a table's crops are: ``crops_path`` if given, else ``crops.npy`` beside it."""
    return Path(crops_path) if crops_path else Path(table_path).with_name(CROPS_NAME)


def read_crops(table_path: str | os.PathLike, rows: pd.Index | np.ndarray | None = None,
               crops_path: str | os.PathLike | None = None) -> np.ndarray:
    """The aligned face crops of a table's ``rows`` (positions in the whole table, e.g. the
    index :func:`read_table` gave them; default all), from ``crops.npy`` beside the table.

    WHY: crop-reading classifiers need each row's crop; the file is memory-mapped, so only
    the rows asked for are read, and its length is checked against the table's so a crops
    file from another build is refused instead of silently misaligned.
    """
    table_path = Path(table_path)
    path = crops_file(table_path, crops_path)
    if not path.is_file():
        raise DatasetError(
            f"no face crops at {path}; build the table with `emoblend dataset build "
            f"--landmarks --crops 64` ({CROPS_NAME} is written beside it) or pass --crops"
        )
    try:
        crops = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise DatasetError(f"cannot read {path} as a .npy crops file ({exc})") from None
    if crops.ndim != 3 or crops.dtype != np.uint8 or crops.shape[1] != crops.shape[2]:
        raise DatasetError(f"{path} holds {crops.dtype} {crops.shape}; expected uint8 [rows, S, S]")
    total = _row_count(table_path)
    if len(crops) != total:
        raise DatasetError(f"{path} has {len(crops)} crops for the {total} rows of {table_path}")
    index = np.arange(total) if rows is None else np.asarray(rows, dtype=np.int64)
    return np.ascontiguousarray(crops[index])


def _row_count(path: Path) -> int:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return len(read_table(path))
