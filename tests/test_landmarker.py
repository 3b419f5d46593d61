"""The FaceLandmarker wrapper on real photos through the real MediaPipe model."""

from __future__ import annotations

import cv2
import mediapipe as mp
import numpy as np
import pytest
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.python import vision

from emoblend import BLENDSHAPE_NAMES, EmoblendError, FaceLandmarker
from emoblend.io.images import read_image, to_rgb8


def test_blendshapes_equal_a_direct_mediapipe_call(media, face_model, landmarker):
    rgb = cv2.cvtColor(cv2.imread(str(media / "single_face.jpg")), cv2.COLOR_BGR2RGB)
    options = vision.FaceLandmarkerOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=str(face_model)),
        output_face_blendshapes=True,
    )
    with vision.FaceLandmarker.create_from_options(options) as direct:
        result = direct.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    expected = {c.category_name: c.score for c in result.face_blendshapes[0]}

    faces = landmarker.detect(read_image(media / "single_face.jpg"))

    assert len(faces) == 1
    assert tuple(expected) == BLENDSHAPE_NAMES
    np.testing.assert_allclose(faces[0].blendshapes, list(expected.values()), atol=1e-6)
    assert faces[0].landmarks.shape == (478, 3)
    assert faces[0].matrix.shape == (4, 4)


def test_box_lies_on_the_face_and_inside_the_image(media, landmarker):
    image = read_image(media / "single_face.jpg")
    (face,) = landmarker.detect(image)
    x, y, w, h = face.box
    assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
    assert 0.2 * image.shape[1] < w < 0.6 * image.shape[1]


def test_no_face_in_a_drawing(media, landmarker):
    assert landmarker.detect(read_image(media / "free-mountain-vector-01.jpg")) == []


def test_several_faces_largest_first(media, face_model):
    with FaceLandmarker(face_model, num_faces=4) as lm:
        faces = lm.detect(read_image(media / "multi_face.jpg"))
    assert len(faces) >= 2
    areas = [f.box[2] * f.box[3] for f in faces]
    assert areas == sorted(areas, reverse=True)


@pytest.mark.parametrize("layout", ["gray", "rgba", "uint16", "float", "tiny", "large"])
def test_accepts_any_layout_and_size(media, landmarker, layout):
    rgb = read_image(media / "single_face.jpg")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    image = {
        "gray": gray,
        "rgba": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        "uint16": rgb.astype(np.uint16) * 257,
        "float": rgb.astype(np.float32) / 255.0,
        # FER2013-like: the face alone, 48×48 gray.
        "tiny": cv2.resize(gray[150:420, 160:400], (48, 48), interpolation=cv2.INTER_AREA),
        "large": cv2.resize(rgb, (2000, 1966)),
    }[layout]
    faces = landmarker.detect(image)
    assert len(faces) == 1
    if layout != "tiny":  # the same pixels in another layout give nearly the same scores
        reference = landmarker.detect(rgb)[0].blendshapes
        assert np.abs(faces[0].blendshapes - reference).max() < 0.25


def test_uint16_and_rgba_convert_exactly():
    rgb = np.arange(48 * 48 * 3, dtype=np.uint32).reshape(48, 48, 3).astype(np.uint8)
    np.testing.assert_array_equal(to_rgb8(rgb.astype(np.uint16) * 257), rgb)
    np.testing.assert_array_equal(to_rgb8(np.dstack([rgb, np.full((48, 48), 255, np.uint8)])), rgb)
    np.testing.assert_array_equal(to_rgb8(rgb[:, :, ::-1], bgr=True), rgb)


def test_image_file_with_alpha_is_read(media, landmarker):
    image = read_image(media / "Image_with_alpha.png")
    assert image.shape[2] == 3 and image.dtype == np.uint8
    assert len(landmarker.detect(image)) == 1


def test_video_mode_needs_increasing_timestamps(media, face_model):
    image = read_image(media / "single_face.jpg")
    with FaceLandmarker(face_model, mode="video") as lm:
        assert len(lm.detect(image, 0)) == 1
        assert len(lm.detect(image, 33)) == 1
        with pytest.raises(EmoblendError, match="increasing timestamps"):
            lm.detect(image, 33)
        lm.reset()
        assert len(lm.detect(image, 0)) == 1


def test_bad_layouts_raise_a_clear_error(landmarker):
    with pytest.raises(EmoblendError, match="expected H×W"):
        landmarker.detect(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(EmoblendError, match="dtype"):
        landmarker.detect(np.zeros((10, 10, 3), np.int64))
