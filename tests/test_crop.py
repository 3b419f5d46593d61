"""The aligned face crop on real faces: FER2013 rows and full-resolution photos, real MediaPipe.

The crop exists so that a pixel model sees a live face framed as it saw its FER2013 training
faces; these tests check that promise: the anchors land on the template, the crop of a large
photo matches the crop of the same photo shrunk to FER2013's scale, and position, size,
rotation and mirroring of the face do not change what the crop shows.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from emoblend.errors import EmoblendError
from emoblend.features.crop import (
    CROP_ANCHORS,
    TEMPLATE,
    aligned_crop,
    aligned_crops,
    crop_matrix,
)
from emoblend.io.images import read_image


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def face_landmarks(landmarker, image_bgr: np.ndarray) -> np.ndarray:
    faces = landmarker.detect(image_bgr, bgr=True)
    assert faces, "MediaPipe found no face in a test image"
    return faces[0].landmarks


@pytest.fixture(scope="module")
def fer_faces(fer2013_sample, landmarker):
    """Real FER2013 48×48 images with the landmarks MediaPipe finds in them (first 40 rows)."""
    rows = pd.read_csv(fer2013_sample).head(40)
    out = []
    for text in rows["pixels"]:
        image = np.array(text.split(), dtype=np.uint8).reshape(48, 48)
        faces = landmarker.detect(image)
        if faces:
            out.append((image, faces[0].landmarks))
    assert len(out) >= 25, "MediaPipe should find most FER2013 faces"
    return out


@pytest.fixture(scope="module")
def photo(media) -> np.ndarray:
    return cv2.imread(str(media / "single_face.jpg"))  # BGR, as a camera gives


def test_fer_crops_put_the_anchors_on_the_template(fer_faces):
    residuals = []
    for image, landmarks in fer_faces:
        crop = aligned_crop(image, landmarks)
        assert crop.shape == (48, 48) and crop.dtype == np.uint8
        matrix = crop_matrix(landmarks, 48, 48)
        anchors = landmarks[list(CROP_ANCHORS), :2] * 48 - 0.5  # OpenCV pixel coordinates
        placed = anchors @ matrix[:, :2].T + matrix[:, 2]
        residuals.append(np.abs(placed - (TEMPLATE * 48 - 0.5)).mean())
    # eyes and nose bridge within about a pixel of the template on a 48-px crop
    assert np.median(residuals) < 1.0, np.median(residuals)


def test_crop_of_a_large_photo_matches_the_photo_shrunk_to_fer_scale(photo, landmarker):
    """The live path (full frame, area downscale inside) against the training look (a face of
    FER2013's size); a plain bilinear warp of the full frame is the baseline it must beat."""
    full = aligned_crop(photo, face_landmarks(landmarker, photo))
    landmarks = face_landmarks(landmarker, photo)
    width = np.ptp(landmarks[:, 0]) * photo.shape[1]
    factor = 60.0 / width  # the face about as wide as in a 48×48 FER2013 image
    small = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    shrunk = aligned_crop(small, face_landmarks(landmarker, small))
    naive = cv2.warpAffine(
        cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), crop_matrix(landmarks, *photo.shape[1::-1]),
        (48, 48), flags=cv2.INTER_LINEAR,
    )
    assert correlation(full, shrunk) > 0.95
    assert np.abs(full.astype(int) - shrunk).mean() < np.abs(naive.astype(int) - shrunk).mean()


@pytest.mark.parametrize(
    "change",
    ["mirror", "rotate 20° and shrink to 60 %", "move to a corner of a wider frame"],
)
def test_position_size_rotation_and_mirroring_do_not_change_the_crop(photo, landmarker, change):
    base = aligned_crop(photo, face_landmarks(landmarker, photo))
    if change == "mirror":
        changed = np.ascontiguousarray(photo[:, ::-1])
        want = base[:, ::-1]  # the template is symmetric: mirrored face, mirrored crop
    elif change.startswith("rotate"):
        h, w = photo.shape[:2]
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 0.6)
        changed = cv2.warpAffine(photo, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
        want = base
    else:
        h, w = photo.shape[:2]
        changed = cv2.copyMakeBorder(photo, 0, h // 2, w, 0, cv2.BORDER_REPLICATE)
        want = base
    got = aligned_crop(changed, face_landmarks(landmarker, changed))
    assert correlation(got, want) > 0.9, change


def test_colour_order_and_grey_input_agree(photo, landmarker):
    landmarks = face_landmarks(landmarker, photo)
    from_bgr = aligned_crop(photo, landmarks, color="bgr")
    from_rgb = aligned_crop(np.ascontiguousarray(photo[:, :, ::-1]), landmarks, color="rgb")
    from_grey = aligned_crop(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), landmarks)
    np.testing.assert_array_equal(from_bgr, from_rgb)
    assert np.abs(from_bgr.astype(int) - from_grey).max() <= 1
    assert aligned_crop(photo, landmarks, 64).shape == (64, 64)


def test_batch_crops_leave_faceless_rows_blank(fer_faces):
    images = [image for image, _ in fer_faces[:3]]
    landmarks = np.stack([lm for _, lm in fer_faces[:3]])
    landmarks[1] = np.nan  # a row where MediaPipe found no face
    crops = aligned_crops(images, landmarks)
    assert crops.shape == (3, 48, 48)
    np.testing.assert_array_equal(crops[0], aligned_crop(images[0], landmarks[0]))
    assert not crops[1].any() and crops[2].any()


def test_bad_inputs_say_what_is_wrong(photo, landmarker):
    landmarks = face_landmarks(landmarker, photo)
    with pytest.raises(EmoblendError, match="landmarks have shape"):
        aligned_crop(photo, landmarks[:100])
    with pytest.raises(EmoblendError, match="8-bit"):
        aligned_crop(photo.astype(np.float32), landmarks)
    with pytest.raises(EmoblendError, match="color"):
        aligned_crop(photo, landmarks, color="hsv")
    with pytest.raises(EmoblendError, match="coincide"):
        aligned_crop(photo, np.zeros_like(landmarks))


def test_read_image_path_gives_the_same_crop(media, photo, landmarker):
    """Through emoblend's own reader (RGB) the crop is the camera-path (BGR) crop."""
    rgb = read_image(media / "single_face.jpg")
    landmarks = face_landmarks(landmarker, photo)
    np.testing.assert_array_equal(aligned_crop(rgb, landmarks, color="rgb"),
                                  aligned_crop(photo, landmarks))
