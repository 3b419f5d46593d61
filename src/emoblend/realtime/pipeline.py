"""Run an estimator over a stream of frames and feed the sinks: the loop behind video, live, demo.

One loop serves every source (file, camera, generated clip), so the CLI commands differ only
in where frames come from and where readings go.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from ..errors import EmoblendError
from ..io.overlay import draw_readings
from ..io.timeline import (
    TimelineWriter,
    plot_timeline,
    timeline_columns,
    timeline_format,
    timeline_row,
)
from ..io.video import Frame, VideoSink, VideoSource, check_video_output
from ..progress import progress_bar
from .estimator import EmotionEstimator, EmotionReading, EstimatorOptions
from .stabilizer import count_switches


class FrameSink(AbstractContextManager, Protocol):
    """Where each frame goes with its readings, besides the timeline: a ROS bag, a live view.

    Entered before the first frame and exited after the last: a clean exit completes the
    output, an exit with an exception leaves none. The loop calls ``write_frame`` once per frame.
    """

    def write_frame(self, frame: Frame, readings: list[EmotionReading]) -> None: ...


class Estimator(Protocol):
    """What the frame loop needs of an estimator: :class:`EmotionEstimator` in this process,
    or :class:`emoblend.serve.client.RemoteEstimator` reading frames on a server."""

    options: EstimatorOptions

    @property
    def classes(self) -> tuple[str, ...]:
        """The model's labels, in the order of each reading's probabilities."""

    def process(self, frame: np.ndarray, timestamp_ms: int | None = None
                ) -> list[EmotionReading]: ...

    def close(self) -> None: ...


@dataclass
class StreamSummary:
    """What happened in a stream, for the CLI's closing lines and the benchmarks."""

    frames: int = 0
    frames_with_face: int = 0
    duration_ms: float = 0.0
    processing_s: float = 0.0
    warmup_ms: float = 0.0
    """The stabilizer's warm-up: its "unknown" before a face's first label is no switch."""
    rows: list[dict] = field(default_factory=list, repr=False)

    @property
    def fps(self) -> float:
        """Frames processed per second of wall time (landmarker + classifier + overlay)."""
        return self.frames / self.processing_s if self.processing_s > 0 else 0.0

    @property
    def face_ids(self) -> list[int]:
        return sorted({r["face_id"] for r in self.rows})

    def labels(self, face_id: int, column: str = "stable_label") -> list[str]:
        """One face's labels over time; stable labels start after the warm-up."""
        rows = [r for r in self.rows if r["face_id"] == face_id]
        if column == "stable_label" and rows:
            start = rows[0]["time_ms"] + self.warmup_ms
            rows = [r for r in rows if r["time_ms"] >= start]
        return [r[column] for r in rows]

    def switches(self, column: str) -> int:
        """Label changes summed over faces (``column`` is "label" or "stable_label")."""
        return sum(count_switches(self.labels(i, column)) for i in self.face_ids)

    def switches_per_minute(self, column: str) -> float:
        return self.switches(column) * 60_000.0 / self.duration_ms if self.duration_ms else 0.0

    def label_shares(self) -> dict[str, float]:
        """Share of face-frames per stable label."""
        if not self.rows:
            return {}
        labels = np.array([r["stable_label"] for r in self.rows])
        return {c: float(np.mean(labels == c)) for c in sorted(set(labels))}


def run_stream(
    frames: Iterable[Frame],
    estimator: Estimator,
    *,
    annotate: Callable[[np.ndarray], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
    on_frame: Callable[[Frame, list[EmotionReading]], None] | None = None,
    keep_rows: bool = True,
    sinks: Sequence[FrameSink] = (),
) -> StreamSummary:
    """Process every frame; ``annotate`` receives each frame with the overlay drawn on it.

    ``on_row`` receives each timeline row (one per face per frame), ``on_frame`` each frame
    with its readings (for progress bars and windows). The overlay's fps is a running average
    over the last second of frames. ``keep_rows=False`` keeps no rows in the summary, so an
    open-ended camera session does not grow in memory (its label statistics are then empty).
    ``sinks`` (already entered by the caller) receive each frame with its readings.
    """
    summary = StreamSummary(warmup_ms=estimator.options.stabilizer.warmup_ms)
    recent: list[float] = []
    start = time.perf_counter()
    for frame in frames:
        readings = estimator.process(frame.image, frame.timestamp_ms)
        now = time.perf_counter()
        recent = [t for t in recent if now - t < 1.0] + [now]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else None
        summary.frames += 1
        summary.frames_with_face += bool(readings)
        summary.duration_ms = float(frame.timestamp_ms)
        for reading in readings:
            row = timeline_row(frame.index, reading)
            if keep_rows:
                summary.rows.append(row)
            if on_row is not None:
                on_row(row)
        if annotate is not None:
            annotate(draw_readings(frame.image, readings, fps))
        if on_frame is not None:
            on_frame(frame, readings)
        for sink in sinks:
            sink.write_frame(frame, readings)
    summary.processing_s = time.perf_counter() - start
    if summary.frames > 1:
        # the last frame lasts one frame interval too
        summary.duration_ms *= summary.frames / (summary.frames - 1)
    return summary


def process_video(
    path: str | os.PathLike,
    options: EstimatorOptions | None = None,
    *,
    make_estimator: Callable[[], Estimator] | None = None,
    annotated: str | os.PathLike | None = None,
    timeline: str | os.PathLike | None = None,
    plot: str | os.PathLike | None = None,
    progress: bool = False,
    on_frame: Callable[[Frame, list[EmotionReading]], None] | None = None,
    sinks: Sequence[FrameSink] = (),
) -> StreamSummary:
    """Read a video file and write any of: an annotated video, a timeline, a timeline plot,
    and whatever ``sinks`` write (a ROS bag).

    Outputs are checked before any work starts and written atomically: if the video turns out
    to be truncated half-way, none of them appears. The frames go through the estimator
    ``make_estimator()`` returns when given (a remote one, say: it is made once the video has
    opened, and closed at the end), else through an :class:`EmotionEstimator` from ``options``.
    """
    if annotated is not None:
        check_video_output(annotated)
    if timeline is not None:
        timeline_format(timeline)
    plot_kinds = (".png", ".pdf", ".svg", ".jpg")
    if plot is not None and Path(plot).suffix.lower() not in plot_kinds:
        raise EmoblendError(f"output {plot}: name it with one of {', '.join(plot_kinds)}")
    source = VideoSource(path)
    with ExitStack() as stack:
        stack.enter_context(source)
        if make_estimator is None:
            estimator = EmotionEstimator.create_from_options(options or EstimatorOptions())
        else:
            estimator = make_estimator()
        stack.callback(estimator.close)
        sink = stack.enter_context(VideoSink(annotated, source.fps)) if annotated else None
        writer = (stack.enter_context(TimelineWriter(timeline, estimator.classes))
                  if timeline else None)
        entered = [stack.enter_context(s) for s in sinks]
        callbacks = [on_frame] if on_frame else []
        if progress:
            bar = stack.enter_context(progress_bar())
            task = bar.add_task(f"reading {Path(path).name}", total=source.declared_frames or None)
            callbacks.append(lambda frame, readings: bar.advance(task))

        def each_frame(frame: Frame, readings: list[EmotionReading]) -> None:
            for callback in callbacks:
                callback(frame, readings)

        summary = run_stream(
            source,
            estimator,
            annotate=sink.write if sink else None,
            on_row=writer.write if writer else None,
            on_frame=each_frame if callbacks else None,
            sinks=entered,
        )
    if plot is not None:
        columns = list(timeline_columns(estimator.classes))
        plot_timeline(pd.DataFrame(summary.rows, columns=columns), plot,
                      title=Path(path).name, duration_ms=summary.duration_ms)
    return summary
