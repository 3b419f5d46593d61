"""What the ROS outputs add per frame; prints one JSON object.

    python benchmarks/ros.py [--clip ../shared/media/single_face.mp4] [--repeats 5]

The clip runs once through the estimator (the default model); its frames and readings are
kept, then fed repeatedly to each output alone, as ``emoblend video|live`` feeds them:

- ``bag_ms_per_frame``: ``BagWriter.write`` (tracked ids, ROI, expression) into an open bag;
  ``bag_images_ms_per_frame``: the same with ``--bag-images`` (JPEG); ``bag_open_close_ms``:
  once per bag, creating it (types registered from the .msg files) and closing it;
- ``foxglove_ms_per_frame``: ``FoxgloveLive.write_frame`` with its server running and no client
  (annotations and readings logged; no JPEG is encoded while nobody subscribes).

The baseline, measured in the same process on the same frames, is what a user runs without
them: the estimator's own time per frame (MediaPipe + classifier + stabilizer). Figures are
medians over repeats of the per-frame mean; ``*_share`` divides by the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from emoblend import EmotionEstimator, EstimatorOptions
from emoblend.io.video import VideoSource
from emoblend.ros.bag import BagWriter
from emoblend.ros.foxglove_live import FoxgloveLive

SHARED = Path(os.environ.get("EMOBLEND_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def per_frame_ms(run, frames: int, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3 / frames)
    return statistics.median(times)


def bag_ms(folder: Path, frames: list, readings: list, images: bool) -> tuple[float, float]:
    """(ms per frame written, ms to create and close the bag)."""
    t0 = time.perf_counter()
    with BagWriter(folder, images=images) as writer:
        t1 = time.perf_counter()
        for frame, found in zip(frames, readings, strict=True):
            writer.write_frame(frame, found)
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return (t2 - t1) * 1e3 / len(frames), (t1 - t0 + t3 - t2) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED / "media" / "single_face.mp4")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    frames = list(VideoSource(args.clip))
    with EmotionEstimator.create_from_options(EstimatorOptions()) as estimator:
        def estimate() -> list:
            estimator.reset()
            return [estimator.process(f.image, f.timestamp_ms) for f in frames]

        readings = estimate()
        baseline = per_frame_ms(estimate, len(frames), args.repeats)

    work = Path(tempfile.mkdtemp(prefix="emoblend-bench-ros-"))

    def foxglove(live: FoxgloveLive) -> None:
        for frame, found in zip(frames, readings, strict=True):
            live.write_frame(frame, found)

    result = {"clip": args.clip.name, "frames": len(frames), "repeats": args.repeats,
              "load_average": os.getloadavg()[0],
              "baseline_estimator_ms_per_frame": round(baseline, 3)}
    figures = {}
    for name, images in (("bag", False), ("bag_images", True)):
        runs = [bag_ms(work / f"{name}{i}", frames, readings, images) for i in range(args.repeats)]
        figures[name] = statistics.median(ms for ms, _ in runs)
        result[f"{name}_open_close_ms"] = round(statistics.median(ms for _, ms in runs), 1)
        result[f"{name}_bytes_per_frame"] = round(
            (work / f"{name}0" / f"{name}0.mcap").stat().st_size / len(frames))
    with FoxgloveLive(port=0) as live:
        figures["foxglove"] = per_frame_ms(lambda: foxglove(live), len(frames), args.repeats)
    for name, ms in figures.items():
        result[f"{name}_ms_per_frame"] = round(ms, 3)
        result[f"{name}_share"] = round(ms / baseline, 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
