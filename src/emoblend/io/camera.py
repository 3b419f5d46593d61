"""Read frames from a camera or a network stream with OpenCV, stamped with the monotonic clock.

A camera has no frame rate to trust (it drops frames under load), so each frame's timestamp is
the time it was read, in milliseconds since the camera was opened: the stabilizer's time
constants then mean real time. Besides a device index, any source OpenCV opens is accepted
(an RTSP/HTTP URL of an IP camera, a GStreamer pipeline, a file played as if live).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import cv2

from ..errors import VideoError
from .video import Frame


class CameraSource:
    """Frames from camera ``index`` until ``close()`` or the camera stops delivering.

    ``index`` is a device number, or a string: digits mean a device number, anything else a
    URL or path for OpenCV to open.
    """

    def __init__(
        self, index: int | str = 0, *, width: int | None = None, height: int | None = None
    ) -> None:
        if isinstance(index, str) and index.strip().isdigit():
            index = int(index)
        self.index = index
        # OpenCV logs every backend it tried to stderr when no camera exists; our one-line
        # error says it better.
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self._capture = cv2.VideoCapture(index)
            opened = self._capture.isOpened()
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if not opened:
            self._capture.release()
            what = f"no camera at index {index}" if isinstance(index, int) else (
                f"cannot open camera stream {index!r}")
            raise VideoError(
                f"{what} (OpenCV could not open it); connect a camera, choose another with "
                "--camera N (or a stream URL), or run `emoblend video FILE` or `emoblend demo`"
            )
        if width:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._start = time.monotonic()
        self.frames_read = 0

    def __iter__(self) -> Iterator[Frame]:
        last_ms = -1
        while True:
            ok, image = self._capture.read()
            if not ok or image is None:
                if self.frames_read == 0:
                    raise VideoError(f"camera {self.index} opened but delivered no frame")
                return
            # strictly increasing, as MediaPipe's VIDEO mode needs, even on a coarse clock
            now_ms = max(last_ms + 1, int((time.monotonic() - self._start) * 1000))
            last_ms = now_ms
            yield Frame(self.frames_read, now_ms, image)
            self.frames_read += 1

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
