"""A small, explicit wrapper around MediaPipe's Face Landmarker.

It hides MediaPipe's result objects behind plain numpy arrays in a fixed order
(:data:`~emoblend.face.blendshapes.BLENDSHAPE_NAMES`), converts any image layout to what MediaPipe
accepts, and makes the running mode explicit: IMAGE mode is deterministic (used to build data
sets), VIDEO mode tracks faces across frames and needs increasing timestamps.

Use it as a context manager: mediapipe 1.2.2 prints errors at interpreter exit when a
landmarker is left for ``__del__`` to close.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.python import vision

from ..errors import EmoblendError
from ..io.images import to_rgb8
from ..io.signals import signals_deferred
from .blendshapes import NUM_BLENDSHAPES
from .model_file import resolve_face_model

NUM_LANDMARKS = 478
RUNNING_MODES = ("image", "video")


@dataclass(frozen=True)
class Face:
    """One face found in one image."""

    blendshapes: np.ndarray
    """(52,) float32 scores in BLENDSHAPE_NAMES order."""
    landmarks: np.ndarray
    """(478, 3) float32: x and y normalised to the image width and height, z relative depth."""
    matrix: np.ndarray
    """(4, 4) float32 facial transformation matrix (canonical face → camera)."""
    box: tuple[int, int, int, int]
    """(x, y, w, h) in pixels: the landmarks' bounding box, clipped to the image."""


class FaceLandmarker:
    """MediaPipe Face Landmarker with blendshapes, in IMAGE or VIDEO mode.

    ``detect(image)`` takes an RGB (or gray, RGBA, 16-bit) numpy image; in VIDEO mode it
    also takes ``timestamp_ms``, which must increase from call to call.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        mode: str = "image",
        num_faces: int = 1,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        if mode not in RUNNING_MODES:
            raise EmoblendError(f"running mode {mode!r} is not one of {', '.join(RUNNING_MODES)}")
        if num_faces < 1:
            raise EmoblendError(f"num_faces is {num_faces}; it must be 1 or more")
        self.mode = mode
        self.num_faces = num_faces
        self.model_path = resolve_face_model(model_path)
        options = vision.FaceLandmarkerOptions(
            base_options=mp_tasks.BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=(
                vision.RunningMode.IMAGE if mode == "image" else vision.RunningMode.VIDEO
            ),
            num_faces=num_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._options = options
        self._landmarker = _create(options)
        self._last_timestamp: int | None = None
        self.last_timings: dict[str, float] = {}
        """Milliseconds of the last detect(): "mediapipe" (MediaPipe's own call, as a user
        would make it) and "wrapper" (this class's conversions around it)."""

    def detect(
        self, image: np.ndarray, timestamp_ms: int | None = None, *, bgr: bool = False
    ) -> list[Face]:
        """Find up to ``num_faces`` faces; returns them largest first."""
        if self._landmarker is None:
            raise EmoblendError("this FaceLandmarker is closed; create a new one")
        t0 = time.perf_counter()
        rgb = to_rgb8(image, bgr=bgr)
        if self.mode == "video":
            if timestamp_ms is None:
                raise EmoblendError("VIDEO mode needs timestamp_ms for every frame")
            timestamp_ms = int(timestamp_ms)
            if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
                raise EmoblendError(
                    f"timestamp {timestamp_ms} ms is not after the previous one "
                    f"({self._last_timestamp} ms); VIDEO mode needs increasing timestamps "
                    "(call reset() between videos)"
                )
            self._last_timestamp = timestamp_ms
        with signals_deferred():  # see _create
            t1 = time.perf_counter()
            mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            if self.mode == "image":
                result = self._landmarker.detect(mp_image)
            else:
                result = self._landmarker.detect_for_video(mp_image, timestamp_ms)
            t2 = time.perf_counter()
        faces = [
            _to_face(lms, shapes, matrix, rgb.shape[1], rgb.shape[0])
            for lms, shapes, matrix in zip(
                result.face_landmarks,
                result.face_blendshapes,
                result.facial_transformation_matrixes,
                strict=True,
            )
        ]
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        self.last_timings = {
            "mediapipe": (t2 - t1) * 1e3, "wrapper": (t1 - t0 + time.perf_counter() - t2) * 1e3
        }
        return faces

    def reset(self) -> None:
        """Start a new stream: VIDEO-mode tracking state and timestamps are dropped."""
        if self.mode == "video" and self._last_timestamp is not None:
            self.close()
            self._landmarker = _create(self._options)
            self._last_timestamp = None

    def close(self) -> None:
        if self._landmarker is not None:
            with signals_deferred():
                self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _create(options: vision.FaceLandmarkerOptions) -> vision.FaceLandmarker:
    # Every call into MediaPipe runs with the stop signals held back: mediapipe 1.2 runs it
    # on a worker thread, and a Ctrl-C or SIGTERM that unwound the wait would leave that
    # thread writing into freed memory (a crash at exit, 1 stop in 20; see emoblend.io.signals).
    with _quiet_native_stderr(), signals_deferred():
        return vision.FaceLandmarker.create_from_options(options)


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence the C++ INFO/WARNING lines MediaPipe writes while building its graph.

    No environment variable quiets them in mediapipe 1.2.2, and they would bury a CLI's
    one-line error. Set EMOBLEND_MEDIAPIPE_LOGS=1 to see them.
    """
    if os.environ.get("EMOBLEND_MEDIAPIPE_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _to_face(landmarks, blendshapes, matrix, width: int, height: int) -> Face:
    # one list per coordinate: 3x faster than a tuple per point (0.1 vs 0.26 ms per face)
    points = np.array(
        [[p.x for p in landmarks], [p.y for p in landmarks], [p.z for p in landmarks]],
        dtype=np.float32,
    ).T.copy()
    scores = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
    scores[[c.index for c in blendshapes]] = [c.score for c in blendshapes]
    x0, y0 = (
        np.clip(points[:, 0].min() * width, 0, width),
        np.clip(points[:, 1].min() * height, 0, height),
    )
    x1, y1 = (
        np.clip(points[:, 0].max() * width, 0, width),
        np.clip(points[:, 1].max() * height, 0, height),
    )
    box = (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))
    return Face(scores, points, np.asarray(matrix, dtype=np.float32).reshape(4, 4), box)
