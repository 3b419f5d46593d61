"""Label schemes: FER2013's seven emotion codes and the paper's three classes.

The three classes follow the paper's Table 4 order (0 happy, 1 unknown, 2 sad); every
probability vector and confusion matrix in the project uses that order.
"""

from __future__ import annotations

import numpy as np

FER_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 emotion names, indexed by the CSV's ``emotion`` code."""

CLASSES: tuple[str, ...] = ("happy", "unknown", "sad")
"""The paper's three classes in Table 4 order."""

HAPPY, UNKNOWN, SAD = 0, 1, 2

_FER_TO_CLASS = np.array([UNKNOWN, UNKNOWN, UNKNOWN, HAPPY, SAD, UNKNOWN, UNKNOWN])

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
