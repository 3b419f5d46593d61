"""Promises held under faults, on real files: a real full file system (a 1 MiB tmpfs), a real
read-only folder (``chattr +i``: root ignores permission bits), a path under a regular file,
bad files in a batch, bad table cells, pixel bombs, and the order of checks.

Every output failure must be one line naming the path and the cause, exit status 2, and no
file left behind, hidden temporaries included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import FER2013, assert_user_error, run_cli

from emoblend.errors import DatasetError, ImageError, OutputError


def run_or_skip(*command: str, why: str) -> None:
    """Run a system command the test needs (mount, chattr); skip the test where it fails."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip(f"{why}: no {command[0]} command")
    if proc.returncode != 0:
        pytest.skip(f"{why}: {proc.stderr.strip() or proc.returncode}")


@pytest.fixture
def full_disk(tmp_path):
    """A real 1 MiB tmpfs mounted for the test, unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    run_or_skip("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount),
                why="cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder, leave: int = 0) -> None:
    """Fill ``folder``'s file system, leaving about ``leave`` bytes free."""
    free = shutil.disk_usage(folder).free
    try:
        with open(folder / "filler", "wb") as f:
            f.write(b"\1" * max(0, free - leave))
    except OSError:
        pass  # full: what was asked


@pytest.fixture
def immutable_dir(tmp_path):
    """A real folder nobody, root included, can create files in (``chattr +i``)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    run_or_skip("chattr", "+i", str(locked), why="chattr +i is not possible here")
    try:
        yield locked
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=False)


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------
# outputs: one line, exit 2, nothing left behind


def _need_torch():
    pytest.importorskip("torch", reason="train needs the [train] extra (PyTorch)")


OUTPUT_CASES = {
    "images --csv": lambda i, o: ["images", i["photo"], "--csv", o / "faces.csv"],
    "video -o": lambda i, o: ["video", i["clip"], "-o", o / "annotated.mp4"],
    "video --timeline": lambda i, o: ["video", i["clip"], "--timeline", o / "timeline.csv"],
    "blendshapes --csv": lambda i, o: ["blendshapes", i["photo"], "--csv", o / "faces.csv"],
    "blendshapes --plot": lambda i, o: ["blendshapes", i["photo"], "--plot", o / "fig2.png"],
    "evaluate --errors": lambda i, o: ["evaluate", i["table"], "--model", "blend-mlp",
                                       "--errors", o / "errors.csv"],
    "dataset build --out": lambda i, o: ["dataset", "build", "--fer2013", i["fer2013"],
                                         "--out", o / "build", "--limit", "5"],
    "train --out": lambda i, o: ["train", i["table"], "--out", o / "run", "--epochs", "1"],
}
CAUSES = {
    "read-only folder": "permission denied",
    "under a regular file": "is a file, not a folder",
    "full disk": "no space left on device",
}


@pytest.fixture(scope="module")
def inputs(media, table_csv):
    return {"photo": media / "single_face.jpg", "clip": media / "single_face.mp4",
            "table": table_csv, "fer2013": FER2013}


EVERY_CAUSE = ("images --csv", "video -o", "blendshapes --csv", "evaluate --errors")
ONE_CAUSE = {  # the same mechanism as above; one cause each keeps the run time down
    "video --timeline": "full disk",
    "blendshapes --plot": "read-only folder",
    "dataset build --out": "under a regular file",
    "train --out": "read-only folder",
}
PAIRS = [(case, cause) for case in EVERY_CAUSE for cause in CAUSES] + list(ONE_CAUSE.items())


@pytest.mark.parametrize(("case", "cause"), PAIRS)
def test_output_failure_is_one_line_and_leaves_nothing(case, cause, inputs, request, tmp_path):
    if case.startswith("train"):
        _need_torch()
    if case.startswith("dataset") and not FER2013.is_file():
        pytest.skip(f"FER2013 CSV not found at {FER2013}")
    if cause == "read-only folder":
        folder = request.getfixturevalue("immutable_dir")
    elif cause == "under a regular file":
        folder = tmp_path / "photo.png"  # a file where a folder should be
        folder.write_bytes(b"not a folder")
    else:
        folder = request.getfixturevalue("full_disk")
        fill(folder)
    before = listing(folder) if folder.is_dir() else None
    args = OUTPUT_CASES[case](inputs, folder)
    proc = run_cli(*args)
    assert_user_error(proc, "cannot write", str(folder), CAUSES[cause])
    assert "written" not in proc.stdout
    if before is not None:
        assert listing(folder) == before  # no output, no hidden temporary
    else:
        assert folder.read_bytes() == b"not a folder"


def test_video_that_fills_the_disk_midway_is_an_error_not_written(media, full_disk):
    """The disk fills while frames are written: OpenCV reports nothing, the sink notices."""
    fill(full_disk, leave=200_000)  # the annotated clip needs ~390 KB
    proc = run_cli("video", media / "single_face.mp4", "-o", full_disk / "annotated.mp4")
    assert_user_error(proc, f"cannot write {full_disk / 'annotated.mp4'}",
                      "no space left on device")
    assert "written" not in proc.stdout and "Failed to write" not in proc.stderr
    assert listing(full_disk) == ["filler"]


def test_demo_on_a_full_disk_blames_the_output(face_model, full_disk):
    proc = run_cli("demo", "--out", full_disk / "demo")  # the 6 s clip alone needs > 1 MiB
    assert_user_error(proc, "demo_input.mp4", "no space left on device")
    assert "truncated" not in proc.stderr
    assert listing(full_disk) == []  # the demo folder it made is gone too


def test_writers_that_fill_the_disk_raise_output_error_and_leave_nothing(full_disk):
    """Mid-write failures in-process: the timeline writer, a writer wrapping the OS error (as
    torch.save does), and an input error inside the block, which stays the input's."""
    from emoblend.io.atomic import atomic_path
    from emoblend.io.timeline import TimelineWriter

    fill(full_disk, leave=100_000)
    row = {"frame": 0, "time_ms": 0, "face_id": 0, "x": 1, "y": 2, "w": 3, "h": 4,
           "p_happy": 0.1, "p_unknown": 0.2, "p_sad": 0.7, "label": "sad", "stable_label": "sad"}
    with pytest.raises(OutputError, match="timeline.jsonl: no space left on device"):  # noqa: PT012
        with TimelineWriter(full_disk / "out" / "timeline.jsonl") as writer:
            for _ in range(20_000):
                writer.write(row)
    assert listing(full_disk) == ["filler"]  # the folder made for it is removed too

    with pytest.raises(OutputError, match="model.pt: no space left"):  # noqa: PT012
        with atomic_path(full_disk / "model.pt") as tmp:
            try:
                tmp.write_bytes(b"\0" * 200_000)
            except OSError as exc:
                raise RuntimeError("file write failed") from exc
    with pytest.raises(FileNotFoundError):  # noqa: PT012
        with atomic_path(full_disk / "copy.txt"):
            open(full_disk / "no-such-input.txt").read()
    assert listing(full_disk) == ["filler"]


def test_written_video_is_checked_and_complete(tmp_path, media):
    """A video that is written is re-opened and holds every frame before it is renamed."""
    import cv2

    from emoblend.io.video import VideoSink, VideoSource

    out = tmp_path / "copy.mp4"
    with VideoSource(media / "single_face.mp4") as source, VideoSink(out, source.fps) as sink:
        for frame in source:
            sink.write(frame.image)
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == sink.frames_written == 72
    capture.release()
    assert listing(tmp_path) == ["copy.mp4"]


def test_export_of_a_text_file_is_one_line(tmp_path):
    _need_torch()
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a run\n")
    proc = run_cli("export", notes, "--out", tmp_path / "m.onnx")
    assert_user_error(proc, "notes.txt", "not a model saved by `emoblend train`")
    assert listing(tmp_path) == ["notes.txt"]


# ---------------------------------------------------------------------------------------------
# batches keep going past a bad file


@pytest.fixture(scope="module")
def mixed_folder(media, tmp_path_factory):
    """Three good photos (one of a group), a text file named .jpg, and a 400-megapixel PNG of
    49 KB."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("mixed")
    for name in ("single_face.jpg", "0-f15-hao-ph.jpg", "multi_face.jpg"):
        shutil.copy(media / name, folder / name)
    (folder / "broken.jpg").write_text("not an image")
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")  # 1 bit per pixel: 50 MB here
    return folder


def test_images_batch_writes_the_good_rows_and_a_row_per_bad_file(mixed_folder, tmp_path):
    csv = tmp_path / "faces.csv"
    proc = run_cli("images", mixed_folder, "--csv", csv)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "2 of 5 images could not be read" in lines[0], proc.stderr
    table = pd.read_csv(csv)
    by_file = {os.path.basename(f): rows for f, rows in table.groupby("file")}
    assert len(by_file["multi_face.jpg"]) == 2  # every face the detector sees, by default
    assert by_file["single_face.jpg"]["label"].tolist() == ["happy"]
    assert by_file["0-f15-hao-ph.jpg"]["label"].tolist() == ["happy"]
    broken, bomb = by_file["broken.jpg"].iloc[0], by_file["bomb.png"].iloc[0]
    assert broken["label"] == "error" and "cannot read" in broken["error"]
    assert bomb["label"] == "error" and "20000×20000" in bomb["error"]
    assert "\n" not in broken["error"] + bomb["error"]
    assert table.loc[table["label"] != "error", "error"].isna().all()


def test_blendshapes_batch_json_has_an_error_key_per_bad_file(mixed_folder):
    proc = run_cli("blendshapes", mixed_folder, "--json")
    assert proc.returncode == 3, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    errors = {os.path.basename(r["file"]): r["error"] for r in rows if "error" in r}
    assert set(errors) == {"broken.jpg", "bomb.png"}
    assert sum("jawOpen" in r for r in rows) == 4  # the good photos: 1 + 1 + 2 faces
    assert "2 of 5 images could not be read" in proc.stderr


# ---------------------------------------------------------------------------------------------
# pixel bombs, and the order of checks


def test_pixel_limit_is_checked_from_the_header_before_decoding(mixed_folder, media):
    """The 400-megapixel PNG is refused from its bytes (what a server receives), without the
    gigabytes its pixels would take; the limit moves with the keyword, the option and the env."""
    import sys

    from emoblend.io.images import read_image

    probe = (  # a fresh process: its peak memory (VmHWM) is the refusal's alone
        "import re, sys\n"
        "from emoblend.errors import ImageError\n"
        "from emoblend.io.images import decode_image\n"
        "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])\n"
        "before = peak()\n"
        "try:\n"
        "    decode_image(open(sys.argv[1], 'rb').read(), 'upload')\n"
        "except ImageError as exc:\n"
        "    print(exc)\n"
        "print(peak() - before)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, mixed_folder / "bomb.png"],
                          capture_output=True, text=True, check=True)
    message, grown_kb = proc.stdout.splitlines()
    assert message.startswith("upload is 20000×20000 = 400.0 megapixels, over the limit of 50")
    assert int(grown_kb) < 50_000  # decoded, the pixels alone would take 1.2 GB
    photo = media / "single_face.jpg"  # 560×560 or so: 0.3 megapixels
    with pytest.raises(ImageError, match="over the limit of 0.1 megapixels"):
        read_image(photo, max_pixels=100_000)
    assert read_image(photo).ndim == 3
    assert_user_error(run_cli("images", photo, "--max-pixels", "100000"), "--max-pixels")
    proc = subprocess.run(
        [sys.executable, "-m", "emoblend", "blendshapes", photo], capture_output=True, text=True,
        env={**os.environ, "EMOBLEND_MAX_PIXELS": "100000"},
    )
    assert_user_error(proc, "over the limit of 0.1 megapixels")


@pytest.mark.parametrize("command", [
    ["images", "{missing}"],
    ["images", "{missing}", "--csv", "{tmp}/o.csv"],
    ["blendshapes", "{missing}"],
    ["dataset", "build", "--fer2013", "{missing}", "--out", "{tmp}/b"],
])
def test_inputs_are_checked_before_the_face_model(command, tmp_path):
    """With no face model anywhere, a missing input still reports the input."""
    missing = tmp_path / "nowhere.jpg"
    args = [a.format(missing=missing, tmp=tmp_path) for a in command]
    proc = run_cli(*args, "--face-model", tmp_path / "no-model.task")
    assert_user_error(proc, "not found", "nowhere.jpg")
    assert listing(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# table readers check types, ranges and the detected flag


@pytest.fixture(scope="module")
def table_csv(fer_table, tmp_path_factory):
    """Sixty real rows of the FER2013 feature table (blendshapes only), as CSV."""
    from emoblend.face.blendshapes import BLENDSHAPE_NAMES

    table = pd.read_parquet(fer_table)
    keep = ["image_id", "split", "emotion", "label", "augmentation", "detected",
            *BLENDSHAPE_NAMES]
    found, missed = table[table["detected"]], table[~table["detected"]]
    rows = pd.concat([*(found[found["split"] == s].head(20) for s in ("train", "val", "test")),
                      missed.head(3)])  # faces first: rows 0-59 have one, the last 3 none
    path = tmp_path_factory.mktemp("table") / "table.csv"
    rows[keep].to_csv(path, index=False)
    return path


def _spoil(path, out, column, row, value):
    table = pd.read_csv(path, dtype={column: object})
    table.loc[table.index[row], column] = value
    table.to_csv(out, index=False)
    return table["image_id"].iloc[row]


@pytest.mark.parametrize("command", [
    ["evaluate", "{t}", "--model", "blend-mlp"],
    ["blendshapes", "select", "{t}"],
    ["train", "{t}", "--out", "{tmp}/run", "--epochs", "1"],
])
def test_a_non_numeric_cell_is_one_line_naming_column_and_row(command, table_csv, tmp_path):
    if command[0] == "train":
        _need_torch()
    bad = tmp_path / "bad.csv"
    image_id = _spoil(table_csv, bad, "jawOpen", 7, "abc")
    proc = run_cli(*[a.format(t=bad, tmp=tmp_path) for a in command])
    assert_user_error(proc, "column jawOpen", "'abc'", f"row 7 (image_id {image_id}, line 9")
    assert listing(tmp_path) == ["bad.csv"]


@pytest.mark.parametrize(("column", "value", "fragment"), [
    ("jawOpen", "inf", "the infinite value inf"),
    ("jawOpen", "-0.5", "the out-of-range value -0.5"),
    ("cheekPuff", "1.2", "the out-of-range value 1.2"),
    ("detected", "maybe", "column detected has 'maybe'"),
    ("jawOpen", "", "column jawOpen is empty at row 3"),
])
def test_table_values_are_checked(table_csv, tmp_path, column, value, fragment):
    from emoblend.features.table import read_table

    bad = tmp_path / "bad.csv"
    table = pd.read_csv(table_csv)
    row = 3 if value == "" else 5
    assert table["detected"].iloc[row]  # a row with a face
    assert not table["detected"].iloc[-1]
    _spoil(table_csv, bad, column, row, value)
    with pytest.raises(DatasetError, match="fix|give all 52") as caught:
        read_table(bad)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_table_accepts_tiny_rounding_and_empty_rows_without_a_face(table_csv, tmp_path):
    from emoblend.face.blendshapes import BLENDSHAPE_NAMES
    from emoblend.features.table import check_table

    table = pd.read_csv(table_csv)
    table.loc[0, "jawOpen"] = 1.0004  # float rounding past 1
    missed = ~table["detected"]
    assert missed.any() and table.loc[missed, list(BLENDSHAPE_NAMES)].isna().all(axis=None)
    table["detected"] = table["detected"].map({True: "True", False: "false"})  # text, any case
    checked = check_table(table)
    assert checked["detected"].dtype == bool and checked["detected"].sum() == (~missed).sum()
    assert np.isfinite(checked.loc[~missed, list(BLENDSHAPE_NAMES)].to_numpy()).all()


# ---------------------------------------------------------------------------------------------
# dataset build --limit reads no further than it needs


def test_limit_stops_reading_once_every_split_has_its_rows(fer2013_sample, tmp_path,
                                                          monkeypatch):
    """A damaged tail after the last split's limit is never read; image_id stays the row
    number in the whole CSV."""
    from emoblend.data import fer2013

    sample = pd.read_csv(fer2013_sample, dtype=str)  # 60 real rows per split, in CSV order
    path = tmp_path / "tail.csv"
    path.write_text(fer2013_sample.read_text() + "9,not pixels,Nowhere\n" * 40)
    monkeypatch.setattr(fer2013, "READ_CHUNK_ROWS", 16)  # the file is one chunk otherwise
    data = fer2013.load_fer2013(path, limit=50)
    expected = sample.groupby("Usage", sort=False).head(50).index.to_numpy()
    np.testing.assert_array_equal(data.image_id, expected)
    last = int(expected[-1])  # row 169: the 50th PrivateTest row
    np.testing.assert_array_equal(data.pixels[-1].ravel(),
                                  np.array(sample["pixels"][last].split(), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"row 180 \(line 182\)"):
        fer2013.load_fer2013(path)  # without a limit every row is read, and the tail is bad


def test_help_reads_like_an_ordinary_command_line_tool():
    proc = run_cli("images", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage: emoblend images [OPTIONS] PATHS..." in proc.stdout
    assert "--csv FILE" in proc.stdout and "--num-faces N" in proc.stdout
    assert "<" not in proc.stdout and "{" not in proc.stdout  # no <bool>, no {paths}
