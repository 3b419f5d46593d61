"""A demo clip made from a real face photo, and the whole pipeline run over it.

The clip needs no camera and no download: scikit-image (a core dependency) ships the
public-domain NASA portrait of astronaut Eileen Collins (``skimage.data.astronaut()``) inside
its wheel. :func:`render_still_clip` turns a still photo into a video the way a handheld
camera would see it: a slow random drift, a gentle zoom and a slight roll, plus sensor noise.
The same renderer feeds the flicker benchmark, where a face that does not change must keep
its label.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..io.atomic import check_output
from ..io.video import Frame, VideoSink
from .pipeline import StreamSummary

DEMO_SECONDS = 6.0
DEMO_FPS = 25.0


def astronaut_bgr() -> np.ndarray:
    """The astronaut photo (512x512) as BGR uint8, from scikit-image's bundled data."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def render_still_clip(
    image_bgr: np.ndarray,
    *,
    seconds: float = DEMO_SECONDS,
    fps: float = DEMO_FPS,
    size: tuple[int, int] = (640, 480),
    max_shift_px: float = 12.0,
    zoom: float = 0.08,
    max_roll_deg: float = 3.0,
    noise_sigma: float = 4.0,
    seed: int = 0,
) -> Iterator[Frame]:
    """Frames of ``image_bgr`` seen by a slightly unsteady camera with sensor noise.

    The drift is a smoothed random walk (so motion is continuous, as from a hand), the zoom
    and roll are slow sinusoids, and the noise is Gaussian per pixel with ``noise_sigma``
    grey levels, drawn fresh each frame.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    w, h = size
    ih, iw = image_bgr.shape[:2]
    base = min(w / iw, h / ih)
    # random walk, low-passed, scaled so its largest excursion is max_shift_px
    walk = np.cumsum(rng.normal(size=(n + 25, 2)), axis=0)
    walk = np.stack([np.convolve(walk[:, k], np.ones(25) / 25, "valid")[:n] for k in (0, 1)], 1)
    walk -= walk.mean(axis=0)
    walk *= max_shift_px / max(1e-9, np.abs(walk).max())
    t = np.arange(n) / fps
    for i in range(n):
        scale = base * (1.0 + zoom * 0.5 * (1 - np.cos(2 * np.pi * t[i] / max(seconds, 1e-3))))
        roll = max_roll_deg * np.sin(2 * np.pi * t[i] / 4.0)
        m = cv2.getRotationMatrix2D((iw / 2, ih / 2), roll, scale)
        m[:, 2] += (w / 2 - iw / 2 + walk[i, 0], h / 2 - ih / 2 + walk[i, 1])
        frame = cv2.warpAffine(image_bgr, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 40, 40))
        noisy = frame.astype(np.float32) + rng.normal(0.0, noise_sigma, frame.shape)
        yield Frame(i, int(round(i * 1000.0 / fps)), np.clip(noisy, 0, 255).astype(np.uint8))


@dataclass
class DemoResult:
    """Paths the demo wrote and what it read."""

    clip: Path
    annotated: Path
    timeline: Path
    plot: Path
    summary: StreamSummary


def run_demo(
    out_dir: str | os.PathLike,
    *,
    model: str | None = None,
    face_model: str | os.PathLike | None = None,
    seconds: float = DEMO_SECONDS,
    on_frame=None,  # noqa: ANN001 - progress callback
) -> DemoResult:
    """Render the astronaut clip, then run the video pipeline on it as `emoblend video` would."""
    from ..face.model_file import resolve_face_model
    from .estimator import EstimatorOptions
    from .pipeline import process_video

    out = Path(out_dir)
    check_output(out, folder=True)
    face_model = resolve_face_model(face_model)  # fail before rendering, not after
    clip = out / "demo_input.mp4"
    fps = DEMO_FPS
    with VideoSink(clip, fps) as sink:
        for frame in render_still_clip(astronaut_bgr(), seconds=seconds, fps=fps):
            sink.write(frame.image)
    annotated, timeline, plot = (
        out / "demo_annotated.mp4", out / "demo_timeline.csv", out / "demo_timeline.png"
    )
    summary = process_video(
        clip,
        EstimatorOptions(classifier=model, face_model=face_model),
        annotated=annotated,
        timeline=timeline,
        plot=plot,
        on_frame=on_frame,
    )
    return DemoResult(clip, annotated, timeline, plot, summary)
