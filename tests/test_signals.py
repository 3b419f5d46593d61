"""SIGTERM is handled like Ctrl-C: real commands in real processes, stopped by real signals.

A service manager stops a robot's process with SIGTERM; a person with Ctrl-C. Either way no
temporary file may stay behind, `live` keeps its timeline, the exit status is 143 or 130, and
the process must not crash on its way out (on main, 1 Ctrl-C stop of `live` in 20 ended in a
segmentation fault: MediaPipe's worker thread was still writing a frame's result into memory
the unwinding had freed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emoblend import FaceLandmarker, load_classifier
from emoblend.io.images import read_image
from emoblend.io.signals import Stopped, stop_on_signals
from emoblend.io.timeline import read_timeline, timeline_columns

STOPS_PER_SIGNAL = 50
PARALLEL = 4
"""Processes stopped at once: each start imports MediaPipe (~2 s of CPU), 100 starts in all."""


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "COLUMNS": "200"}  # a crash shows its stack
    return subprocess.Popen(
        [sys.executable, "-m", "emoblend", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _stop_live(clip: Path, folder: Path, sig: int, delay: float, columns: list[str]
               ) -> str | None:
    """Start `live` on ``clip`` as a camera stream, signal it once it reads faces; returns
    what went wrong, or None."""
    folder.mkdir()
    proc = _start("live", "--no-window", "--camera", str(clip), "--timeline", "t.csv",
                  cwd=folder)
    first = proc.stdout.readline()  # the first label line: frames are being processed
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    where = f"{signal.Signals(sig).name} after {delay:.2f} s: "
    if proc.returncode != 128 + sig:
        return f"{where}exit status {proc.returncode}; stderr: {err[-1500:]}"
    if "face #" not in first:
        return f"{where}stopped before reading a face: {first!r}"
    if "Traceback" in err or "Fatal Python error" in err:
        return f"{where}stderr: {err[-1500:]}"
    files = sorted(p.name for p in folder.iterdir())
    if files != ["t.csv"]:
        return f"{where}files left: {files}"
    timeline = read_timeline(folder / "t.csv")
    if list(timeline.columns) != columns or timeline.empty:
        return f"{where}timeline has {len(timeline)} rows, columns {list(timeline.columns)}"
    if timeline.isna().any().any():
        return f"{where}timeline has empty cells (a row cut short)"
    if "timeline written to t.csv" not in out:
        return f"{where}no closing line on stdout: {out[-300:]!r}"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_live_on_a_stream_stops_cleanly_every_time(media: Path, tmp_path: Path, sig: int):
    """50 stops with each signal, each at a different moment after frames started flowing:
    every one exits 130 / 143 with its timeline whole and nothing else left behind."""
    clip = media / "WolfgangLanger_Pexels.mp4"  # 20 s: still playing when the signal comes
    delays = [(i % 10) * 0.05 for i in range(STOPS_PER_SIGNAL)]  # 0 to 0.45 s after a face
    columns = list(timeline_columns(load_classifier().classes))  # the default model's
    with ThreadPoolExecutor(PARALLEL) as pool:
        problems = [p for p in pool.map(
            lambda i: _stop_live(clip, tmp_path / f"run{i}", sig, delays[i], columns),
            range(STOPS_PER_SIGNAL)) if p]
    assert not problems, f"{len(problems)} of {STOPS_PER_SIGNAL} stops went wrong:\n" + "\n".join(
        problems[:5])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_video_stopped_mid_write_leaves_no_file(media: Path, tmp_path: Path, sig: int):
    """`video -o --timeline` stopped while it writes: no output, hidden or not, and 143/130."""
    proc = _start("video", str(media / "WolfgangLanger_Pexels.mp4"), "-o", "out.mp4",
                  "--timeline", "t.csv", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not any(p.suffix == ".mp4" and p.stat().st_size > 0 for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "video wrote no frame in 120 s"
        time.sleep(0.02)
    written = sorted(p.name for p in tmp_path.iterdir())
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("stopped by")
    assert all(name.startswith(".") and ".tmp." in name for name in written), written
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "temporary files left behind"


def _interrupt_after(started: threading.Event, delay: float) -> None:
    started.wait()
    time.sleep(delay)
    os.kill(os.getpid(), signal.SIGINT)


def test_a_stop_waits_for_the_mediapipe_call_in_flight(media: Path, face_model: Path):
    """The crash's cause, seen directly: mediapipe 1.2 runs each call on a worker thread and
    waits for it in a way a signal interrupts. Under stop_on_signals, a real SIGINT sent while
    a frame is in MediaPipe raises only once the call has returned: no MediaPipe frame is on
    the Stopped's traceback (on main, every one of these stops unwound from inside it)."""
    image = read_image(media / "single_face.jpg")
    inside = 0
    with stop_on_signals() as stop, FaceLandmarker(face_model) as landmarker:
        landmarker.detect(image)
        for attempt in range(20):
            started = threading.Event()
            timer = threading.Thread(target=_interrupt_after, args=(started, 0.002 * (attempt % 4)))
            timer.start()
            with pytest.raises(Stopped) as caught:
                started.set()
                landmarker.detect(image)
                time.sleep(5)
            timer.join()
            places = [(f.f_code.co_filename, f.f_code.co_name)
                      for f, _ in traceback.walk_tb(caught.value.__traceback__)]
            assert not [p for p in places if "mediapipe" in p[0] or "concurrent" in p[0]], places
            inside += any(name == "signals_deferred" for _, name in places)
            if inside >= 5:
                break
    assert stop.signum == signal.SIGINT
    assert inside >= 5, "the signal never arrived while MediaPipe ran a frame"
