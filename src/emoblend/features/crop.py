"""The aligned face crop: a small grey image of the face, framed the same way wherever it came from.

WHY: geometry (blendshapes, landmarks) and appearance (tears, brow texture, shading) carry
different evidence: a crying face's stretched mouth and raised cheeks look like a smile to
blendshapes, not to pixels. A pixel model trained on FER2013's 48×48 faces must see a live
robot-camera face framed, scaled and upright exactly as it saw its training faces, or it reads
the framing instead of the expression. MediaPipe's landmarks give that framing for free, so one
function serves both sides:

* training: a FER2013 48×48 image with the landmarks MediaPipe found in it;
* live: the full-resolution frame with that frame's landmarks. Only the region the crop covers
  is converted to grey and, when the face is larger than the crop, area-downscaled first
  (``cv2.INTER_AREA`` over whole blocks of pixels) so every source pixel counts, as when
  FER2013's images were made from large photos; a bilinear warp then places it.

The map is the least-squares similarity (rotation, uniform scale, shift: no shear, so the
face's proportions, part of the expression, are kept) from six points an expression barely
moves -- the four eye corners and two points on the nose bridge -- onto :data:`TEMPLATE`, the
median position of those points on FER2013 Training faces, made left/right symmetric. So a
FER2013 image's crop is close to the image itself (its faces are already roughly framed that
way), and the crop of a mirrored face is the mirrored crop (flip augmentation stays honest).

Landmarks are MediaPipe's: x, y normalised to the image width and height (0 = left / top
edge, 1 = right / bottom edge). One face from a 640×360 frame costs about 0.14 ms.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import EmoblendError

CROP_ANCHORS = (33, 133, 362, 263, 168, 6)
"""Landmarks the crop is aligned on: outer and inner corner of the face's right eye (image
left), inner and outer corner of its left eye, and two nose-bridge points."""

TEMPLATE = (
    np.array(
        [[11.61, 18.29], [18.98, 18.93], [29.02, 18.93], [36.39, 18.29], [24.0, 17.73],
         [24.0, 20.02]],
        dtype=np.float64,
    )
    / 48.0
)
"""Where :data:`CROP_ANCHORS` land, in units of the crop's side (0 = left / top edge): the
median of FER2013 Training faces (48×48 px, divided by 48), symmetrised about the centre."""

DEFAULT_SIZE = 48
_MIN_LANDMARKS = max(CROP_ANCHORS) + 1
_ANCHOR_INDEX = list(CROP_ANCHORS)
_TEMPLATE_MEAN = TEMPLATE.mean(axis=0).tolist()
_TEMPLATE_X = (TEMPLATE[:, 0] - TEMPLATE[:, 0].mean()).tolist()
_TEMPLATE_Y = (TEMPLATE[:, 1] - TEMPLATE[:, 1].mean()).tolist()
_AREA_BELOW = 0.75  # area-downscale first when the face is over 1/0.75 times the crop's size


def crop_matrix(landmarks: np.ndarray, width: int, height: int, size: int = DEFAULT_SIZE
                ) -> np.ndarray:
    """The 2×3 map from image pixels to crop pixels (OpenCV convention: pixel centres at
    integer coordinates) for one face's normalised ``landmarks`` [478, 2 or 3]."""
    return np.array(_similarity(landmarks, width, height, size))


def _similarity(landmarks: np.ndarray, width: int, height: int, size: int
                ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """:func:`crop_matrix` as two rows of plain floats.

    WHY plain floats: six points are too few for numpy to pay; its per-call overhead made
    this map (0.026-0.036 ms; 0.008 ms in plain Python) and the preimage below cost as much
    as the warp they feed.
    """
    points = np.asarray(landmarks)
    if points.ndim != 2 or points.shape[0] < _MIN_LANDMARKS or points.shape[1] < 2:
        raise EmoblendError(
            f"landmarks have shape {points.shape}; the crop needs one face's MediaPipe "
            "landmarks [478, 3] (x, y normalised to the image)"
        )
    anchors = points[_ANCHOR_INDEX, :2].tolist()
    xs = [float(x) * width for x, _ in anchors]
    ys = [float(y) * height for _, y in anchors]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    dst_x, dst_y = _TEMPLATE_X, _TEMPLATE_Y  # centred template, in units of the side
    norm = sx_dx = sx_dy = 0.0
    for x, y, dx, dy in zip(xs, ys, dst_x, dst_y, strict=True):
        x, y = x - mx, y - my
        norm += x * x + y * y
        sx_dx += x * dx + y * dy
        sx_dy += x * dy - y * dx
    if not math.isfinite(norm) or norm <= 0:
        raise EmoblendError("the face's anchor landmarks coincide or are not finite; no crop")
    a, b = size * sx_dx / norm, size * sx_dy / norm
    # continuous coordinates (edge = 0) to OpenCV's (centre = 0) on both sides
    tx = size * _TEMPLATE_MEAN[0] - (a * mx - b * my) + (a - b) * 0.5 - 0.5
    ty = size * _TEMPLATE_MEAN[1] - (b * mx + a * my) + (a + b) * 0.5 - 0.5
    return (a, -b, tx), (b, a, ty)


def aligned_crop(
    image: np.ndarray, landmarks: np.ndarray, size: int = DEFAULT_SIZE, *, color: str = "bgr"
) -> np.ndarray:
    """The face's aligned grey crop, uint8 [size, size].

    ``image`` is grey [H, W], or colour [H, W, 3|4] in ``color`` order ("bgr" as OpenCV
    delivers, or "rgb"); ``landmarks`` are that face's MediaPipe landmarks in that image.
    Parts of the crop outside the image repeat the image's edge.
    """
    if color not in ("bgr", "rgb"):
        raise EmoblendError(f"color {color!r} is not 'bgr' or 'rgb'")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise EmoblendError(
            f"image has dtype {image.dtype} and shape {image.shape}; give an 8-bit grey or "
            "colour image (emoblend.io.images.to_rgb8 converts others)"
        )
    height, width = image.shape[:2]
    (a, nb, tx), (b, _, ty) = _similarity(landmarks, width, height, size)
    scale = math.hypot(a, b)
    # Only the crop's preimage is read: grey conversion and downscaling touch a face, not a
    # frame. Its bounding box: the crop's corners mapped back (the inverse of the similarity).
    inv = 1.0 / (a * a + b * b)
    xs, ys = [], []
    for u in (-0.5 - tx, size - 0.5 - tx):
        for v in (-0.5 - ty, size - 0.5 - ty):
            xs.append((a * u + b * v) * inv)
            ys.append((a * v - b * u) * inv)
    x0 = max(math.floor(min(xs)) - 1, 0)
    y0 = max(math.floor(min(ys)) - 1, 0)
    x1 = min(math.ceil(max(xs)) + 2 + int(1 / scale), width)  # room for whole
    y1 = min(math.ceil(max(ys)) + 2 + int(1 / scale), height)  # area blocks
    if x1 <= x0 or y1 <= y0:  # the face lies wholly outside the image
        x0, y0, x1, y1 = 0, 0, width, height
    roi = image[y0:y1, x0:x1]
    if roi.ndim == 3:
        code = {("bgr", 3): cv2.COLOR_BGR2GRAY, ("rgb", 3): cv2.COLOR_RGB2GRAY,
                ("bgr", 4): cv2.COLOR_BGRA2GRAY, ("rgb", 4): cv2.COLOR_RGBA2GRAY}
        roi = cv2.cvtColor(roi, code[(color, roi.shape[2])]) if roi.shape[2] in (3, 4) else roi[
            :, :, 0]
    tx, ty = tx + a * x0 + nb * y0, ty + b * x0 + a * y0  # the map from the region's pixels
    factor = round(1 / scale) if scale < _AREA_BELOW else 1
    if factor > 1 and min(roi.shape[:2]) >= factor:
        # Average factor × factor blocks (OpenCV's fast integer INTER_AREA path: ~4× quicker
        # than a fractional area resize); the warp then scales by the rest, within ±25 %.
        rows, cols = roi.shape[:2]
        roi = roi[: rows - rows % factor, : cols - cols % factor]
        roi = cv2.resize(roi, (roi.shape[1] // factor, roi.shape[0] // factor),
                         interpolation=cv2.INTER_AREA)
        # a block pixel p' covers region pixels factor * p' + (factor - 1) / 2
        half = (factor - 1) / 2
        tx, ty = tx + (a + nb) * half, ty + (b + a) * half
        a, nb, b = a * factor, nb * factor, b * factor
    matrix = np.array([[a, nb, tx], [b, a, ty]])
    return cv2.warpAffine(
        np.ascontiguousarray(roi), matrix, (size, size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def aligned_crops(
    images: np.ndarray | list[np.ndarray],
    landmarks: np.ndarray,
    size: int = DEFAULT_SIZE,
    *,
    color: str = "bgr",
) -> np.ndarray:
    """Crops [N, size, size] uint8 for N faces (``images[i]`` with ``landmarks[i]``); a face
    whose landmarks are NaN (no face found) gets an all-zero crop."""
    points = np.asarray(landmarks, dtype=np.float32)
    out = np.zeros((len(points), size, size), dtype=np.uint8)
    found = np.isfinite(points[:, _ANCHOR_INDEX, :2]).all(axis=(1, 2)).tolist()
    for i, (image, face) in enumerate(zip(images, points, strict=True)):
        if found[i]:
            out[i] = aligned_crop(image, face, size, color=color)
    return out


__all__ = ["CROP_ANCHORS", "DEFAULT_SIZE", "TEMPLATE", "aligned_crop", "aligned_crops",
           "crop_matrix"]
