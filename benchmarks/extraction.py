"""Blendshape extraction throughput on FER2013; prints one JSON object.

    python benchmarks/extraction.py [--fer2013 ../shared/data/fer2013.csv.gz] [--images 2000]
                                    [--repeats 3] [--workers N]

On the same sample (the first IMAGES rows of the CSV, as they are, 48×48):

- ``mediapipe_ms_per_image``: MediaPipe's own FaceLandmarker (IMAGE mode, in this process,
  no emoblend code in the loop) -- the baseline every other figure is held against;
- ``images_per_s_1_worker`` and ``images_per_s_all_workers``: the build's extraction
  (``emoblend.data.build.extract_parallel``: worker processes, chunks of 256, worker
  start-up included) with 1 worker and with all cores;
- ``ratio``: all workers / 1 worker (goal >= 1.8 on 2 cores);
- ``overhead_1_worker``: (1-worker time per image) / (MediaPipe alone per image): what the
  process machinery costs;
- ``cores_obtained_all_workers``: the workers' CPU seconds per wall second. On a machine
  shared with other jobs it shows how much of the ratio's shortfall is the machine's.

Runs are interleaved (baseline, 1 worker, all workers in every repeat) so that load from
other processes hits them alike; figures are medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.python import vision

from emoblend.data.build import BuildConfig, default_workers, extract_parallel
from emoblend.data.fer2013 import load_fer2013
from emoblend.face.model_file import resolve_face_model

REPO = Path(__file__).resolve().parents[1]
CHUNK = BuildConfig.chunk_size  # what a build uses


def mediapipe_alone(images: np.ndarray, model_path: Path) -> float:
    """Seconds for MediaPipe to run over ``images`` (graph creation excluded)."""
    options = vision.FaceLandmarkerOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=str(model_path)),
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    rgb = [np.ascontiguousarray(np.repeat(im[:, :, None], 3, axis=2)) for im in images]
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        start = time.perf_counter()
        for frame in rgb:
            landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=frame))
        return time.perf_counter() - start


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parallel(images: np.ndarray, model_path: Path, workers: int) -> tuple[float, float, int]:
    """Wall seconds and workers' CPU seconds for the build's extraction over ``images``, and
    how many images had a face. (Workers' CPU is counted once the pool has joined them.)"""
    chunks = [images[i : i + CHUNK] for i in range(0, len(images), CHUNK)]
    cpu0, start = _children_cpu(), time.perf_counter()
    found = 0
    for _, _, detected in extract_parallel(
        chunks, [["none"] * len(c) for c in chunks], model_path, landmarks=False, workers=workers
    ):
        found += int(detected.sum())
    return time.perf_counter() - start, _children_cpu() - cpu0, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fer2013", type=Path, default=REPO.parent / "shared/data/fer2013.csv.gz")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()

    model_path = resolve_face_model()
    images = load_fer2013(args.fer2013).pixels[: args.images]
    alone, one, many, cores = [], [], [], []
    found = set()
    for _ in range(args.repeats):
        alone.append(mediapipe_alone(images, model_path))
        seconds, _, n = parallel(images, model_path, 1)
        one.append(seconds)
        found.add(n)
        seconds, cpu, n = parallel(images, model_path, args.workers)
        many.append(seconds)
        cores.append(cpu / seconds)
        found.add(n)
    n = len(images)
    alone_s, one_s, many_s = map(statistics.median, (alone, one, many))
    print(
        json.dumps(
            {
                "images": n,
                "repeats": args.repeats,
                "cpu_count": os.cpu_count(),
                "workers": args.workers,
                "mediapipe_ms_per_image": round(1000 * alone_s / n, 3),
                "images_per_s_1_worker": round(n / one_s, 1),
                "images_per_s_all_workers": round(n / many_s, 1),
                "ratio": round(one_s / many_s, 3),
                "overhead_1_worker": round(one_s / alone_s, 3),
                # CPU the workers got per second of wall time: below the worker count, other
                # processes held the cores, and the ratio above cannot reach the worker count.
                "cores_obtained_all_workers": round(statistics.median(cores), 2),
                "faces_found": sorted(found),  # one value: every run saw the same faces
                "seconds": {
                    "mediapipe": [round(s, 2) for s in alone],
                    "1_worker": [round(s, 2) for s in one],
                    "all_workers": [round(s, 2) for s in many],
                },
                "load_average": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
