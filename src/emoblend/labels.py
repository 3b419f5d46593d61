"""Label sets: the paper's three classes and FER2013's seven emotions.

A classifier's sidecar names its label set, and everything that reads a classifier's output
(the estimator and stabilizer, overlays, timelines, CSVs, evaluation) takes the labels from
there, so a seven-class model flows through unchanged. The three classes follow the paper's
Table 4 order (0 happy, 1 unknown, 2 sad); the seven follow FER2013's emotion codes.
"""

from __future__ import annotations

import numpy as np

FER_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 emotion names, indexed by the CSV's ``emotion`` code."""

CLASSES: tuple[str, ...] = ("happy", "unknown", "sad")
"""The paper's three classes in Table 4 order."""

HAPPY, UNKNOWN, SAD = 0, 1, 2

_FER_TO_CLASS = np.array([UNKNOWN, UNKNOWN, UNKNOWN, HAPPY, SAD, UNKNOWN, UNKNOWN])

LABEL_SETS: dict[str, tuple[str, ...]] = {"3": CLASSES, "7": FER_EMOTIONS}
"""The label sets a classifier may have, by name: the paper's three, FER2013's seven."""

WARMUP_LABEL = "unknown"
"""The stable label of a face seen too briefly to judge, in every label set (in the paper's
set it is also the class "no emotion we recognise")."""

SPLITS: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
"""FER2013 ``Usage`` values and the split names used in feature tables."""


def fer_to_class(emotion: int | np.ndarray) -> int | np.ndarray:
    """Map FER2013 codes (0-6) to class indices (0 happy, 1 unknown, 2 sad)."""
    codes = np.asarray(emotion)
    if codes.size and (codes.min() < 0 or codes.max() > 6):
        raise ValueError("FER2013 emotion codes run from 0 to 6")
    mapped = _FER_TO_CLASS[codes]
    return int(mapped) if mapped.ndim == 0 else mapped


def fer_to_label(emotion: int | np.ndarray) -> str | np.ndarray:
    """Map FER2013 codes (0-6) to class names (happy, unknown, sad)."""
    idx = fer_to_class(emotion)
    names = np.array(CLASSES)
    return str(names[idx]) if isinstance(idx, int) else names[idx]


def label_set_name(labels: tuple[str, ...] | list[str]) -> str:
    """"3" or "7" for a known label set in its exact order; ValueError for anything else."""
    for name, known in LABEL_SETS.items():
        if tuple(labels) == known:
            return name
    sets = "; ".join(", ".join(s) for s in LABEL_SETS.values())
    raise ValueError(f"labels {tuple(labels)} are not a known label set (in order: {sets})")


def fer_to_names(emotion: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """FER2013 codes (0-6) as names of the label set ``labels`` (three classes or seven)."""
    if label_set_name(labels) == "3":
        return np.asarray(fer_to_label(np.asarray(emotion, dtype=np.int64)))
    codes = np.asarray(emotion, dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() > 6):
        raise ValueError("FER2013 emotion codes run from 0 to 6")
    return np.array(FER_EMOTIONS)[codes]
