"""Landmark features: MediaPipe's 478 face landmarks mapped into one fixed face frame.

WHY: the raw landmarks mix the expression with everything else -- where the face is in the
frame, its size, head roll/yaw/pitch, and, for a non-square frame, the frame's aspect ratio
(MediaPipe normalises x by the image width and y by the height). A classifier trained on
48x48 FER2013 faces must get the same numbers for the same expression from a 640x480 robot
camera, a rotated head or a face twice as large. So each preprocessing here

1. keeps the 152 landmarks that carry expression (MediaPipe's contours: lips, eyes,
   eyebrows, face oval; plus the nose) -- the full 478-point mesh interpolates these and,
   measured on FER2013 PublicTest, adds little while tripling the classifier's input;
2. fits a 3-D affine map from 47 *rigid* anchor points (nose, eye corners, upper face
   oval: points an expression barely moves) onto a fixed reference face, and applies it to
   all 152 points. An affine map (not just a rotation + scale) also absorbs the frame's
   aspect ratio and MediaPipe's depth scale, and fitting it on rigid points only keeps a
   smile or an open jaw from being "aligned away";
3. returns the residual ``aligned - reference`` flattened to [N, 456] float32 (x, y, z per
   point, in :data:`CONTOUR_LANDMARKS` order). Classifiers standardise it themselves.

The facial transformation matrix is accepted (the classifier interface passes it) but not
needed: it is MediaPipe's rigid pose estimate, computed with the true aspect ratio, so applied
to normalised landmarks from a non-square frame it leaves the aspect distortion in. On
FER2013 PublicTest the anchor-affine frame classified as well as the matrix frame.

The reference face is the left/right-symmetrised mean shape of FER2013 Training faces after
similarity (Procrustes) alignment, unit RMS size, x to the face's right in the image, y up, z
towards the camera; :data:`CONTOUR_MIRROR` maps each point to its mirror image, so
``mirror_features`` flips features exactly as re-extracting a flipped image would, apart
from MediaPipe's own noise.

Everything is numpy and deterministic; one face costs ~0.035 ms (median, measured on a
busy 2-core machine, where the ONNX classifier itself took ~0.015-0.023 ms).
"""

from __future__ import annotations

import numpy as np

from ..errors import ClassifierError

NUM_LANDMARKS = 478

CONTOUR_LANDMARKS = (
    0, 1, 2, 4, 5, 6, 7, 10, 13, 14, 17, 19, 21, 33, 37, 39,
    40, 45, 46, 48, 52, 53, 54, 55, 58, 61, 63, 64, 65, 66, 67, 70,
    78, 80, 81, 82, 84, 87, 88, 91, 93, 94, 95, 97, 98, 103, 105, 107,
    109, 115, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155,
    157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195,
    197, 220, 234, 246, 249, 251, 263, 267, 269, 270, 275, 276, 278, 282, 283, 284,
    285, 288, 291, 293, 294, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 326, 327, 332, 334, 336, 338, 344, 356, 361, 362, 365, 373, 374,
    375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398,
    400, 402, 405, 409, 415, 440, 454, 466,
)  # fmt: skip
ANCHOR_LANDMARKS = (
    1, 2, 4, 5, 6, 10, 19, 21, 33, 45, 48, 54, 64, 67, 93, 94,
    97, 98, 103, 109, 115, 127, 133, 162, 168, 195, 197, 220, 234, 251, 263, 275,
    278, 284, 294, 297, 323, 326, 327, 332, 338, 344, 356, 362, 389, 440, 454,
)  # fmt: skip
CONTOUR_MIRROR = (
    0, 1, 2, 3, 4, 5, 84, 7, 8, 9, 10, 11, 85, 86, 87, 88,
    89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104,
    105, 106, 107, 108, 109, 110, 111, 112, 113, 41, 114, 115, 116, 117, 118, 119,
    120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 60, 132, 133, 134,
    135, 136, 137, 138, 139, 140, 141, 71, 142, 143, 144, 145, 146, 147, 148, 79,
    80, 149, 150, 151, 6, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
    39, 40, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 72, 73,
    74, 75, 76, 77, 78, 81, 82, 83,
)  # fmt: skip
REFERENCE_CONTOUR = np.array([
    (0.0000, -0.5312, 0.3193), (0.0000, -0.1175, 0.6237), (0.0000, -0.2563, 0.3353),
    (0.0000, -0.0014, 0.6637), (0.0000, 0.1475, 0.6156), (0.0000, 0.5177, 0.3158),
    (-0.8243, 0.5665, -0.1388), (0.0000, 1.5860, 0.1370), (0.0000, -0.6525, 0.2054),
    (0.0000, -0.8156, 0.1791), (0.0000, -0.9935, 0.1911), (0.0000, -0.1834, 0.5658),
    (-1.2596, 1.0683, -0.6720), (-0.8661, 0.5992, -0.1750), (-0.1507, -0.5105, 0.3035),
    (-0.2966, -0.5502, 0.2319), (-0.3968, -0.5979, 0.1418), (-0.1082, -0.0030, 0.6481),
    (-1.0383, 0.8551, -0.1024), (-0.3455, -0.0907, 0.3278), (-0.7701, 0.9765, 0.0972),
    (-0.9307, 0.9392, 0.0054), (-1.1435, 1.2727, -0.4484), (-0.2571, 0.8612, 0.2013),
    (-1.1837, -0.6085, -1.0333), (-0.5095, -0.7062, -0.0559), (-0.9879, 1.0206, -0.0496),
    (-0.3476, -0.1443, 0.2642), (-0.5524, 0.9567, 0.1640), (-0.5728, 1.0654, 0.1857),
    (-0.6780, 1.5318, -0.0124), (-1.1029, 0.9108, -0.1980), (-0.4584, -0.7055, -0.0213),
    (-0.3221, -0.6647, 0.0933), (-0.2343, -0.6521, 0.1465), (-0.1257, -0.6499, 0.1895),
    (-0.1645, -0.9745, 0.1815), (-0.1328, -0.8062, 0.1638), (-0.3289, -0.7642, 0.0755),
    (-0.4058, -0.8467, 0.0797), (-1.3125, 0.0052, -1.1835), (0.0000, -0.2281, 0.4170),
    (-0.3933, -0.7406, 0.0210), (-0.1501, -0.2491, 0.3037), (-0.3109, -0.2200, 0.1856),
    (-0.9583, 1.4299, -0.2166), (-0.8116, 1.0777, 0.0770), (-0.2919, 1.0196, 0.2437),
    (-0.3664, 1.5785, 0.1054), (-0.2866, -0.0458, 0.4420), (-1.3362, 0.5554, -1.0904),
    (-1.2698, -0.2907, -1.1387), (-0.3501, 0.5688, -0.0731), (-0.9259, -1.0481, -0.6535),
    (-0.7093, 0.5326, -0.0715), (-0.6134, 0.5300, -0.0445), (-0.4704, -0.7759, 0.0047),
    (-0.2458, -1.4898, -0.1535), (-0.6025, -1.3177, -0.3686), (-0.7531, -1.2078, -0.4941),
    (0.0000, -1.5135, -0.1208), (-0.5177, 0.5402, -0.0389), (-0.4329, 0.5546, -0.0524),
    (-0.3773, 0.5621, -0.0724), (-0.4479, 0.6493, -0.0372), (-0.5431, 0.6825, -0.0223),
    (-0.6420, 0.6894, -0.0288), (-0.7355, 0.6747, -0.0561), (-0.7977, 0.6484, -0.0907),
    (-1.3180, 0.8373, -0.9057), (-0.7762, 0.5462, -0.1071), (0.0000, 0.6742, 0.2318),
    (-1.0634, -0.8636, -0.8499), (-0.3830, 0.6019, -0.0574), (-0.4391, -1.4146, -0.2406),
    (-0.2430, -0.7882, 0.1241), (-0.3049, -0.9226, 0.1381), (-0.4680, -0.6500, 0.0422),
    (-0.3923, -0.6830, 0.0309), (0.0000, 0.2711, 0.5121), (0.0000, 0.3869, 0.4114),
    (-0.2037, -0.0165, 0.5506), (-1.3274, 0.2855, -1.1735), (-0.8363, 0.6236, -0.1274),
    (0.8243, 0.5665, -0.1388), (1.2596, 1.0683, -0.6720), (0.8661, 0.5992, -0.1750),
    (0.1507, -0.5105, 0.3035), (0.2966, -0.5502, 0.2319), (0.3968, -0.5979, 0.1418),
    (0.1082, -0.0030, 0.6481), (1.0383, 0.8551, -0.1024), (0.3455, -0.0907, 0.3278),
    (0.7701, 0.9765, 0.0972), (0.9307, 0.9392, 0.0054), (1.1435, 1.2727, -0.4484),
    (0.2571, 0.8612, 0.2013), (1.1837, -0.6085, -1.0333), (0.5095, -0.7062, -0.0559),
    (0.9879, 1.0206, -0.0496), (0.3476, -0.1443, 0.2642), (0.5524, 0.9567, 0.1640),
    (0.5728, 1.0654, 0.1857), (0.6780, 1.5318, -0.0124), (1.1029, 0.9108, -0.1980),
    (0.4584, -0.7055, -0.0213), (0.3221, -0.6647, 0.0933), (0.2343, -0.6521, 0.1465),
    (0.1257, -0.6499, 0.1895), (0.1645, -0.9745, 0.1815), (0.1328, -0.8062, 0.1638),
    (0.3289, -0.7642, 0.0755), (0.4058, -0.8467, 0.0797), (1.3125, 0.0052, -1.1835),
    (0.3933, -0.7406, 0.0210), (0.1501, -0.2491, 0.3037), (0.3109, -0.2200, 0.1856),
    (0.9583, 1.4299, -0.2166), (0.8116, 1.0777, 0.0770), (0.2919, 1.0196, 0.2437),
    (0.3664, 1.5785, 0.1054), (0.2866, -0.0458, 0.4420), (1.3362, 0.5554, -1.0904),
    (1.2698, -0.2907, -1.1387), (0.3501, 0.5688, -0.0731), (0.9259, -1.0481, -0.6535),
    (0.7093, 0.5326, -0.0715), (0.6134, 0.5300, -0.0445), (0.4704, -0.7759, 0.0047),
    (0.2458, -1.4898, -0.1535), (0.6025, -1.3177, -0.3686), (0.7531, -1.2078, -0.4941),
    (0.5177, 0.5402, -0.0389), (0.4329, 0.5546, -0.0524), (0.3773, 0.5621, -0.0724),
    (0.4479, 0.6493, -0.0372), (0.5431, 0.6825, -0.0223), (0.6420, 0.6894, -0.0288),
    (0.7355, 0.6747, -0.0561), (0.7977, 0.6484, -0.0907), (1.3180, 0.8373, -0.9057),
    (0.7762, 0.5462, -0.1071), (1.0634, -0.8636, -0.8499), (0.3830, 0.6019, -0.0574),
    (0.4391, -1.4146, -0.2406), (0.2430, -0.7882, 0.1241), (0.3049, -0.9226, 0.1381),
    (0.4680, -0.6500, 0.0422), (0.3923, -0.6830, 0.0309), (0.2037, -0.0165, 0.5506),
    (1.3274, 0.2855, -1.1735), (0.8363, 0.6236, -0.1274),
], dtype=np.float32)  # fmt: skip
_ANCHOR_POSITIONS = np.array([CONTOUR_LANDMARKS.index(i) for i in ANCHOR_LANDMARKS])
_REFERENCE_ANCHORS = REFERENCE_CONTOUR[_ANCHOR_POSITIONS]
_REFERENCE_ANCHOR_MEAN = _REFERENCE_ANCHORS.mean(axis=0)
_REFERENCE_ANCHORS_CENTRED = _REFERENCE_ANCHORS - _REFERENCE_ANCHOR_MEAN
_CONTOUR_INDEX = np.array(CONTOUR_LANDMARKS)
_MIRROR_INDEX = np.array(CONTOUR_MIRROR)
_MIRROR_SIGN = np.array([-1.0, 1.0, 1.0], dtype=np.float32)


def _check(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float32)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 3):
        raise ClassifierError(
            f"landmarks have shape {np.shape(landmarks)}; expected [N, {NUM_LANDMARKS}, 3] "
            "as MediaPipe's Face Landmarker gives them (Face.landmarks, stacked)"
        )
    if not np.isfinite(points).all():
        raise ClassifierError("landmarks contain NaN or infinity; drop undetected faces first")
    return points


def _inverse3(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix by the adjugate in plain Python floats: for one small matrix
    this is several times faster than ``np.linalg.solve``, whose call overhead would otherwise
    be most of the cost of a face's features."""
    (a, b, c), (d, e, f), (g, h, i) = matrix.tolist()
    co_a, co_b, co_c = e * i - f * h, f * g - d * i, d * h - e * g
    det = a * co_a + b * co_b + c * co_c
    if not abs(det) > 1e-30:  # also catches NaN
        raise ClassifierError(
            "landmarks are degenerate (all points on a line or a plane); pass the 478 "
            "landmarks MediaPipe returned for a detected face"
        )
    r = 1.0 / det
    return np.array(
        [
            [co_a * r, (c * h - b * i) * r, (b * f - c * e) * r],
            [co_b * r, (a * i - c * g) * r, (c * d - a * f) * r],
            [co_c * r, (b * g - a * h) * r, (a * e - b * d) * r],
        ],
        dtype=np.float32,
    )


def align_contours(landmarks: np.ndarray) -> np.ndarray:
    """The 152 contour points [N, 152, 3] mapped into the reference frame by the affine map
    that best (least squares) carries the rigid anchor points onto the reference's.

    One face at a time with small 2-D numpy calls: for the robot's usual batch of one face
    this is several times faster than numpy's stacked (3-D) solve and matmul, and a face's
    features never depend on which other faces share its batch."""
    points = _check(landmarks)[:, _CONTOUR_INDEX]
    aligned = np.empty_like(points)
    for k, face in enumerate(points):
        anchors = face[_ANCHOR_POSITIONS]
        centre = anchors.sum(axis=0) * np.float32(1 / len(_ANCHOR_POSITIONS))
        anchors_t = (anchors - centre).T
        linear = _inverse3(anchors_t @ anchors_t.T) @ (anchors_t @ _REFERENCE_ANCHORS_CENTRED)
        aligned[k] = face @ linear + (_REFERENCE_ANCHOR_MEAN - centre @ linear)
    return aligned


def contour_affine(landmarks: np.ndarray, matrices: np.ndarray | None = None) -> np.ndarray:
    """[N, 478, 3] landmarks -> [N, 456] float32 features: the aligned contour points minus
    the reference face (see the module docstring). ``matrices`` is not used."""
    aligned = align_contours(landmarks) - REFERENCE_CONTOUR
    return np.ascontiguousarray(aligned.reshape(len(aligned), -1), dtype=np.float32)


def mirror_features(features: np.ndarray) -> np.ndarray:
    """The ``contour_affine`` features of the horizontally mirrored face, for augmentation."""
    points = np.asarray(features, dtype=np.float32).reshape(len(features), -1, 3)
    return (points[:, _MIRROR_INDEX] * _MIRROR_SIGN).reshape(len(features), -1)


LANDMARK_PREPROCESSING = {
    "contour-affine": contour_affine,
}
"""Preprocessing name (as a model's JSON sidecar names it) -> fn(landmarks [N, 478, 3],
matrices [N, 4, 4]) -> features [N, K] float32."""

__all__ = [
    "ANCHOR_LANDMARKS",
    "CONTOUR_LANDMARKS",
    "CONTOUR_MIRROR",
    "LANDMARK_PREPROCESSING",
    "REFERENCE_CONTOUR",
    "align_contours",
    "contour_affine",
    "mirror_features",
]
