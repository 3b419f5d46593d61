"""Real-time figures of the online path; prints one JSON object.

    python benchmarks/realtime.py [--media ../shared/media] [--repeats 5] [--seconds 30]
                                  [--skip-speed | --speed-only]

What it measures, on WolfgangLanger_Pexels.mp4 and single_face.mp4:

- speed, against bare MediaPipe as a user writes it (``cv2.cvtColor(frame,
  cv2.COLOR_BGR2RGB)``, ``mp.Image``, ``FaceLandmarker.detect_for_video`` with the options
  emoblend runs it with: VIDEO mode, num_faces 1, blendshapes and transformation matrixes on,
  landmarks always): frames per second of four passes, alternated in each round so that
  machine load hits them alike:
    bare:             that user code over frames decoded beforehand;
    estimator:        EmotionEstimator.process over the same frames;
    decode+bare:      reading the file and running the user code;
    decode+estimator: reading the file and running EmotionEstimator (`emoblend video` minus
                      the writers): the end-to-end throughput.
  ``ratio`` is the median over rounds of estimator fps / bare fps (goal >= 0.9): what
  emoblend costs on top of MediaPipe. ``ratio_with_decode`` is the same with file decoding in
  both. Milliseconds per frame per stage (medians over all frames of all rounds): decode,
  bare (the user code's frame), and the estimator's own stages: mediapipe (the same calls
  inside emoblend), wrapper (emoblend's conversions around them: colour, result objects to
  arrays), classifier, stabilizer (tracking included). ``ratio_from_stage_medians`` is
  mediapipe / (mediapipe + wrapper + classifier + stabilizer): the same question, far less
  sensitive to a busy machine.
- flicker: label switches per minute of the per-frame (raw) label and of the stable label,
  for every bundled classifier, on (a) still photos rendered as SECONDS-long clips with a
  small random drift, zoom, roll and sensor noise (emoblend.realtime.demo.render_still_clip) -- the
  astronaut photo scikit-image ships, and a neutral frame of single_face.mp4 -- where the goal
  is 0 stable switches; and (b) the real clips. The stabilizer's warm-up ("unknown" before a
  face's first label) is not counted as a switch.
- latency: on single_face.mp4, the time from smile onset to the first happy label (raw and
  stable). Onset is measured from MediaPipe's own blendshapes, not from the classifier: the
  first frame where the mean of mouthSmileLeft and mouthSmileRight rises 10 % of the way
  from its neutral level (median of the first 10 frames) to its smiling level (median of the
  last 20 frames). Goal: stable label within 0.5 s.

The landmarker pass is recorded once per clip and replayed through each classifier
(EmotionEstimator.process_faces), so flicker and latency compare classifiers on identical
landmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.python import vision

from emoblend import (
    BLENDSHAPE_NAMES,
    EmotionEstimator,
    EstimatorOptions,
    FaceLandmarker,
    StabilizerOptions,
)
from emoblend.classify.classifier import DEFAULT_MODEL, available_models, load_classifier
from emoblend.face.model_file import resolve_face_model
from emoblend.io.timeline import timeline_row
from emoblend.io.video import VideoSource
from emoblend.realtime.demo import astronaut_bgr, render_still_clip
from emoblend.realtime.pipeline import StreamSummary

CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")
SMILE = [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]
ONSET_LEVEL = 0.1
ESTIMATOR_STAGES = ("mediapipe", "wrapper", "classifier", "stabilizer")
MIN_TIMED_FRAMES = 400
"""Short clips are looped to at least this many frames per timed pass."""


def decode(path: Path) -> tuple[list, list[int], list[float]]:
    """All frames of a clip, their timestamps, and the ms each read took."""
    images, stamps, ms = [], [], []
    source = VideoSource(path)
    it = iter(source)
    while True:
        t0 = time.perf_counter()
        frame = next(it, None)
        if frame is None:
            break
        ms.append((time.perf_counter() - t0) * 1e3)
        images.append(frame.image)
        stamps.append(frame.timestamp_ms)
    return images, stamps, ms


def bare_landmarker(model_path: str) -> vision.FaceLandmarker:
    """MediaPipe's FaceLandmarker with the options EmotionEstimator runs it with."""
    options = vision.FaceLandmarkerOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=model_path),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=1,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    return vision.FaceLandmarker.create_from_options(options)


def bare_step(landmarker: vision.FaceLandmarker, frame, timestamp_ms: int):  # noqa: ANN001
    """One frame as a user writes it: OpenCV's BGR frame to RGB, into MediaPipe."""
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
    return landmarker.detect_for_video(image, timestamp_ms)


def bare_pass(frames, stamps, model_path: str) -> tuple[float, list[float]]:  # noqa: ANN001
    """Seconds for the user's MediaPipe code over in-memory frames (creation not timed),
    and its ms per frame."""
    ms = []
    with bare_landmarker(model_path) as lm:
        t0 = time.perf_counter()
        for image, t in zip(frames, stamps, strict=True):
            t1 = time.perf_counter()
            bare_step(lm, image, t)
            ms.append((time.perf_counter() - t1) * 1e3)
        return time.perf_counter() - t0, ms


def estimator_pass(frames, stamps, classifier) -> tuple[float, dict[str, list[float]]]:
    """Seconds for EmotionEstimator over in-memory frames, and its per-frame stage times."""
    stages: dict[str, list[float]] = {k: [] for k in ESTIMATOR_STAGES}
    with EmotionEstimator(EstimatorOptions(classifier=classifier)) as estimator:
        t0 = time.perf_counter()
        for image, t in zip(frames, stamps, strict=True):
            estimator.process(image, t)
            for k, v in estimator.last_timings.items():
                stages[k].append(v)
        return time.perf_counter() - t0, stages


def file_pass(path: Path, loops: int, model_path: str, classifier=None  # noqa: ANN001
              ) -> tuple[float, int]:
    """Seconds to decode the file ``loops`` times, running the user's MediaPipe code
    (classifier None) or the estimator; the loops continue one stream (timestamps keep
    increasing)."""
    if classifier is None:
        runner = bare_landmarker(model_path)
        step = lambda image, t: bare_step(runner, image, t)  # noqa: E731
    else:
        runner = EmotionEstimator(EstimatorOptions(classifier=classifier))
        step = runner.process
    with runner:
        n, offset = 0, 0
        t0 = time.perf_counter()
        for _ in range(loops):
            for frame in VideoSource(path):
                step(frame.image, offset + frame.timestamp_ms)
                n += 1
            offset += frame.timestamp_ms + 1000
        return time.perf_counter() - t0, n


def looped(frames: list, stamps: list[int], loops: int) -> tuple[list, list[int]]:
    """The clip played ``loops`` times as one stream, so short clips time long enough."""
    period = stamps[-1] + 1000
    return frames * loops, [k * period + t for k in range(loops) for t in stamps]


def speed(path: Path, repeats: int, classifier) -> dict:  # noqa: ANN001
    model_path = str(resolve_face_model(None))
    clip_frames, clip_stamps, decode_ms = decode(path)
    loops = max(1, -(-MIN_TIMED_FRAMES // len(clip_frames)))
    frames, stamps = looped(clip_frames, clip_stamps, loops)
    n = len(frames)
    runs: dict[str, list[float]] = {k: [] for k in (
        "bare", "estimator", "decode+bare", "decode+estimator")}
    stage_ms: dict[str, list[float]] = {"decode": list(decode_ms), "bare": [],
                                        **{k: [] for k in ESTIMATOR_STAGES}}
    ratios, ratios_decode = [], []
    for r in range(repeats):
        # alternate the order so a drift in machine load does not favour one pass
        order = ["bare", "estimator"] if r % 2 == 0 else ["estimator", "bare"]
        for name in order:
            if name == "bare":
                seconds, ms = bare_pass(frames, stamps, model_path)
                stage_ms["bare"].extend(ms)
            else:
                seconds, stages = estimator_pass(frames, stamps, classifier)
                for k, v in stages.items():
                    stage_ms[k].extend(v)
            runs[name].append(n / seconds)
        ratios.append(runs["estimator"][-1] / runs["bare"][-1])
        for name in (order[::-1] if r % 2 else order):
            seconds, count = file_pass(path, loops, model_path,
                                       None if name == "bare" else classifier)
            runs[f"decode+{name}"].append(count / seconds)
        ratios_decode.append(runs["decode+estimator"][-1] / runs["decode+bare"][-1])
        _, _, more_decode = decode(path)
        stage_ms["decode"].extend(more_decode)
    med = {k: statistics.median(v) for k, v in stage_ms.items()}
    return {
        "frames": len(clip_frames),
        "timed_frames_per_pass": n,
        "ms_per_frame": {k: round(v, 3) for k, v in med.items()},
        "fps": {k: round(statistics.median(v), 1) for k, v in runs.items()},
        "fps_runs": {k: [round(x, 1) for x in v] for k, v in runs.items()},
        "end_to_end_fps": round(statistics.median(runs["decode+estimator"]), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_runs": [round(x, 3) for x in ratios],
        "ratio_with_decode": round(statistics.median(ratios_decode), 3),
        # robust to machine load: what our stages add to MediaPipe's, per frame
        "ratio_from_stage_medians": round(
            med["mediapipe"] / sum(med[k] for k in ESTIMATOR_STAGES), 3
        ),
    }


def record(frames, stamps) -> list[list]:  # noqa: ANN001
    """One VIDEO-mode landmarker pass: the faces of every frame."""
    with FaceLandmarker(mode="video") as lm:
        return [lm.detect(image, t, bgr=True) for image, t in zip(frames, stamps, strict=True)]


def replay(faces, stamps, classifier, fps: float,  # noqa: ANN001
           stabilizer: StabilizerOptions | None = None, frames=None) -> StreamSummary:  # noqa: ANN001
    """Run recorded faces through a classifier, the tracker and the stabilizers (with the
    frames they were found in, which a crop-reading classifier needs)."""
    options = EstimatorOptions(classifier=classifier, stabilizer=stabilizer or StabilizerOptions())
    with EmotionEstimator(options) as estimator:
        summary = StreamSummary(warmup_ms=estimator.options.stabilizer.warmup_ms)
        for i, (frame_faces, t) in enumerate(zip(faces, stamps, strict=True)):
            frame = None if frames is None else frames[i]
            for reading in estimator.process_faces(frame_faces, t, frame=frame):
                summary.rows.append(timeline_row(i, reading))
    summary.frames = len(stamps)
    summary.duration_ms = len(stamps) * 1000.0 / fps
    return summary


def classifier_ms(faces, classifier, frames) -> float:  # noqa: ANN001
    """Median ms of one classifier call (crop included) per frame with a face."""
    times = []
    for frame_faces, frame in zip(faces, frames, strict=True):
        if frame_faces:
            f = frame_faces[0]
            t0 = time.perf_counter()
            classifier.predict_face(f, frame)
            times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3) if times else 0.0


def flicker(summary: StreamSummary) -> dict:
    return {
        "raw_switches_per_min": round(summary.switches_per_minute("label"), 2),
        "stable_switches_per_min": round(summary.switches_per_minute("stable_label"), 2),
        "raw_switches": summary.switches("label"),
        "stable_switches": summary.switches("stable_label"),
        "face_ids": len(summary.face_ids),
        "stable_label_shares": {k: round(v, 3) for k, v in summary.label_shares().items()},
    }


def smile_onset_ms(faces, stamps) -> tuple[float, dict]:  # noqa: ANN001
    smile = np.array([f[0].blendshapes[SMILE].mean() if f else np.nan for f in faces])
    neutral, smiling = np.nanmedian(smile[:10]), np.nanmedian(smile[-20:])
    level = neutral + ONSET_LEVEL * (smiling - neutral)
    onset = int(np.argmax(smile >= level))
    return float(stamps[onset]), {
        "rule": "first frame where mean(mouthSmileLeft, mouthSmileRight) rises 10% of the way "
                "from its neutral median (first 10 frames) to its smiling median (last 20)",
        "neutral_level": round(float(neutral), 3), "smiling_level": round(float(smiling), 3),
        "threshold": round(float(level), 3), "onset_frame": onset,
        "onset_ms": float(stamps[onset]),
    }


def first_time(summary: StreamSummary, column: str, after_ms: float) -> float | None:
    times = [r["time_ms"] for r in summary.rows
             if r[column] == "happy" and r["time_ms"] >= after_ms]
    return float(times[0]) if times else None


def sweep(recorded: dict, classifier) -> list[dict]:  # noqa: ANN001
    """Stable flicker and smile latency for a grid of stabilizer settings (default model).

    The same recorded landmarks for every setting, so the trade-off between steadiness and
    reaction time is read directly; the still clip shows whether a setting stays at 0.
    """
    faces, stamps, fps, frames = recorded["single_face.mp4"]
    onset, _ = smile_onset_ms(faces, stamps)
    rows = []
    for tau in (0.0, 100.0, 200.0, 400.0):
        for dwell in (0.0, 300.0, 1000.0):
            for margin in (0.0, 0.1, 0.2):
                opts = StabilizerOptions(tau_ms=tau, min_dwell_ms=dwell, margin=margin)
                row = {"tau_ms": tau, "min_dwell_ms": dwell, "margin": margin}
                for name, (f, s, clip_fps, images) in recorded.items():
                    summary = replay(f, s, classifier, clip_fps, opts, images)
                    row[f"{name}: stable_switches_per_min"] = round(
                        summary.switches_per_minute("stable_label"), 2)
                    if name == "single_face.mp4":
                        happy = first_time(summary, "stable_label", onset)
                        row["smile_latency_s"] = (
                            None if happy is None else round((happy - onset) / 1e3, 3))
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "media")
    parser.add_argument("--repeats", type=int, default=5, help="alternating speed rounds")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="length of the still-photo clips")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--skip-speed", action="store_true",
                      help="measure flicker and latency only (no timed passes)")
    only.add_argument("--speed-only", action="store_true",
                      help="measure speed only (no flicker, latency or stabilizer sweep)")
    args = parser.parse_args()
    models = available_models()
    classifiers = {name: load_classifier(name) for name in models}
    default = classifiers[DEFAULT_MODEL]
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
                    "python": platform.python_version()},
        "default_model": DEFAULT_MODEL,
        "models": {n: c.info.raw.get("version") for n, c in classifiers.items()},
        "repeats": args.repeats,
        "speed": {},
        "flicker_still": {},
        "flicker_clips": {},
    }
    if not args.skip_speed:
        for clip in CLIPS:
            result["speed"][clip] = speed(args.media / clip, args.repeats, default)
    if args.speed_only:
        print(json.dumps(result, indent=1))
        return
    recorded = {}

    # (a) still photos as handheld clips
    sf_frames, sf_stamps, _ = decode(args.media / "single_face.mp4")
    stills = {"astronaut (skimage)": astronaut_bgr(), "single_face.mp4 frame 5 (neutral)":
              sf_frames[5]}
    fps = 30.0
    for name, photo in stills.items():
        frames = [f.image for f in render_still_clip(photo, seconds=args.seconds, fps=fps,
                                                     size=(640, 480), seed=0)]
        stamps = [int(round(i * 1000 / fps)) for i in range(len(frames))]
        faces = record(frames, stamps)
        recorded[name] = (faces, stamps, fps, frames)
        result["flicker_still"][name] = {
            model: flicker(replay(faces, stamps, c, fps, frames=frames))
            for model, c in classifiers.items()
        }
        result["flicker_still"][name]["frames_with_face"] = sum(bool(f) for f in faces)

    # (b) the real clips, and the smile latency
    for clip in CLIPS:
        frames, stamps, _ = decode(args.media / clip)
        clip_fps = VideoSource(args.media / clip).fps
        faces = record(frames, stamps)
        recorded[clip] = (faces, stamps, clip_fps, frames)
        entry = {model: {**flicker(replay(faces, stamps, c, clip_fps, frames=frames)),
                         "classifier_ms": classifier_ms(faces, c, frames)}
                 for model, c in classifiers.items()}
        result["flicker_clips"][clip] = entry
        if clip == "single_face.mp4":
            onset, rule = smile_onset_ms(faces, stamps)
            latency = {"onset": rule}
            for model, c in classifiers.items():
                summary = replay(faces, stamps, c, clip_fps, frames=frames)
                raw, stable = (first_time(summary, col, onset) for col in ("label", "stable_label"))
                latency[model] = {
                    "raw_happy_after_s": None if raw is None else round((raw - onset) / 1e3, 3),
                    "stable_happy_after_s":
                        None if stable is None else round((stable - onset) / 1e3, 3),
                }
            result["smile_latency"] = latency
    result["stabilizer_sweep"] = sweep(recorded, default)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
