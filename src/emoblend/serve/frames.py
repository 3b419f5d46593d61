"""Encoded frames -> BGR pixels, refusing what is too big before paying to decode it.

A network peer can send any bytes: the byte limit is checked first, then the image size is
read from the file header (PNG, JPEG, WebP, BMP) so a small file that would decode into a
huge bitmap is refused without decoding it, and the decoded shape is checked once more.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from ..errors import ImageError
from ..io.images import to_rgb8
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


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, WebP or BMP header, or None if it cannot tell."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"BM" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


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
