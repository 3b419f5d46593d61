"""``emoblend batch`` on a small real corpus: the shared clips (cut short), photos, a truncated
video and a text file named .mp4, through the real landmarker, on the local pool and on a real
local Ray; real SIGKILLs of the driver and of workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, assert_user_error, run_cli

from emoblend.face.blendshapes import BLENDSHAPE_NAMES
from emoblend.features.table import LANDMARK_COLUMNS

CLIPS = {  # shared clip -> frames kept in the corpus
    "WolfgangLanger_Pexels.mp4": 60, "single_face.mp4": 40, "noface_face.mov": 30,
    "no_face.mp4": 16,
}
PHOTOS = ("single_face.jpg", "0-f15-hao-ph.jpg", "45-m7-di-ph.jpg", "free-mountain-vector-01.jpg")
BAD = {"truncated.mp4": "truncated", "notes.mp4": "not a video file", "broken.jpg": "cannot read"}
EVERY = 2
TIMEOUT = 300


def _cut(src: Path, dest: Path, frames: int) -> None:
    capture = cv2.VideoCapture(str(src))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(frames):
        ok, image = capture.read()
        assert ok
        if writer is None:
            h, w = image.shape[:2]
            writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        writer.write(image)
    writer.release()
    capture.release()


@pytest.fixture(scope="session")
def corpus(media: Path, tmp_path_factory) -> Path:
    """Videos in a sub-folder and at the top, photos, and three bad inputs."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "clips").mkdir()
    for name, frames in CLIPS.items():
        _cut(media / name, root / "clips" / (Path(name).stem + ".mp4"), frames)
    for name in PHOTOS:
        shutil.copy(media / name, root / name)
    whole = (media / "WolfgangLanger_Pexels.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(whole[:50_000])  # a download cut short
    (root / "notes.mp4").write_text("these are my notes, not a video\n")
    (root / "broken.jpg").write_bytes(whole[:3000])
    return root


def _run(corpus: Path, out: Path, *extra: str, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emoblend", "batch", str(corpus), "--out", str(out),
         "--every", str(EVERY), "--workers", str(workers), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def _dataset(out: Path) -> pd.DataFrame:
    rows = pd.read_parquet(out / "parts")
    return rows.sort_values(["source", "frame", "face_id"]).reset_index(drop=True)


def _summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv", keep_default_na=False).set_index("source")


def assert_same_dataset(a: Path, b: Path) -> None:
    """Same rows, labels equal, blendshapes within 1e-5; the same inputs failed."""
    x, y = _dataset(a), _dataset(b)
    assert len(x) == len(y) and len(x) > 0
    keys = ["source", "frame", "time_ms", "face_id", "label", "stable_label"]
    pd.testing.assert_frame_equal(x[keys], y[keys])
    np.testing.assert_allclose(x[list(BLENDSHAPE_NAMES)], y[list(BLENDSHAPE_NAMES)], atol=1e-5)
    sx, sy = _summary(a), _summary(b)
    assert sx.index.tolist() == sy.index.tolist()
    for column in ("status", "reason", "frames", "faces"):
        assert sx[column].tolist() == sy[column].tolist(), column


@pytest.fixture(scope="session")
def reference(corpus: Path, tmp_path_factory) -> tuple[Path, int, str]:
    """An undisturbed local run with 2 workers: (out, exit status, stderr)."""
    out = tmp_path_factory.mktemp("reference")
    code, _, err = _finish(_run(corpus, out))
    return out, code, err


def test_batch_reads_collection_and_records_bad_inputs(corpus, reference):
    out, code, err = reference
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines[-1] == f"3 of {len(CLIPS) + len(PHOTOS) + 3} inputs failed; reasons in " \
                        f"{out / 'summary.csv'}"
    summary = _summary(out)
    for name, why in BAD.items():
        row = summary.loc[str(corpus / name)]
        assert row["status"] == "failed" and why in row["reason"] and "\n" not in row["reason"]
    good = summary[summary["status"] == "ok"]
    assert len(good) == len(CLIPS) + len(PHOTOS)
    for name, frames in CLIPS.items():  # --every 2 keeps frames 0, 2, 4, ...
        assert good.loc[str(corpus / "clips" / (Path(name).stem + ".mp4")), "frames"] == \
            (frames + 1) // 2

    rows = _dataset(out)
    from emoblend.classify.classifier import load_classifier

    classes = load_classifier().classes
    head = ["source", "frame", "time_ms", "face_id", "x", "y", "w", "h",
            *(f"p_{c}" for c in classes), "label", "stable_label"]
    assert rows.columns.tolist() == head + list(BLENDSHAPE_NAMES)
    assert set(rows["label"]) <= set(classes)
    np.testing.assert_allclose(rows[[f"p_{c}" for c in classes]].sum(axis=1), 1.0, atol=1e-4)
    counts = rows.groupby("source").size()
    for source, n in good["faces"].items():
        assert counts.get(source, 0) == n
    smiling = rows[rows["source"] == str(corpus / "clips" / "single_face.mp4")]
    assert (smiling["frame"] % EVERY == 0).all() and smiling["time_ms"].is_monotonic_increasing
    assert smiling["face_id"].nunique() == 1
    assert str(corpus / "clips" / "no_face.mp4") not in counts
    photo = rows[rows["source"] == str(corpus / "single_face.jpg")]
    assert len(photo) == 1 and photo["time_ms"].isna().all()
    assert not list((out / "parts").glob(".*"))  # no temporary files left


def test_rerun_skips_finished_parts_and_list_input(corpus, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    stamps = {p.name: p.stat().st_mtime_ns for p in _finished(out)}
    listing = tmp_path / "inputs.txt"
    listing.write_text("# a list as a user writes it\n" + "\n".join(
        os.path.relpath(p, tmp_path) for p in sorted(corpus.rglob("*")) if p.is_file()) + "\n")
    proc = run_cli("batch", f"@{listing}", "--out", out, "--every", EVERY, "--workers", 2)
    assert proc.returncode == 1, proc.stderr
    assert f"({len(stamps)} done by an earlier run)" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in _finished(out)} == stamps
    assert_same_dataset(reference[0], out)


def test_other_settings_or_missing_input_are_one_line_errors(corpus, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    assert_user_error(run_cli("batch", corpus, "--out", out, "--every", 3), "other settings",
                      "every")
    assert_user_error(run_cli("batch", tmp_path / "nope.mp4", "--out", tmp_path / "o2"),
                      "input not found")
    assert_user_error(run_cli("batch", REPO / "pyproject.toml", "--out", tmp_path / "o3"),
                      "neither a video")
    assert_user_error(run_cli("batch", corpus, "--out", tmp_path / "o4", "--engine", "spark"),
                      "use local or ray")
    assert_user_error(run_cli("dataset", "build", "--fer2013", REPO / "pyproject.toml", "--out",
                              tmp_path / "o5", "--engine", "spark"), "use local or ray")


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc, Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    """Children, grandchildren... of ``pid``: this session's Ray workers, not another's."""
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_for(condition, what: str, timeout: float = TIMEOUT) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _finished(out: Path) -> list[Path]:
    return [p for p in (out / "parts").glob("*.parquet") if not p.name.startswith(".")]


def _writing(out: Path) -> bool:
    return any((out / "parts").glob(".*.tmp.parquet")) if (out / "parts").is_dir() else False


def test_resume_after_sigkill_of_the_driver(corpus, reference, tmp_path):
    out = tmp_path / "out"
    proc = _run(corpus, out, workers=1)
    try:
        _wait_for(lambda: len(_finished(out)) >= 1 and _writing(out),
                  "a finished part and one being written")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the orphaned worker, as when a machine dies
    assert proc.returncode == -signal.SIGKILL
    assert len(_finished(out)) < len(_finished(reference[0]))
    assert not (out / "summary.csv").exists()
    code, _, err = _finish(_run(corpus, out, workers=1))
    assert code == 1, err
    assert "done by an earlier run" in err
    assert_same_dataset(reference[0], out)
    assert not _writing(out)


def test_a_killed_local_worker_loses_and_duplicates_nothing(corpus, reference, tmp_path):
    out = tmp_path / "out"
    proc = _run(corpus, out, workers=2)
    try:
        _wait_for(lambda: _writing(out), "a worker writing a part")
        workers = [p for p in _children(proc.pid) if "resource_tracker" not in _cmdline(p)]
        assert len(workers) == 2, [_cmdline(p) for p in workers]
        os.kill(workers[0], signal.SIGKILL)
        code, _, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 1, err
    assert_same_dataset(reference[0], out)


# ---------------------------------------------------------------- Ray


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray with 2 CPUs for every Ray test (starting one takes ~5-10 s)."""
    ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "emoblend[ray]")')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 * 1024)
    yield ray
    ray.shutdown()


def _in_thread(target, *args, **kwargs):  # noqa: ANN001, ANN202
    """Run ``target`` in a thread with a timeout; returns its result or raises its error."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = target(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _join(thread: threading.Thread, box: dict):  # noqa: ANN202
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the Ray run did not finish in time"
    if "error" in box:
        raise box["error"]
    return box["result"]


def _ray_batch(corpus: Path, out: Path):  # noqa: ANN202
    from emoblend.batch import BatchSettings, run_batch

    return run_batch([str(corpus)], out, BatchSettings(every=EVERY), engine="ray", workers=2,
                     progress=False)


def test_ray_engine_gives_the_local_dataset(ray_session, corpus, reference, tmp_path):
    result = _join(*_in_thread(_ray_batch, corpus, tmp_path / "out"))
    assert len(result.failed) == 3
    assert_same_dataset(reference[0], tmp_path / "out")
    rows = ray_session.data.read_parquet(str(tmp_path / "out" / "parts")).count()
    assert rows == len(_dataset(reference[0]))


def test_a_killed_ray_worker_loses_and_duplicates_nothing(ray_session, corpus, reference,
                                                          tmp_path):
    out = tmp_path / "out"
    thread, box = _in_thread(_ray_batch, corpus, out)
    _wait_for(lambda: _writing(out), "a Ray actor writing a part")
    actors = [p for p in _descendants(os.getpid()) if _cmdline(p).startswith("ray::_Actor")]
    assert actors, "no Ray actor process found"
    os.kill(actors[0], signal.SIGKILL)
    result = _join(thread, box)
    assert len(result.failed) == 3
    assert_same_dataset(reference[0], out)


def test_dataset_build_on_ray_gives_the_local_table(ray_session, fer2013_sample, face_model,
                                                    tmp_path):
    from functools import partial

    from emoblend.batch.ray import ray_extract
    from emoblend.data.build import BuildConfig, build_dataset

    def build(name: str, extract=None):  # noqa: ANN001, ANN202
        config = BuildConfig(fer2013=fer2013_sample, out=tmp_path / name, limit=24,
                             workers=2, landmarks=True, chunk_size=16, face_model=face_model)
        return build_dataset(config, progress=False, extract=extract).table

    local = build("local")
    on_ray = _join(*_in_thread(build, "ray", partial(ray_extract, address=None)))
    assert len(local) == 24 * 3 + 24 and local["detected"].sum() > 50
    LM = list(LANDMARK_COLUMNS)
    pd.testing.assert_frame_equal(local.drop(columns=LM), on_ray.drop(columns=LM))
    np.testing.assert_allclose(local[LM], on_ray[LM], atol=1e-6)


def test_ray_engine_without_ray_says_how_to_install(corpus, tmp_path):
    blocker = tmp_path / "blocked" / "ray"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('Ray is blocked in this test')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker.parent}{os.pathsep}"
           + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "emoblend", "batch", str(corpus / "single_face.jpg"), "--out",
         str(tmp_path / "out"), "--engine", "ray"],
        capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )
    assert_user_error(proc, 'pip install "emoblend[ray]"')
