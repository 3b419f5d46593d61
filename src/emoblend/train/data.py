"""From a feature table to training arrays: splits, undetected rows, the blendshape selection.

Training uses the ``train`` split (all its rows, augmented ones included) and validates on the
``val`` split's original images only. The ``test`` split is never read here: model choice,
early stopping, calibration and tuning all look at validation alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..classify.classifier import ModelInfo, table_features
from ..errors import DatasetError
from ..face.blendshapes import BLENDSHAPE_NAMES, select_blendshapes
from ..face.model_file import sha256_of
from ..features.table import META_COLUMNS, check_table, detected_mask, read_table
from ..labels import CLASSES


@dataclass
class Splits:
    """Arrays ready for training, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    blendshapes: list[str]
    landmarks: str | None
    sha256: str | None
    undetected: dict[str, int] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def original_rows(table: pd.DataFrame) -> np.ndarray:
    """Rows that are not augmented copies (all rows where there is no ``augmentation`` column)."""
    if "augmentation" not in table.columns:
        return np.ones(len(table), bool)
    aug = table["augmentation"]
    return (aug.isna() | aug.astype(str).isin(["none", "", "original"])).to_numpy()


def read_columns(path: str | os.PathLike, landmarks: bool) -> pd.DataFrame:
    """Read a table, skipping the 1,452 landmark columns of a Parquet file when not needed."""
    path = Path(path)
    if landmarks or path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return read_table(path)
    import pyarrow.parquet as pq

    try:
        present = set(pq.read_schema(path).names)
    except Exception:  # noqa: BLE001 - not Parquet after all: read_table says so clearly
        return read_table(path)
    wanted = [c for c in (*META_COLUMNS, *BLENDSHAPE_NAMES) if c in present]
    return check_table(pd.read_parquet(path, columns=wanted), source=str(path))


def labels_of(table: pd.DataFrame) -> np.ndarray:
    return np.array(table["label"].map({c: i for i, c in enumerate(CLASSES)}), np.int64)


def choose_blendshapes(train: pd.DataFrame, features: int | str) -> list[str]:
    """52 = all; 27 = the paper's rule on the training split's original images."""
    if str(features) == "52":
        return list(BLENDSHAPE_NAMES)
    if str(features) == "27":
        originals = train[original_rows(train)]
        names = select_blendshapes(originals, threshold=0.4, min_count=100)
        if not names:
            raise DatasetError(
                f"the paper's rule (score > 0.4 in > 100 images) keeps no blendshape in the "
                f"{len(originals)} original training rows; use a larger table or --features 52"
            )
        return names
    raise DatasetError(f"--features must be 27 (the paper's selection) or 52, not {features}")


def load_splits(
    table: str | os.PathLike | pd.DataFrame, features: int | str = 27, landmarks: str | None = None
) -> Splits:
    """Read ``table`` and build train/val arrays for the given feature set.

    Undetected rows (no face) are dropped and counted per split.
    """
    sha = None
    if not isinstance(table, pd.DataFrame):
        source = str(table)
        # read first: a missing or unreadable table gets read_table's one-line error
        frame = read_columns(table, landmarks=landmarks is not None)
        sha = sha256_of(Path(table))
        table = frame
    else:
        source = "the table"
        table = check_table(table)
    if "split" not in table.columns:
        raise DatasetError(f"{source} has no 'split' column; make it with `emoblend dataset build`")
    parts = {}
    undetected = {}
    for split in ("train", "val"):
        rows = table[table["split"] == split]
        if split == "val":
            rows = rows[original_rows(rows)]
        found = detected_mask(rows)
        undetected[split] = int((~found).sum())
        parts[split] = rows[found]
        if parts[split].empty:
            raise DatasetError(f"{source} has no detected faces in its {split!r} split")
    names = choose_blendshapes(parts["train"], features)
    info = ModelInfo(name="training", blendshapes=tuple(names), landmarks=landmarks)
    return Splits(
        x_train=table_features(info, parts["train"]),
        y_train=labels_of(parts["train"]),
        x_val=table_features(info, parts["val"]),
        y_val=labels_of(parts["val"]),
        blendshapes=names,
        landmarks=landmarks,
        sha256=sha,
        undetected=undetected,
    )
