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
    scores = table[list(BLENDSHAPE_NAMES)]
    if not all(np.issubdtype(t, np.number) for t in scores.dtypes):
        raise DatasetError(
            f"{source} has non-numeric blendshape values; scores are floats in [0, 1]"
        )
    return table


def detected_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows whose blendshapes are all present (a face was found)."""
    return table[list(BLENDSHAPE_NAMES)].notna().all(axis=1).to_numpy()
