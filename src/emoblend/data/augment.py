"""Training-set augmentation: horizontal flip and rotation up to ±36° (0.2 × 180°).

Every augmented copy is named by what was done to it ("flip", "rot+12.5", "flip+rot-30.1"),
and the name alone is enough to redo it (:func:`apply_augmentation`), so a row of the
feature table can always be turned back into the exact pixels it was extracted from.
The draw for a copy comes from a generator seeded by (seed, image_id, copy): the result
never depends on worker count, chunking or the order images are processed in.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

MAX_ROTATION = 36.0
"""Degrees: the paper's Keras RandomRotation(0.2) turns by up to 0.2 × 180°."""

NONE = "none"
_KINDS = ("flip", "rot", "flip+rot")
_NAME = re.compile(r"^(?:(?P<flip>flip)(?:\+(?=rot)|$))?(?:rot(?P<angle>[+-]\d+(?:\.\d)?))?$")


def draw_augmentation(seed: int, image_id: int, copy: int) -> str:
    """The name of augmented copy ``copy`` (1, 2, ...) of image ``image_id``.

    Each copy is a flip, a rotation, or both, with equal chance; the angle is uniform in
    ±36°, rounded to 0.1° (the rounded angle is the one applied, so the name is exact).
    """
    if copy < 1:
        raise ValueError("augmented copies are numbered from 1; copy 0 is the original")
    rng = np.random.default_rng([seed, image_id, copy])
    kind = _KINDS[int(rng.integers(len(_KINDS)))]
    angle = round(float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)), 1)
    if kind == "flip":
        return "flip"
    rot = f"rot{angle:+.1f}"
    return rot if kind == "rot" else f"flip+{rot}"


def parse_augmentation(name: str) -> tuple[bool, float]:
    """(flip, angle in degrees) for an augmentation name; ``"none"`` is (False, 0.0)."""
    if name == NONE:
        return False, 0.0
    match = _NAME.match(name)
    if not match or (match["flip"] is None and match["angle"] is None):
        raise ValueError(f"augmentation {name!r} is not 'none', 'flip', 'rot±A' or 'flip+rot±A'")
    return match["flip"] is not None, float(match["angle"] or 0.0)


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Rotate about the image centre by ``angle`` degrees, counter-clockwise as seen.

    Corners are filled by mirroring the image (Keras' default ``fill_mode="reflect"``), so
    no black wedges give the face detector a false edge.
    """
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def apply_augmentation(image: np.ndarray, name: str) -> np.ndarray:
    """The pixels of ``image`` after the augmentation ``name`` (flip first, then rotation)."""
    flip, angle = parse_augmentation(name)
    out = image[:, ::-1] if flip else image
    if angle:
        out = rotate(np.ascontiguousarray(out), angle)
    return np.ascontiguousarray(out)
