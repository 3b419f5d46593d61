"""Encoded frames -> BGR pixels, refusing what is too big before paying to decode it.

A network peer can send any bytes: the byte limit is checked first, then the image size is
read from the file header (``io.images.header_size``, the same Pillow reader as for files),
so a small file that would decode into a huge bitmap is refused without decoding it, and the
decoded shape is checked once more.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ImageError
from ..io.images import header_size, to_rgb8
from .protocol import MAX_PIXELS_SIDE


class FrameTooLarge(ImageError):
    """An encoded frame or photo over the byte limit or the pixel limit (HTTP 413)."""


class FrameUnreadable(ImageError):
    """Bytes that are no image OpenCV can decode (HTTP 400)."""


def check_pixels(width: int, height: int) -> None:
    """Refuse an image over MAX_PIXELS_SIDE on either side.

    The one place the server's pixel rule lives: it can call io/images' own limit when that
    exists, without the server changing elsewhere.
    """
    if width > MAX_PIXELS_SIDE or height > MAX_PIXELS_SIDE:
        raise FrameTooLarge(
            f"image is {width}x{height} px; the server reads at most "
            f"{MAX_PIXELS_SIDE}x{MAX_PIXELS_SIDE} (downscale it before sending)"
        )


def check_bytes(data: bytes, max_bytes: int) -> None:
    """Refuse an encoded image over ``max_bytes`` (the server's --max-frame-bytes)."""
    if len(data) > max_bytes:
        raise FrameTooLarge(
            f"image is {len(data):,} bytes; the server takes at most {max_bytes:,} "
            "(--max-frame-bytes); send a smaller or more compressed image"
        )


def decode_frame(data: bytes, max_bytes: int) -> np.ndarray:
    """BGR uint8 pixels of an encoded image (JPEG, PNG, WebP, BMP), within the limits.

    Raises :class:`FrameTooLarge` or :class:`FrameUnreadable` with a one-line message.
    Gray, 16-bit and transparent images are converted as ``emoblend images`` reads files.
    """
    check_bytes(data, max_bytes)
    if not data:
        raise FrameUnreadable("empty image; send the bytes of a JPEG, PNG, WebP or BMP file")
    size = header_size(data)
    if size is not None:
        check_pixels(*size)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FrameUnreadable(
            f"cannot decode the {len(data):,} bytes as an image; send JPEG, PNG, WebP or BMP"
        )
    check_pixels(image.shape[1], image.shape[0])
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    rgb = to_rgb8(image, bgr=image.ndim == 3)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
