"""Read video files frame by frame, and write annotated videos, with OpenCV.

Timestamps come from the frame index and the container's frame rate, not from
``CAP_PROP_POS_MSEC``, which OpenCV's FFmpeg backend reports unreliably (0 on the first
frames, jumps on variable-rate files); MediaPipe's VIDEO mode needs them strictly increasing.

Everything a user can get wrong (a missing file, a text file named .mp4, a truncated
download) becomes a one-line :class:`~emoblend.errors.VideoError`. FFmpeg's own console
chatter is silenced so it does not bury that line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read at each open

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import EmoblendError, OutputError, VideoError  # noqa: E402
from .atomic import atomic_path, disk_full, no_space_error  # noqa: E402

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def check_video_output(path: str | os.PathLike) -> None:
    """A one-line error unless ``path`` names a video container OpenCV writes here."""
    if Path(path).suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(f"cannot write video {path}: name it .mp4 (or .avi, .mov, .mkv)")


TRUNCATION_TOLERANCE = 0.9
"""A file that decodes fewer than this share of the frames its header declares is reported
as truncated (containers often over-declare by a few frames: no_face.mp4 declares 98, has 95)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: BGR uint8 pixels and its place in the stream."""

    index: int
    timestamp_ms: int
    image: np.ndarray


class VideoSource:
    """Frames of a video file; iterate it once (``for frame in source``).

    Raises :class:`VideoError` on open if the file is missing or not a video, and at the end
    of iteration if it stopped decoding well before the frame count its header declares.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"video not found: {self.path}")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise VideoError(
                f"cannot open {self.path} as a video (not a video file, or damaged); "
                "give an MP4, MOV, AVI or MKV file that a video player can play"
            )
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        if not (0 < self.fps <= 1000):
            self.close()
            raise VideoError(
                f"{self.path} declares no usable frame rate ({self.fps}); re-encode it, "
                "e.g. ffmpeg -i IN -r 30 OUT.mp4"
            )
        self.declared_frames = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frames_read = 0

    def timestamp_ms(self, index: int) -> int:
        return int(round(index * 1000.0 / self.fps))

    def __iter__(self) -> Iterator[Frame]:
        if self.frames_read:
            raise VideoError(f"{self.path} was already read; open it again to read it twice")
        try:
            while True:
                ok, image = self._capture.read()
                if not ok or image is None:
                    break
                yield Frame(self.frames_read, self.timestamp_ms(self.frames_read), image)
                self.frames_read += 1
        finally:
            self.close()
        if self.frames_read == 0:
            raise VideoError(f"{self.path} has no frame that can be decoded; the file is damaged")
        if self.frames_read < TRUNCATION_TOLERANCE * self.declared_frames:
            raise VideoError(
                f"{self.path} stops after {self.frames_read} of its {self.declared_frames} "
                "frames; the file looks truncated or damaged (download or copy it again)"
            )

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoSink:
    """Write BGR frames to an .mp4 (mp4v codec), atomically: the file appears only on success.

    Use as a context manager; an exception inside the ``with`` leaves no output file.
    OpenCV's writer reports no failure (a full disk only prints "Failed to write frame"), so
    the sink checks for itself: free space every :attr:`CHECK_EVERY` frames while writing,
    and at the end the file is reopened and must hold every frame written before it is renamed
    into place. Any failure is an :class:`~emoblend.errors.OutputError`, never a silent,
    unplayable "written" video.
    """

    CHECK_EVERY = 25

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        check_video_output(path)
        self.path = Path(path)
        self.fps = fps
        self._stack = ExitStack()
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._log_level: int | None = None
        self.frames_written = 0

    def __enter__(self) -> VideoSink:
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        # FFmpeg's per-frame warnings would bury the one-line error; failures are checked here
        self._log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        return self

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(
                str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h)
            )
            if not self._writer.isOpened():
                raise VideoError(
                    f"OpenCV cannot write video {self.path} ({w}x{h} @ {self.fps} fps)"
                )
        self._writer.write(image)
        self.frames_written += 1
        if self.frames_written % self.CHECK_EVERY == 0 and disk_full(self._tmp.parent):
            raise no_space_error(self.path)

    def _check_written(self) -> None:
        """Reopen the finished file: it must decode as a video of every frame written."""
        capture = cv2.VideoCapture(str(self._tmp))
        try:
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()
        if frames == self.frames_written:
            return
        if disk_full(self._tmp.parent):
            raise no_space_error(self.path)
        raise OutputError(
            f"cannot write {self.path}: the written video holds {frames} of its "
            f"{self.frames_written} frames when read back (a write failed; check the disk)"
        )

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            if self._writer is not None:
                self._writer.release()
            if exc_type is None:
                if self.frames_written == 0:
                    raise VideoError(f"no frames to write to {self.path}")
                self._check_written()
        except EmoblendError as error:
            self._stack.__exit__(type(error), error, None)  # discards the temporary file
            raise
        finally:
            if self._log_level is not None:
                cv2.utils.logging.setLogLevel(self._log_level)
        # on an exception, atomic_path removes the temporary file: nothing appears at self.path
        self._stack.__exit__(exc_type, exc, tb)
