"""`emoblend batch` throughput on the local pool and on Ray, and workers' memory; prints JSON.

    python benchmarks/batch.py [--videos 20] [--frames 120] [--photos 2000] [--repeats 3]
                               [--rss-minutes 1 10] [--skip-ray] [--work DIR]

The corpus (made once under --work, default a temporary folder): VIDEOS clips copied from the
shared media and cut to FRAMES frames each (the clips in turn), and the first PHOTOS FER2013
images written as PNG files. Figures, medians over the repeats (runs interleaved so the
machine's other load hits them alike):

- ``baseline``: what a user would run instead: ``emoblend video``'s loop
  (``realtime.pipeline.process_video``) over the videos one after another and the IMAGE-mode
  estimator over the photos, in this process;
- ``local_1`` / ``local_2`` / ``ray_1`` / ``ray_2``: ``run_batch`` with that engine and worker
  count, videos and photos as separate runs: video frames/s and photos/s, wall time from the
  call to its return (worker start-up included, Ray's own start-up excluded: Ray is started
  once beforehand and its start-up reported as ``ray_start_s``);
- ratios: 2 workers / 1 worker per engine (goal >= 1.8), Ray / local at the same worker count
  (goal >= 0.9), 1 local worker / the baseline;
- ``peak_rss_mb``: the worker's peak RSS (VmHWM, polled; ``--landmarks``, local engine, 1
  worker, every frame) for videos of each ``--rss-minutes`` length (the shared clip looped):
  bounded memory means the figures differ by well under 100 MB.
- ``load_average``: the 1-minute load at the start and the end; this machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOBLEND_SHARED", REPO.parent / "shared"))
CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov",
         "no_face.mp4")


def _frames(src: Path):  # noqa: ANN202
    capture = cv2.VideoCapture(str(src))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    return frames, fps


def _write(dest: Path, frames: list, fps: float) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()


def make_corpus(work: Path, videos: int, frames: int, photos: int, fer2013: Path) -> dict:
    """The videos and photos folders (reused when already made with the same sizes)."""
    stamp = work / "corpus.json"
    spec = {"videos": videos, "frames": frames, "photos": photos}
    if stamp.is_file() and json.loads(stamp.read_text()) == spec:
        return spec
    shutil.rmtree(work / "videos", ignore_errors=True)
    shutil.rmtree(work / "photos", ignore_errors=True)
    (work / "videos").mkdir(parents=True)
    (work / "photos").mkdir(parents=True)
    clips = [_frames(SHARED / "media" / name) for name in CLIPS]
    for k in range(videos):
        clip, fps = clips[k % len(clips)]
        looped = (clip + clip[::-1]) * (frames // (2 * len(clip)) + 1)
        _write(work / "videos" / f"v{k:02d}.mp4", looped[:frames], fps)
    from emoblend.data.fer2013 import load_fer2013

    for k, image in enumerate(load_fer2013(fer2013).pixels[:photos]):
        cv2.imwrite(str(work / "photos" / f"fer{k:05d}.png"), image)
    stamp.write_text(json.dumps(spec))
    return spec


def baseline(work: Path) -> dict:
    """What a user runs instead: the video command's loop per file, then the photos."""
    from emoblend.io.images import read_image
    from emoblend.realtime.estimator import EmotionEstimator, EstimatorOptions
    from emoblend.realtime.pipeline import process_video

    start, frames = time.perf_counter(), 0
    for video in sorted((work / "videos").glob("*.mp4")):
        frames += process_video(video, EstimatorOptions()).frames
    video_s = time.perf_counter() - start
    photos = sorted((work / "photos").glob("*.png"))
    with EmotionEstimator(EstimatorOptions(running_mode="image", color="rgb")) as estimator:
        start = time.perf_counter()
        for photo in photos:
            estimator.process(read_image(photo))
        photo_s = time.perf_counter() - start
    return {"frames_per_s": frames / video_s, "photos_per_s": len(photos) / photo_s}


def engine_run(work: Path, engine: str, workers: int) -> dict:
    """One run over the videos and one over the photos, into fresh output folders."""
    from emoblend.batch import run_batch

    rates = {}
    for kind, unit in (("videos", "frames_per_s"), ("photos", "photos_per_s")):
        out = work / "out" / f"{engine}{workers}-{kind}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        result = run_batch([str(work / kind)], out, engine=engine, workers=workers,
                           progress=False)
        seconds = time.perf_counter() - start
        assert not result.failed, result.failed[:3]
        rates[unit] = result.frames / seconds
    return rates


def peak_rss_mb(work: Path, minutes: float) -> dict:
    """Peak RSS of the one worker reading a ``minutes``-long video with --landmarks."""
    video = work / f"long-{minutes:g}min.mp4"
    clip, fps = _frames(SHARED / "media" / "WolfgangLanger_Pexels.mp4")
    n = int(round(minutes * 60 * fps))
    if not video.is_file():
        looped = (clip + clip[::-1]) * (n // (2 * len(clip)) + 1)
        _write(video, looped[:n], fps)
    out = work / "out" / f"rss-{minutes:g}"
    shutil.rmtree(out, ignore_errors=True)
    # A fresh driver; its worker's high-water mark (VmHWM, /proc) is polled while it runs:
    # getrusage's ru_maxrss would count what the worker inherited at fork and across exec.
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from emoblend.batch import BatchSettings, run_batch\n"
        "r = run_batch([sys.argv[1]], Path(sys.argv[2]), BatchSettings(landmarks=True),\n"
        "              workers=1, progress=False)\n"
        "print(json.dumps({'frames': r.frames, 'rows': sum(x.faces for x in r.records)}))\n"
    )
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(video), str(out)],
                            stdout=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for pid in [proc.pid, *_children(proc.pid)]:
            peaks[pid] = max(peaks.get(pid, 0), _vm_hwm_kb(pid))
        time.sleep(0.5)
    assert proc.returncode == 0
    result = json.loads(proc.stdout.read().splitlines()[-1])
    workers = [kb for pid, kb in peaks.items() if pid != proc.pid]
    result["worker_peak_rss_mb"] = round(max(workers) / 1024, 1)
    result["driver_peak_rss_mb"] = round(peaks[proc.pid] / 1024, 1)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["parquet_mb"] = round(sum(p.stat().st_size for p in (out / "parts").glob("*"))
                                 / 2**20, 1)
    return result


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _vm_hwm_kb(pid: int) -> int:
    """A process's peak resident memory so far (0 once it has gone)."""
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss-minutes", type=float, nargs="*", default=[1, 10])
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--fer2013", type=Path, default=SHARED / "data/fer2013.csv.gz")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("EMOBLEND_FACE_MODEL", str(SHARED / "models/face_landmarker.task"))

    load_start = os.getloadavg()[0]
    work = args.work or Path(tempfile.mkdtemp(prefix="emoblend-batch-bench-"))
    corpus = make_corpus(work, args.videos, args.frames, args.photos, args.fer2013)
    report: dict = {"corpus": corpus, "repeats": args.repeats, "cpu_count": os.cpu_count()}

    configs = [("local", 1), ("local", 2)] + ([] if args.skip_ray else [("ray", 1), ("ray", 2)])
    if not args.skip_ray:
        from emoblend.batch.ray import start_ray

        _, report["ray_start_s"] = start_ray(None, 2)
    runs: dict[str, list[dict]] = {"baseline": []} | {f"{e}_{w}": [] for e, w in configs}
    for _ in range(args.repeats):
        runs["baseline"].append(baseline(work))
        for engine, workers in configs:
            runs[f"{engine}_{workers}"].append(engine_run(work, engine, workers))
    figures = {name: {key: round(_median(rs, key), 1) for key in ("frames_per_s", "photos_per_s")}
               for name, rs in runs.items()}
    report["figures"] = figures
    report["runs"] = runs
    ratios = {}
    for key in ("frames_per_s", "photos_per_s"):
        for engine in ("local", "ray"):
            if f"{engine}_2" in figures:
                ratios[f"{engine}_2_over_1_{key}"] = round(
                    figures[f"{engine}_2"][key] / figures[f"{engine}_1"][key], 3)
        for workers in (1, 2):
            if f"ray_{workers}" in figures:
                ratios[f"ray_over_local_{workers}_{key}"] = round(
                    figures[f"ray_{workers}"][key] / figures[f"local_{workers}"][key], 3)
        ratios[f"local_1_over_baseline_{key}"] = round(
            figures["local_1"][key] / figures["baseline"][key], 3)
    report["ratios"] = ratios
    if not args.skip_ray:
        import ray

        ray.shutdown()
    report["peak_rss_mb"] = {f"{m:g}_min": peak_rss_mb(work, m) for m in args.rss_minutes}
    report["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
    print(json.dumps(report, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
