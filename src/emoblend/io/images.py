"""Read image files and normalise arrays to the 8-bit RGB that MediaPipe needs.

MediaPipe's face detector rejects grayscale and 16-bit input outright, and photos arrive in
every layout, so everything goes through :func:`to_rgb8` once, at the boundary.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def to_rgb8(image: np.ndarray, *, bgr: bool = False) -> np.ndarray:
    """Return a C-contiguous uint8 H×W×3 RGB copy of a gray, RGB(A) or BGR(A) image.

    Accepts uint8, uint16 (scaled by 1/257) and float images in [0, 1]; transparent pixels
    are composited onto white so a cut-out face is still seen.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(
            f"image has shape {arr.shape}; expected H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA)"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"image has shape {arr.shape}; it must be at least 1×1 pixels")
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise ImageError(f"image has dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = (arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    if bgr:  # cv2 swaps channels in 0.03 ms per 640×360 frame; a numpy strided copy takes 2 ms
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(arr)


DEFAULT_MAX_PIXELS = 50_000_000
"""Most pixels a decoded image may have: 50 megapixels (8-bit RGB: 150 MB)."""
MAX_PIXELS_ENV = "EMOBLEND_MAX_PIXELS"


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit: ``max_pixels`` if given, else $EMOBLEND_MAX_PIXELS, else 50 million."""
    if max_pixels is not None:
        value: object = max_pixels
    else:
        value = os.environ.get(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if limit < 1:
        raise ImageError(f"the pixel limit must be a whole number above 0, not {value!r} "
                         f"(--max-pixels or ${MAX_PIXELS_ENV})")
    return limit


_PILLOW_GUARD = threading.Lock()


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the file's header, without decoding its pixels.

    Pillow's ``Image.open`` parses only the header (JPEG, PNG, BMP, TIFF, WebP, PNM ...);
    None where it cannot tell.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        try:
            with Image.open(io.BytesIO(data)) as header:
                return header.size
        except Image.DecompressionBombError:
            # over Pillow's own guard (~179 megapixels): read the header once more without it,
            # to report the size; our limit is the guard here, and nothing is decoded
            with _PILLOW_GUARD:
                saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    with Image.open(io.BytesIO(data)) as header:
                        return header.size
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def check_pixels(width: int, height: int, source: str, max_pixels: int | None = None) -> None:
    """A one-line :class:`ImageError` if a ``width`` × ``height`` image is over the limit."""
    limit = max_pixels_limit(max_pixels)
    if width * height > limit:
        raise ImageError(
            f"{source} is {width}×{height} = {width * height / 1e6:.1f} megapixels, over the "
            f"limit of {limit / 1e6:g} megapixels; shrink it, or raise the limit "
            f"(--max-pixels N or ${MAX_PIXELS_ENV})"
        )


def decode_image(data: bytes, source: str = "the image", *,
                 max_pixels: int | None = None) -> np.ndarray:
    """Decode an encoded image (file bytes, an upload) as 8-bit RGB, within the pixel limit.

    The size is read from the header and checked before any pixel is decoded, so a small
    file that would unpack into gigabytes (a "pixel bomb") costs nothing; where the header
    cannot be read first, the decoded size is checked instead.
    """
    size = header_size(data)
    if size is not None:
        check_pixels(*size, source, max_pixels)
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise ImageError(
            f"cannot read {source} as an image; give a JPEG, PNG, BMP, TIFF or WebP file"
        )
    if size is None:
        check_pixels(image.shape[1], image.shape[0], source, max_pixels)
    return to_rgb8(image, bgr=image.ndim == 3)


def check_image_file(path: str | os.PathLike) -> Path:
    """A one-line :class:`ImageError` unless ``path`` is an existing file (cheap: no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}" if not path.exists()
                         else f"{path} is not an image file (a folder?)")
    return path


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as 8-bit RGB, whatever its bit depth or channels.

    Images over ``max_pixels`` (default: $EMOBLEND_MAX_PIXELS or 50 million) are refused
    from their header, before decoding.
    """
    path = check_image_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    return decode_image(data, str(path), max_pixels=max_pixels)


def expand_image_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand folders into their image files (sorted); keep files as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out
