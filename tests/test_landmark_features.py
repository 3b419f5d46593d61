"""Landmark features on real faces through the real MediaPipe model.

The point of the alignment is that the same face gives nearly the same features whatever its
position, size, in-plane rotation or the frame's aspect ratio, while different faces and
expressions stay apart; these tests check exactly that on real photos.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from mediapipe.tasks.python.vision import FaceLandmarksConnections

from emoblend.errors import ClassifierError
from emoblend.features.landmarks import (
    ANCHOR_LANDMARKS,
    CONTOUR_LANDMARKS,
    LANDMARK_PREPROCESSING,
    REFERENCE_CONTOUR,
    contour_affine,
    mirror_features,
)
from emoblend.io.images import read_image

PHOTOS = ("single_face.jpg", "0-f15-hao-ph.jpg", "45-m7-di-ph.jpg", "0-f1-su-ph.jpg")


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the centre on a canvas padded by replicated borders (face stays inside)."""
    pad = max(image.shape[:2]) // 3
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    h, w = big.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(big, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def faces(media, landmarker):
    """The largest face of each photo: {name: Face}."""
    return {name: landmarker.detect(read_image(media / name))[0] for name in PHOTOS}


def features_of(face) -> np.ndarray:
    return contour_affine(face.landmarks[None], face.matrix[None])[0]


def centred_only(face) -> np.ndarray:
    """Landmarks with position and size removed but no alignment: the baseline."""
    points = face.landmarks[list(CONTOUR_LANDMARKS)]
    points = points - points.mean(axis=0)
    return (points / np.sqrt((points**2).sum(axis=1).mean())).ravel()


def test_shape_dtype_and_registry(faces):
    stack = list(faces.values())
    landmarks = np.stack([f.landmarks for f in stack]).astype(np.float64)  # any float dtype
    matrices = np.stack([f.matrix for f in stack])

    features = LANDMARK_PREPROCESSING["contour-affine"](landmarks, matrices)

    assert features.shape == (len(stack), 3 * len(CONTOUR_LANDMARKS)) == (len(stack), 456)
    assert features.dtype == np.float32 and features.flags.c_contiguous
    assert np.isfinite(features).all()
    # residuals from the reference face: small next to the reference's own unit size
    assert 0.005 < np.abs(features).mean() < 0.2


def test_batch_equals_one_at_a_time_and_is_deterministic(faces):
    stack = list(faces.values())
    landmarks = np.stack([f.landmarks for f in stack])
    matrices = np.stack([f.matrix for f in stack])

    batch = contour_affine(landmarks, matrices)
    again = contour_affine(landmarks.copy(), matrices.copy())
    single = np.stack([features_of(f) for f in stack])

    np.testing.assert_array_equal(batch, again)
    np.testing.assert_allclose(batch, single, atol=1e-6)


def test_contours_and_anchors_are_mediapipes_own_sets():
    def points(*names: str) -> set[int]:
        return {
            i
            for name in names
            for c in getattr(FaceLandmarksConnections, name)
            for i in (c.start, c.end)
        }

    assert set(CONTOUR_LANDMARKS) == points("FACE_LANDMARKS_CONTOURS", "FACE_LANDMARKS_NOSE")
    assert list(CONTOUR_LANDMARKS) == sorted(CONTOUR_LANDMARKS)
    assert set(ANCHOR_LANDMARKS) <= set(CONTOUR_LANDMARKS)
    assert points("FACE_LANDMARKS_NOSE") <= set(ANCHOR_LANDMARKS)
    assert not set(ANCHOR_LANDMARKS) & points("FACE_LANDMARKS_LIPS")  # the mouth moves
    # the reference is symmetric: mirroring it gives itself back
    reference = REFERENCE_CONTOUR.reshape(1, -1)
    np.testing.assert_allclose(mirror_features(reference), reference, atol=1e-3)


def test_same_face_nearly_invariant_to_rotation_scale_and_aspect(media, landmarker, faces):
    transforms = {
        "rotated +25": lambda im: rotate(im, 25),
        "rotated -30": lambda im: rotate(im, -30),
        "half size": lambda im: cv2.resize(im, None, fx=0.5, fy=0.5),
        "stretched 1.4 wide": lambda im: cv2.resize(im, None, fx=1.4, fy=1.0),
    }
    within, baseline = [], []
    for name in ("single_face.jpg", "0-f15-hao-ph.jpg"):
        image = read_image(media / name)
        original = faces[name]
        for label, transform in transforms.items():
            moved = landmarker.detect(transform(image))[0]
            within.append(np.linalg.norm(features_of(moved) - features_of(original)))
            if label.startswith("rotated"):
                baseline.append(np.linalg.norm(centred_only(moved) - centred_only(original)))
    names = list(faces)
    between = [
        np.linalg.norm(features_of(faces[a]) - features_of(faces[b]))
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]

    # measured: within-face median ~0.3, between-face median ~1.9 (ratio ~0.16)
    assert np.median(within) < 0.3 * np.median(between), (within, between)
    assert max(within) < np.median(between), (within, between)
    # without alignment a rotation moves the features far more than the expression does
    assert min(baseline) > 5 * max(within[:2] + within[4:6]), (baseline, within)


def test_mirror_features_match_a_flipped_image(media, landmarker, faces):
    for name in ("single_face.jpg", "0-f15-hao-ph.jpg"):
        original = features_of(faces[name])
        flipped = features_of(landmarker.detect(cv2.flip(read_image(media / name), 1))[0])
        mirrored = mirror_features(original[None])[0]
        assert np.linalg.norm(mirrored - flipped) < np.linalg.norm(original - flipped), name
        assert np.linalg.norm(mirrored - flipped) < 0.3 * np.linalg.norm(original), name


@pytest.mark.parametrize(
    "landmarks, fragment",
    [
        (np.zeros((2, 468, 3), np.float32), "expected [N, 478, 3]"),
        (np.zeros((478, 3), np.float32), "expected [N, 478, 3]"),
        (np.full((1, 478, 3), np.nan, np.float32), "NaN"),
        (np.zeros((1, 478, 3), np.float32), "degenerate"),
    ],
)
def test_bad_landmarks_get_a_clear_error(landmarks, fragment):
    with pytest.raises(ClassifierError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        contour_affine(landmarks, np.zeros((len(landmarks), 4, 4), np.float32))
