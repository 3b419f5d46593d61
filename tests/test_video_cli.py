"""``emoblend video | images | live`` as a user runs them, on the real clips and photos."""

from __future__ import annotations

import json

import cv2
import pandas as pd
import pytest
from conftest import assert_user_error, run_cli

from emoblend.io.timeline import timeline_columns


def test_video_writes_timeline_annotated_video_and_plot(tmp_path, media):
    out, timeline, plot = tmp_path / "annotated.mp4", tmp_path / "t.csv", tmp_path / "t.png"
    proc = run_cli("video", media / "single_face.mp4", "-o", out, "--timeline", timeline,
                   "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(timeline)
    assert tuple(table.columns) == timeline_columns()
    assert table["frame"].tolist() == list(range(72))
    assert table["time_ms"].is_monotonic_increasing and table["time_ms"].iloc[-1] == 2367
    assert set(table["face_id"]) == {0}
    assert table["stable_label"].iloc[-1] == "happy"
    assert ((table[["x", "y", "w", "h"]] >= 0).all().all() and (table["w"] > 50).all())
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 72
    ok, frame = capture.read()
    assert ok and frame.shape == (360, 640, 3)
    capture.release()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "72 frames" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "t.csv", "t.png"]


def test_video_with_no_face_writes_an_empty_jsonl_timeline(tmp_path, media):
    timeline, plot = tmp_path / "t.jsonl", tmp_path / "t.png"
    proc = run_cli("video", media / "no_face.mp4", "--timeline", timeline, "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    assert timeline.read_text() == ""
    assert plot.read_bytes()[:4] == b"\x89PNG"  # a plot that says "no face found"
    assert "95 frames" in proc.stdout and "a face in 0" in proc.stdout


def test_video_timeline_jsonl_rows(tmp_path, media):
    timeline = tmp_path / "t.jsonl"
    proc = run_cli("video", media / "face_noface.mov", "--timeline", timeline)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in timeline.read_text().splitlines()]
    assert rows and all(tuple(r) == timeline_columns() for r in rows)
    # the face is there at the start and gone after the cut
    frames = {r["frame"] for r in rows}
    assert set(range(60)) <= frames
    assert len(frames & set(range(100, 169))) <= 5


@pytest.fixture()
def bad_videos(tmp_path, media):
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n")
    data = (media / "single_face.mp4").read_bytes()
    unreadable = tmp_path / "cut.mp4"  # index (moov) at the end, cut off: cannot be opened
    unreadable.write_bytes(data[: len(data) // 2])
    data = (media / "WolfgangLanger_Pexels.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"  # index first: opens, decodes 143 of 472 frames
    truncated.write_bytes(data[: len(data) // 3])
    return {"text": text, "unreadable": unreadable, "truncated": truncated}


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("text", "cannot open"), ("unreadable", "cannot open"), ("truncated", "truncated")],
)
def test_bad_video_is_one_line_error_and_no_output(tmp_path, bad_videos, kind, fragment):
    before = set(tmp_path.iterdir())
    proc = run_cli("video", bad_videos[kind], "-o", tmp_path / "out.mp4",
                   "--timeline", tmp_path / "out.csv", "--plot", tmp_path / "out.png")
    assert_user_error(proc, fragment, bad_videos[kind].name)
    assert set(tmp_path.iterdir()) == before  # nothing written, no temporary files left


def test_missing_video_and_bad_output_names(tmp_path, media):
    assert_user_error(run_cli("video", tmp_path / "nowhere.mp4"), "not found")
    proc = run_cli("video", media / "single_face.mp4", "--timeline", tmp_path / "t.xlsx")
    assert_user_error(proc, ".csv")
    assert not (tmp_path / "t.xlsx").exists()


def test_live_without_a_camera_is_a_clear_error(tmp_path):
    proc = run_cli("live", "--camera", "99", "--no-window", "--timeline", tmp_path / "t.csv")
    assert_user_error(proc, "no camera at index 99", "emoblend demo")
    assert list(tmp_path.iterdir()) == []


def test_live_on_a_stream_source_prints_label_changes_and_keeps_the_timeline(tmp_path, media):
    """`--camera` also takes what OpenCV opens as a stream (an IP camera URL; here a file),
    which runs the live loop on real frames: wall-clock timestamps, one id, the smile read."""
    timeline = tmp_path / "live.jsonl"
    proc = run_cli("live", "--camera", media / "single_face.mp4", "--no-window",
                   "--timeline", timeline)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in timeline.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(72))
    times = [r["time_ms"] for r in rows]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert {r["face_id"] for r in rows} == {0}
    assert rows[-1]["stable_label"] == "happy"
    assert "face #0: happy" in proc.stdout


def test_live_window_without_a_display_is_a_clear_error(tmp_path, media, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    proc = run_cli("live", "--camera", media / "single_face.mp4", "--timeline", tmp_path / "t.csv")
    assert_user_error(proc, "no display", "--no-window")
    assert list(tmp_path.iterdir()) == []


def test_images_csv_has_a_row_per_face_and_per_faceless_file(tmp_path, media):
    csv = tmp_path / "faces.csv"
    files = ["single_face.jpg", "multi_face.jpg", "free-mountain-vector-01.jpg", "0-f15-hao-ph.jpg"]
    proc = run_cli("images", *[media / f for f in files], "--num-faces", "6", "--csv", csv)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(csv)
    assert list(table.columns) == ["file", "face", "x", "y", "w", "h",
                                   "p_happy", "p_unknown", "p_sad", "label"]
    per_file = table.groupby(table["file"].map(lambda p: p.rsplit("/", 1)[-1])).size()
    assert per_file["single_face.jpg"] == 1
    assert per_file["multi_face.jpg"] >= 2
    faceless = table[table["file"].str.endswith("free-mountain-vector-01.jpg")]
    assert len(faceless) == 1 and faceless["label"].iloc[0] == "no face"
    assert faceless[["face", "p_happy"]].isna().all(axis=None)
    happy = table[table["file"].str.endswith("0-f15-hao-ph.jpg")]
    assert happy["label"].tolist() == ["happy"]
    faces = table.dropna(subset=["face"])
    assert (faces[["p_happy", "p_unknown", "p_sad"]].sum(axis=1) - 1).abs().max() < 1e-4


def test_images_table_and_bad_image(tmp_path, media):
    proc = run_cli("images", media / "free-mountain-vector-01.jpg", media / "single_face.jpg")
    assert proc.returncode == 0, proc.stderr
    assert "no face" in proc.stdout and "single_face.jpg" in proc.stdout
    bad = tmp_path / "photo.jpg"
    bad.write_text("not an image")
    assert_user_error(run_cli("images", bad, "--csv", tmp_path / "o.csv"), "photo.jpg")
    assert not (tmp_path / "o.csv").exists()
