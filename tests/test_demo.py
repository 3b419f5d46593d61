"""``emoblend demo``: the README's main job, with no camera and no download but the face model."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
from conftest import run_cli

from emoblend.realtime.demo import DEMO_FPS, DEMO_SECONDS, astronaut_bgr, render_still_clip


def test_demo_runs_the_whole_pipeline(tmp_path, face_model):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", out)
    assert proc.returncode == 0, proc.stderr
    frames = round(DEMO_SECONDS * DEMO_FPS)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["demo_annotated.mp4", "demo_input.mp4", "demo_timeline.csv",
                     "demo_timeline.png"]
    for clip in ("demo_input.mp4", "demo_annotated.mp4"):
        capture = cv2.VideoCapture(str(out / clip))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        capture.release()
    timeline = pd.read_csv(out / "demo_timeline.csv")
    # the astronaut is found in every frame, keeps one id, and her smile is read happy
    assert timeline["frame"].tolist() == list(range(frames))
    assert set(timeline["face_id"]) == {0}
    settled = timeline[timeline["time_ms"] >= 500]
    assert (settled["stable_label"] == "happy").all()
    assert f"{frames} frames" in proc.stdout and "happy" in proc.stdout


def test_demo_clip_moves_and_is_noisy_but_keeps_the_photo():
    photo = astronaut_bgr()
    assert photo.shape == (512, 512, 3)  # ships inside scikit-image: no download
    frames = list(render_still_clip(photo, seconds=2, fps=10, noise_sigma=4.0, seed=1))
    assert [f.timestamp_ms for f in frames] == [i * 100 for i in range(20)]
    images = np.stack([f.image for f in frames]).astype(np.float32)
    assert images.shape == (20, 480, 640, 3)
    # consecutive frames differ (motion + noise) yet stay close (a handheld camera, not cuts)
    step = np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3))
    assert (step > 1.0).all() and (step < 40).all()
    # the same seed renders the same clip
    again = next(render_still_clip(photo, seconds=2, fps=10, noise_sigma=4.0, seed=1))
    assert np.array_equal(again.image, frames[0].image)


def test_demo_into_a_file_is_an_error(tmp_path, face_model):
    target = tmp_path / "taken"
    target.write_text("a file where the demo folder should go")
    proc = run_cli("demo", "--out", target)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
