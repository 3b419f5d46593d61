"""Speed of `emoblend serve` on loopback; prints one JSON object.

    python benchmarks/serve.py [--media ../shared/media] [--repeats 3] [--seconds 6]
                               [--streams 1 2 4 8] [--rss-frames 2000] [--out serve.json]

A real server runs in a subprocess on a free loopback port; the clients are WebSocket
connections in this process (asyncio), sending the shared 640x360 clips (single_face.mp4,
WolfgangLanger_Pexels.mp4, looped; JPEG quality 90, encoded beforehand so the clients cost
little CPU). For 1, 2, 4 and 8 concurrent streams, in two modes:

- ``fast``: as fast as the acknowledgements allow (the next frame goes after the reply);
- ``30fps``: each stream sends a frame every 33.3 ms whatever the replies, like a camera; the
  server keeps one waiting frame per stream and drops the rest.

it reports per-stream and total fps (replies per second), round-trip latency p50/p95 of the
frames that were answered, dropped frames, and p95 over the first and second half of the run
(latency that builds up would show as a growing p95). Every figure is the median over
``--repeats`` repeats; each repeat runs every configuration once, interleaved, after the
baseline: the in-process ``EmotionEstimator`` (VIDEO mode) over the same decoded frames, which
is what a user runs instead of a server. Then 8 streams at 30 fps (far more than 2 cores
read: most frames are dropped) run for 100 answered frames (every stream open and warm), and
the server's resident memory is read before and after ``--rss-frames`` more, and once more
after the streams have closed. Bounded latency: this long run's p95 (also per half) against
``long_run_queue_equivalent_s``, the dropped frames divided by the total fps, which is how long
the last frame would have waited had the frames been queued instead of dropped.

Goals: one fast stream >= 0.8x the in-process fps; one 30 fps stream p95 <= 40 ms; two fast
streams total >= 1.6x one; eight streams: the server stays up, latency stays bounded (frames
dropped, not queued), RSS grows < 50 MB over 2,000 frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from emoblend import EmotionEstimator, EstimatorOptions

CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")


def load_frames(media: Path) -> tuple[list[np.ndarray], list[bytes]]:
    images = []
    for name in CLIPS:
        capture = cv2.VideoCapture(str(media / name))
        while (image := capture.read()[1]) is not None:
            images.append(image)
        capture.release()
    encoded = [cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
               for im in images]
    return images, encoded


def in_process_fps(images: list[np.ndarray], frames: int) -> float:
    """The baseline: EmotionEstimator in this process, VIDEO mode, frames decoded beforehand."""
    with EmotionEstimator(EstimatorOptions()) as estimator:
        estimator.process(images[0], 0)
        start = time.perf_counter()
        for i in range(1, frames + 1):
            estimator.process(images[i % len(images)], i * 33)
        return frames / (time.perf_counter() - start)


class ServerProcess:
    def __init__(self, max_streams: int) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emoblend", "serve", "--port", str(self.port),
             "--max-streams", str(max_streams)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url("/healthz"), timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()) from None
                time.sleep(0.2)
        raise RuntimeError("server did not start within 120 s")

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def wait_idle(self, timeout: float = 60) -> None:
        """Until the last run's streams are closed on the server's side too."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = json.loads(urllib.request.urlopen(self.url("/healthz"), timeout=10).read())
            if health["streams"] == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("streams still open on the server after 60 s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Budget:
    """Frames left to answer across all streams; calls ``at_mark`` when ``mark`` are left."""

    def __init__(self, frames: int, mark: int, at_mark) -> None:  # noqa: ANN001
        self.left, self.mark, self.at_mark = frames, mark, at_mark

    def count(self) -> None:
        self.left -= 1
        if self.left == self.mark:
            self.at_mark()


async def one_stream(url: str, frames: list[bytes], offset: int, mode: str, seconds: float,
                     stop_after: Budget | None) -> dict:
    """One client: returns its replies' round trips (with their send times) and drops."""
    from websockets.asyncio.client import connect

    sent: dict[int, float] = {}
    rtts: list[tuple[float, float]] = []  # (sent at, round trip ms)
    dropped = 0
    async with connect(url, max_size=None, compression=None) as ws:
        json.loads(await ws.recv())  # the greeting
        start = time.perf_counter()
        end = start + seconds

        def done() -> bool:
            return time.perf_counter() >= end or (stop_after is not None
                                                  and stop_after.left <= 0)

        if mode == "fast":
            n = 0
            while not done():
                sent[n] = time.perf_counter()
                await ws.send(frames[(offset + n) % len(frames)])
                reply = json.loads(await ws.recv())
                rtts.append((sent[n] - start, (time.perf_counter() - sent[n]) * 1e3))
                dropped = reply.get("dropped", dropped)
                if stop_after is not None:
                    stop_after.count()
                n += 1
        else:
            async def receive() -> None:
                nonlocal dropped
                async for message in ws:
                    reply = json.loads(message)
                    if "frame" in reply and reply["frame"] in sent:
                        t = sent[reply["frame"]]
                        rtts.append((t - start, (time.perf_counter() - t) * 1e3))
                        dropped = reply.get("dropped", dropped)
                        if stop_after is not None:
                            stop_after.count()

            receiver = asyncio.create_task(receive())
            n = 0
            while not done():
                due = start + n / 30.0
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sent[n] = time.perf_counter()
                await ws.send(frames[(offset + n) % len(frames)])
                n += 1
            await asyncio.sleep(0.5)  # the last replies
            receiver.cancel()
    elapsed = min(time.perf_counter() - start, seconds) if mode == "fast" or stop_after \
        else seconds
    return {"replies": len(rtts), "fps": len(rtts) / elapsed, "rtts": rtts, "dropped": dropped,
            "sent": len(sent), "seconds": elapsed}


def run_config(server: ServerProcess, frames: list[bytes], streams: int, mode: str,
               seconds: float, stop_after: Budget | None = None) -> dict:
    server.wait_idle()
    url = server.url("/v1/stream", "ws")
    offsets = [i * len(frames) // streams for i in range(streams)]

    async def all_streams() -> list[dict]:
        return await asyncio.gather(*(one_stream(url, frames, o, mode, seconds, stop_after)
                                      for o in offsets))

    results = asyncio.run(all_streams())
    rtts = [r for res in results for r in res["rtts"]]
    half = seconds / 2 if stop_after is None else max(t for t, _ in rtts) / 2
    first = [ms for t, ms in rtts if t < half]
    second = [ms for t, ms in rtts if t >= half]

    def p(values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)), 1) if values else None

    return {
        "streams": streams, "mode": mode,
        "per_stream_fps": round(statistics.median(r["fps"] for r in results), 1),
        "total_fps": round(sum(r["fps"] for r in results), 1),
        "rtt_p50_ms": p([ms for _, ms in rtts], 50), "rtt_p95_ms": p([ms for _, ms in rtts], 95),
        "rtt_p95_first_half_ms": p(first, 95), "rtt_p95_second_half_ms": p(second, 95),
        "sent": sum(r["sent"] for r in results), "replies": len(rtts),
        "dropped": sum(r["dropped"] for r in results),
        "seconds": round(max(r["seconds"] for r in results), 1),
        "server_alive": server.alive(),
    }


def median_of(runs: list[dict]) -> dict:
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            values = [r[key] for r in runs if r[key] is not None]
            out[key] = round(statistics.median(values), 1) if values else None
    out["server_alive"] = all(r["server_alive"] for r in runs)
    out["repeats"] = len(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path,
                        default=Path(os.environ.get("EMOBLEND_SHARED", "../shared")) / "media")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rss-frames", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    load_at_start = [round(v, 2) for v in os.getloadavg()]
    images, frames = load_frames(args.media)
    server = ServerProcess(max_streams=max(args.streams))
    try:
        run_config(server, frames, 1, "fast", 2.0)  # warm-up: lazy imports, first graph
        baselines, runs = [], {}
        for _ in range(args.repeats):
            baselines.append(in_process_fps(images, frames=int(args.seconds * 60)))
            for streams in args.streams:
                for mode in ("fast", "30fps"):
                    runs.setdefault((streams, mode), []).append(
                        run_config(server, frames, streams, mode, args.seconds))
        table = [median_of(r) for r in runs.values()]
        # RSS before: all streams open and past their first frames; after: rss_frames later
        rss = {"idle": server.rss_mb()}
        budget = Budget(args.rss_frames + 100, args.rss_frames,
                        lambda: rss.__setitem__("before", server.rss_mb()))
        rss_run = run_config(server, frames, max(args.streams), "30fps", 900.0, budget)
        rss["after"] = server.rss_mb()
        server.wait_idle()
        rss["closed"] = server.rss_mb()
    finally:
        alive_at_end = server.alive()
        server.stop()

    baseline = statistics.median(baselines)
    row = {(r["streams"], r["mode"]): r for r in table}
    one_fast, one_cam = row.get((1, "fast")), row.get((1, "30fps"))
    two_fast, eight_cam = row.get((2, "fast")), row.get((8, "30fps"))
    eight_fast = row.get((8, "fast"))
    goals = {
        "one_stream_vs_in_process": {
            "ratio": round(one_fast["total_fps"] / baseline, 2), "goal": ">= 0.8"}
        if one_fast else None,
        "one_30fps_stream_p95_ms": {"value": one_cam["rtt_p95_ms"], "goal": "<= 40"}
        if one_cam else None,
        "two_streams_vs_one": {
            "ratio": round(two_fast["total_fps"] / one_fast["total_fps"], 2), "goal": ">= 1.6"}
        if two_fast and one_fast else None,
        "eight_streams": {
            "server_alive": alive_at_end and all(r["server_alive"] for r in table),
            "rtt_p95_ms_30fps": eight_cam["rtt_p95_ms"] if eight_cam else None,
            "rtt_p95_ms_fast": eight_fast["rtt_p95_ms"] if eight_fast else None,
            "long_run_p95_first_half_ms": rss_run["rtt_p95_first_half_ms"],
            "long_run_p95_second_half_ms": rss_run["rtt_p95_second_half_ms"],
            "long_run_p95_growth": round(rss_run["rtt_p95_second_half_ms"]
                                         / rss_run["rtt_p95_first_half_ms"], 2),
            "long_run_queue_equivalent_s": round(rss_run["dropped"] / rss_run["total_fps"], 1),
            "rss_growth_mb": round(rss["after"] - rss["before"], 1),
            "goal": "alive, p95 far below the queue-equivalent latency (what the dropped frames "
                    "would have waited in a queue), rss growth < 50 MB",
        },
    }
    result = {
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": load_at_start,
                    "load_avg_at_end": [round(v, 2) for v in os.getloadavg()],
                    "python": platform.python_version()},
        "frames": {"clips": list(CLIPS), "count": len(frames), "size": "640x360",
                   "jpeg_quality": 90,
                   "mean_bytes": int(statistics.mean(len(f) for f in frames))},
        "repeats": args.repeats, "seconds_per_run": args.seconds,
        "in_process_fps": round(baseline, 1),
        "in_process_fps_repeats": [round(b, 1) for b in baselines],
        "table": table,
        "rss": {"streams": max(args.streams), "frames_between": args.rss_frames,
                "frames_total": rss_run["replies"],
                "server_idle_mb": round(rss["idle"], 1),
                "before_mb": round(rss["before"], 1), "after_mb": round(rss["after"], 1),
                "after_streams_closed_mb": round(rss["closed"], 1),
                "rtt_p95_ms": rss_run["rtt_p95_ms"], "sent": rss_run["sent"],
                "dropped": rss_run["dropped"], "seconds": rss_run["seconds"]},
        "goals": goals,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
