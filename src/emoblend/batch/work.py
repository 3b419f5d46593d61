"""The worker side of a batch run: one estimator per worker process, one unit per call.

:class:`UnitWorker` follows the batch-inference pattern of Ray Data and of process pools: the
constructor runs once in the worker process and the models are built there on first use (a
MediaPipe graph must never cross a process boundary), each call maps one unit to a finished
part, and :meth:`close` releases the models when the worker ends. The driver never holds a
model. The same class serves the local pool and Ray actors, so the two engines give the same
rows.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import EmoblendError
from ..features.table import face_row
from ..io.images import read_image
from ..io.timeline import timeline_row
from ..io.video import VideoSource
from ..realtime.estimator import EmotionEstimator, EmotionReading, EstimatorOptions
from ..realtime.pipeline import run_stream
from .inputs import Unit
from .parts import InputRecord, PartWriter


@dataclass(frozen=True)
class BatchSettings:
    """What decides the rows (stored in run.json; a resumed run must use the same)."""

    model: str | None = None
    num_faces: int = 1
    landmarks: bool = False
    every: int = 1
    face_model: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class UnitWorker:
    """Turn units into finished parts under ``parts_dir`` (see module docstring)."""

    def __init__(self, settings: BatchSettings, parts_dir: str) -> None:
        one_core_per_worker()
        self.settings = settings
        self.parts_dir = Path(parts_dir)
        self._video: EmotionEstimator | None = None
        self._image: EmotionEstimator | None = None

    def _estimator(self, mode: str) -> EmotionEstimator:
        """This worker's estimator for "video" or "image" mode, built on first use; the
        second one shares the first one's classifier."""
        current = getattr(self, f"_{mode}")
        if current is None:
            loaded = self._video or self._image
            s = self.settings
            current = EmotionEstimator(EstimatorOptions(
                classifier=loaded.classifier if loaded else s.model, num_faces=s.num_faces,
                face_model=s.face_model, running_mode=mode,
                color="bgr" if mode == "video" else "rgb"))
            setattr(self, f"_{mode}", current)
        return current

    def __call__(self, unit: Unit) -> list[InputRecord]:
        """Process one unit; returns its inputs' records (a failed video writes no part)."""
        if unit.kind == "video":
            return [self._run_video(unit)]
        return self._run_photos(unit)

    def _writer(self, unit: Unit, estimator: EmotionEstimator) -> PartWriter:
        return PartWriter(self.parts_dir / unit.part, estimator.classifier.classes,
                          self.settings.landmarks)

    def _add(self, writer: PartWriter, source: str, frame: int,
             reading: EmotionReading) -> None:
        head = timeline_row(frame, reading)
        head.update({f"p_{c}": round(p, 6) for c, p in reading.probabilities.items()})
        head["source"] = source
        row = face_row(reading.face, landmarks=self.settings.landmarks)
        writer.add(head, np.fromiter(row.values(), dtype=np.float32, count=len(row)))

    def _run_video(self, unit: Unit) -> InputRecord:
        source = unit.paths[0]
        record = InputRecord(source, "video", part=unit.part)
        estimator = self._estimator("video")  # a bad --model stops the run: not caught here
        start = time.perf_counter()
        try:
            estimator.reset()  # a new stream: timestamps, face ids and stabilizers afresh
            every = self.settings.every
            with VideoSource(source) as video, self._writer(unit, estimator) as writer:

                def write(frame, readings) -> None:  # noqa: ANN001
                    for reading in readings:
                        self._add(writer, source, frame.index, reading)

                kept = (f for f in video if f.index % every == 0)
                summary = run_stream(kept, estimator, on_frame=write, keep_rows=False)
                record.frames, record.faces = summary.frames, writer.rows
                record.seconds = time.perf_counter() - start
                writer.commit([record])
        except EmoblendError as exc:
            _failed(record, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad input must not stop the run
            _failed(record, f"unexpected {type(exc).__name__}: {_first_line(exc)}")
        if record.status != "ok":
            record.part = ""  # its part was not written
        record.seconds = time.perf_counter() - start
        return record

    def _run_photos(self, unit: Unit) -> list[InputRecord]:
        estimator = self._estimator("image")
        records = []
        with self._writer(unit, estimator) as writer:
            for path in unit.paths:
                record = InputRecord(path, "photo", part=unit.part)
                start = time.perf_counter()
                try:
                    readings = estimator.process(read_image(path))
                except EmoblendError as exc:
                    _failed(record, str(exc))
                except Exception as exc:  # noqa: BLE001
                    _failed(record, f"unexpected {type(exc).__name__}: {_first_line(exc)}")
                else:
                    for reading in readings:
                        self._add(writer, path, 0, reading)
                    record.frames, record.faces = 1, len(readings)
                record.seconds = time.perf_counter() - start
                records.append(record)
            writer.commit(records)
        return records

    def close(self) -> None:
        for estimator in (self._video, self._image):
            if estimator is not None:
                estimator.close()
        self._video = self._image = None


def one_core_per_worker() -> None:
    """Keep this worker process on about one core.

    WHY: the pool runs one worker per core, but OpenCV's thread pool and FFmpeg's frame
    threads would each decode on every core: one worker used 1.13 cores, two workers fought
    over two, and the second worker added 1.7x instead of ~1.9x. Decoding one frame at a time
    costs a single worker ~5 %. A user's own ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` is kept.
    """
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "threads;1")
    cv2.setNumThreads(1)


def _failed(record: InputRecord, reason: str) -> None:
    record.status, record.reason = "failed", reason
    record.frames = record.faces = 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"
