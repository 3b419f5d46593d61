"""The server's frame reading: sizes from real encoders' headers, limits before decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emoblend.io.images import header_size
from emoblend.serve.frames import FrameTooLarge, FrameUnreadable, decode_frame


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".bmp"])
@pytest.mark.parametrize(("width", "height"), [(640, 360), (17, 4100), (4097, 9)])
def test_header_size_reads_what_opencv_wrote(suffix, width, height):
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = cv2.imencode(suffix, image)[1].tobytes()
    assert header_size(data) == (width, height)
    if max(width, height) > 4096:
        with pytest.raises(FrameTooLarge, match="4096"):
            decode_frame(data, max_bytes=len(data))
    else:
        assert np.array_equal(decode_frame(data, max_bytes=len(data)).shape, image.shape)


def test_a_progressive_jpeg_with_metadata_segments_is_sized_too():
    image = np.zeros((300, 500, 3), np.uint8)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert header_size(data) == (500, 300)


def test_limits_and_garbage_are_one_line_errors(media):
    photo = (media / "single_face.jpg").read_bytes()
    with pytest.raises(FrameTooLarge, match="--max-frame-bytes"):
        decode_frame(photo, max_bytes=len(photo) - 1)
    for junk in (b"", b"GIF89a not really", photo[: len(photo) // 20]):
        with pytest.raises(FrameUnreadable):
            decode_frame(junk, max_bytes=10**7)
    rgba = (media / "Image_with_alpha.png").read_bytes()
    assert decode_frame(rgba, max_bytes=len(rgba)).shape[2] == 3  # composited like `images`
