"""The per-face cost of a crop-reading (fused) classifier; prints one JSON object.

    python benchmarks/fused.py --model runs/fused/fused-3.onnx [--clip WolfgangLanger_Pexels.mp4]
                               [--frames 120] [--repeats 5]

Faces are recorded once from a real clip (VIDEO mode); then, per face, batch 1, one thread,
medians over all faces of every repeat:

- ``crop_ms``: :func:`emoblend.features.crop.aligned_crop` from the full-resolution frame;
- ``features_ms``: the blendshape + landmark feature vector (``Classifier.features``);
- ``onnx_ms``: the ONNX graph alone;
- ``total_ms``: crop + features + graph through ``Classifier.predict_proba`` (the goal:
  <= 0.5 ms per face);
- the same path for ``landmark-mlp`` (blendshapes + landmarks, no crop: the
  blendshape-and-landmark path, goal <= 0.05 ms), and the ratio between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from emoblend.classify.classifier import load_classifier
from emoblend.face.landmarker import FaceLandmarker
from emoblend.features.crop import aligned_crop

SHARED = Path(os.environ.get("EMOBLEND_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def record(clip: Path, frames: int) -> list[tuple[np.ndarray, object]]:
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    out = []
    with FaceLandmarker(mode="video") as landmarker:
        for k in range(frames):
            ok, frame = capture.read()
            if not ok:
                break
            faces = landmarker.detect(frame, int(k * 1000 / fps), bgr=True)
            if faces:
                out.append((frame, faces[0]))
    return out


def per_face_ms(faces, fn) -> float:  # noqa: ANN001
    times = []
    for frame, face in faces:
        t = time.perf_counter()
        fn(frame, face)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a fused classifier (.onnx + .json)")
    parser.add_argument("--clip", default=str(SHARED / "media" / "WolfgangLanger_Pexels.mp4"))
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    fused = load_classifier(args.model, threads=1)
    geometry = load_classifier("landmark-mlp", threads=1)
    faces = record(Path(args.clip), args.frames)
    size = fused.info.crop_size

    def one(frame, face):  # noqa: ANN001, ANN202
        return fused.predict_face(face, frame)

    def crop(frame, face):  # noqa: ANN001, ANN202
        return aligned_crop(frame, face.landmarks, size)

    def features(frame, face):  # noqa: ANN001, ANN202
        return fused.features(face.blendshapes, face.landmarks[None], face.matrix[None])

    ready = [(fused.features(f.blendshapes, f.landmarks[None], f.matrix[None]),
              aligned_crop(fr, f.landmarks, size)[None]) for fr, f in faces]

    def graph(_frame, item):  # noqa: ANN001, ANN202
        return fused.predict_features(*item)

    def baseline(frame, face):  # noqa: ANN001, ANN202
        return geometry.predict_face(face)

    rounds: dict[str, list[float]] = {k: [] for k in
                                      ("crop", "features", "onnx", "total", "landmark_mlp_total")}
    for _ in range(args.repeats):  # interleaved, so a busy spell hits every measure alike
        rounds["crop"].append(per_face_ms(faces, crop))
        rounds["features"].append(per_face_ms(faces, features))
        rounds["onnx"].append(per_face_ms([(None, r) for r in ready], graph))
        rounds["total"].append(per_face_ms(faces, one))
        rounds["landmark_mlp_total"].append(per_face_ms(faces, baseline))
    result = {k + "_ms": round(statistics.median(v), 4) for k, v in rounds.items()}
    result.update(
        model=str(args.model), crop_size=size, faces=len(faces), repeats=args.repeats,
        goal_total_ms=0.5, goal_met=result["total_ms"] <= 0.5,
        goal_landmark_mlp_total_ms=0.05,
        landmark_mlp_goal_met=result["landmark_mlp_total_ms"] <= 0.05,
        ratio_to_landmark_mlp=round(result["total_ms"] / result["landmark_mlp_total_ms"], 2),
        load_average=round(os.getloadavg()[0], 2),
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
