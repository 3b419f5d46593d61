"""The 52 blendshape names and the paper's blendshape-selection rule.

Names are MediaPipe's own category names in MediaPipe's output order, so a feature table
column, a classifier input position and a MediaPipe ``Category.index`` always agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

NUM_BLENDSHAPES = len(BLENDSHAPE_NAMES)


def select_blendshapes(
    scores: pd.DataFrame | np.ndarray,
    threshold: float = 0.4,
    min_count: int = 100,
    names: Sequence[str] = BLENDSHAPE_NAMES,
) -> list[str]:
    """Apply the paper's rule: keep a blendshape whose score exceeds ``threshold`` in more
    than ``min_count`` images. Returns the kept names in MediaPipe order.

    ``scores`` is a table with the blendshape columns (rows of undetected faces, which are
    NaN, never count) or an array of shape [N, len(names)].
    """
    counts = count_above(scores, threshold, names)
    return [name for name in names if counts[name] > min_count]


def count_above(
    scores: pd.DataFrame | np.ndarray,
    threshold: float = 0.4,
    names: Sequence[str] = BLENDSHAPE_NAMES,
) -> pd.Series:
    """How many rows score above ``threshold`` for each blendshape; NaN (no face) never counts."""
    values = scores[list(names)].to_numpy() if isinstance(scores, pd.DataFrame) else scores
    above = np.nan_to_num(np.asarray(values, dtype=float), nan=-1.0) > threshold
    return pd.Series(above.sum(axis=0), index=list(names))
