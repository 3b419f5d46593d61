"""Frames in, steady emotion readings out: the online path a robot runs.

:class:`EmotionEstimator` is built like a MediaPipe Tasks object (an options dataclass,
``create_from_options``, explicit running modes and timestamps) so it sits naturally beside
MediaPipe's FaceLandmarker in robot code::

    options = EstimatorOptions(num_faces=2)          # shipped classifier, VIDEO mode, BGR frames
    with EmotionEstimator.create_from_options(options) as estimator:
        for reading in estimator.process(frame, timestamp_ms=t):
            print(reading.face_id, reading.stable_label, reading.confidence)

Per frame: MediaPipe Face Landmarker -> 52 blendshapes per face -> classifier (ONNX Runtime,
all faces in one batch) -> face tracker (stable ids) -> that face's stabilizer.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..classify.classifier import Classifier, load_classifier
from ..errors import EmoblendError
from ..face.landmarker import Face, FaceLandmarker
from ..io.images import to_rgb8
from ..labels import WARMUP_LABEL
from .stabilizer import StabilizerOptions
from .tracking import FaceTracker

COLORS = ("bgr", "rgb")


@dataclass(frozen=True)
class EstimatorOptions:
    """Settings of :class:`EmotionEstimator`; the defaults suit one person in front of a robot."""

    classifier: str | os.PathLike | Classifier | None = None
    """A bundled classifier's name, an .onnx path, a loaded Classifier, or None for the default."""
    num_faces: int = 1
    """Most faces read per frame (largest first), as in MediaPipe."""
    running_mode: str = "video"
    """"video": a stream with increasing timestamps, tracked and stabilized.
    "image": independent images; stable_label equals the per-frame label."""
    color: str = "bgr"
    """Channel order of the frames given to process(): "bgr" (OpenCV) or "rgb"."""
    stabilizer: StabilizerOptions = field(default_factory=StabilizerOptions)
    """Temporal filter settings, in milliseconds (VIDEO mode only)."""
    track_timeout_ms: float = 1000.0
    """A face unseen this long is forgotten; if it returns it gets a new id."""
    face_model: str | os.PathLike | None = None
    """MediaPipe face_landmarker.task (default: $EMOBLEND_FACE_MODEL, the cache, or a download)."""


@dataclass(frozen=True)
class EmotionReading:
    """One face in one frame, as plain data."""

    face_id: int
    """Stable across frames in VIDEO mode; the face's rank by size in IMAGE mode."""
    box: tuple[int, int, int, int]
    """(x, y, w, h) in pixels."""
    probabilities: dict[str, float]
    """This frame's classifier probabilities, keyed by the classifier's labels in its order
    (happy, unknown, sad for the paper's classes; FER2013's seven for a seven-class model)."""
    raw_label: str
    """argmax of this frame's probabilities."""
    stable_label: str
    """The stabilizer's label: one of the classifier's labels, or "unknown" until the face has
    been seen long enough."""
    confidence: float
    """Smoothed probability of the stable label (this frame's, in IMAGE mode)."""
    timestamp_ms: int | None
    face: Face | None = field(default=None, repr=False, compare=False)
    """The landmarker's output (blendshapes, landmarks) this reading came from."""

    @property
    def probability_array(self) -> np.ndarray:
        """The probabilities as a (C,) array in the classifier's label order."""
        return np.fromiter(self.probabilities.values(), dtype=np.float32)


class EmotionEstimator:
    """Emotion readings for the faces in images or a video stream (see module docstring)."""

    def __init__(self, options: EstimatorOptions | None = None) -> None:
        options = options or EstimatorOptions()
        if options.running_mode not in ("image", "video"):
            raise EmoblendError(
                f"running_mode {options.running_mode!r} is not 'image' or 'video'"
            )
        if options.color not in COLORS:
            raise EmoblendError(f"color {options.color!r} is not 'bgr' or 'rgb'")
        self.options = options
        self.classifier = (
            options.classifier
            if isinstance(options.classifier, Classifier)
            else load_classifier(options.classifier)
        )
        self._landmarker = FaceLandmarker(
            options.face_model, mode=options.running_mode, num_faces=options.num_faces
        )
        self.tracker = FaceTracker(
            options.stabilizer, timeout_ms=options.track_timeout_ms, labels=self.classes
        )
        self.last_timings: dict[str, float] = {}
        """Milliseconds spent per stage on the last process() call: "mediapipe" (MediaPipe's
        own call), "wrapper" (the landmarker's conversions around it), "classifier" and
        "stabilizer" (tracking included): for overlays and benchmarks."""

    @property
    def classes(self) -> tuple[str, ...]:
        """The classifier's label set: the keys of every reading's probabilities, in order."""
        return self.classifier.classes

    @classmethod
    def create_from_options(cls, options: EstimatorOptions) -> EmotionEstimator:
        return cls(options)

    def process(self, frame: np.ndarray, timestamp_ms: int | None = None) -> list[EmotionReading]:
        """Read the faces in one frame; VIDEO mode needs increasing ``timestamp_ms``."""
        self._check_timestamp(timestamp_ms)
        faces = self._landmarker.detect(frame, timestamp_ms, bgr=self.options.color == "bgr")
        readings = self.process_faces(faces, timestamp_ms, frame=frame)
        self.last_timings = {**self._landmarker.last_timings, **self.last_timings}
        return readings

    def process_faces(self, faces: list[Face], timestamp_ms: int | None = None, *,
                      frame: np.ndarray | None = None) -> list[EmotionReading]:
        """Readings for faces a FaceLandmarker already found in one frame.

        It lets a recorded landmarker pass be replayed through several classifiers or
        stabilizer settings (the benchmarks do), with the same tracking as :meth:`process`.
        A classifier that reads the face crop (``classifier.needs_crop``) needs that ``frame``
        too, in the estimator's ``color`` order.
        """
        video = self.options.running_mode == "video"
        self._check_timestamp(timestamp_ms)
        t1 = time.perf_counter()
        if faces:
            probs = self.classifier.predict_proba(
                np.stack([f.blendshapes for f in faces]),
                np.stack([f.landmarks for f in faces]) if self.classifier.needs_landmarks else None,
                np.stack([f.matrix for f in faces]) if self.classifier.needs_landmarks else None,
                self._crops(faces, frame) if self.classifier.needs_crop else None,
            )
        else:
            probs = np.zeros((0, len(self.classes)), dtype=np.float32)
        t2 = time.perf_counter()
        labels = self.classes
        readings = []
        tracks = self.tracker.update([f.box for f in faces], timestamp_ms) if video else None
        for i, (face, p) in enumerate(zip(faces, probs, strict=True)):
            raw = int(np.argmax(p))
            if tracks is not None:
                stable, confidence = tracks[i].stabilizer.update(p, timestamp_ms)
                face_id = tracks[i].face_id
            else:
                stable, confidence, face_id = raw, float(p[raw]), i
            readings.append(
                EmotionReading(
                    face_id=face_id,
                    box=face.box,
                    probabilities={c: float(v) for c, v in zip(labels, p, strict=True)},
                    raw_label=labels[raw],
                    stable_label=WARMUP_LABEL if stable is None else labels[stable],
                    confidence=confidence,
                    timestamp_ms=None if timestamp_ms is None else int(timestamp_ms),
                    face=face,
                )
            )
        t3 = time.perf_counter()
        self.last_timings = {"classifier": (t2 - t1) * 1e3, "stabilizer": (t3 - t2) * 1e3}
        return readings

    def _crops(self, faces: list[Face], frame: np.ndarray | None) -> np.ndarray:
        if frame is None:
            raise EmoblendError(
                f"classifier {self.classifier.name!r} reads the face crop: pass the frame to "
                "process_faces(faces, timestamp_ms, frame=frame)"
            )
        color = self.options.color
        if frame.dtype != np.uint8 or frame.ndim == 3 and frame.shape[2] not in (3, 4):
            frame, color = to_rgb8(frame, bgr=color == "bgr"), "rgb"
        return self.classifier.crops(frame, np.stack([f.landmarks for f in faces]), color=color)

    def _check_timestamp(self, timestamp_ms: int | None) -> None:
        if self.options.running_mode == "video" and timestamp_ms is None:
            raise EmoblendError(
                "VIDEO mode needs timestamp_ms for every frame (or use running_mode='image')"
            )

    def reset(self) -> None:
        """Start a new stream: timestamps, face ids and stabilizers start afresh."""
        self._landmarker.reset()
        self.tracker.reset()

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> EmotionEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
