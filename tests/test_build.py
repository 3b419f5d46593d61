"""The FER2013 build end to end on real rows through the real model: schema, caps, labels,
splits, the image index, the report, resuming after a kill, and the blendshape selection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, run_cli

from emoblend.data.augment import apply_augmentation
from emoblend.data.build import BuildConfig, build_dataset, table_columns
from emoblend.face.blendshapes import BLENDSHAPE_NAMES
from emoblend.features.table import LANDMARK_COLUMNS, MATRIX_COLUMNS
from emoblend.labels import FER_EMOTIONS, SPLITS, fer_to_label

CAPS = {name: 3 for name in FER_EMOTIONS} | {"disgust": None}


@pytest.fixture(scope="module")
def built(fer2013_sample, face_model, tmp_path_factory):
    """The 180-row sample built with tiny caps, landmarks and small chunks (~200 images)."""
    out = tmp_path_factory.mktemp("build") / "out"
    config = BuildConfig(
        fer2013=fer2013_sample,
        out=out,
        workers=2,
        landmarks=True,
        seed=5,
        face_model=face_model,
        chunk_size=16,
        caps=CAPS,
    )
    return build_dataset(config, progress=False)


@pytest.fixture(scope="module")
def csv_rows(fer2013_sample) -> pd.DataFrame:
    """The sample CSV read independently of the code under test."""
    return pd.read_csv(fer2013_sample)


def test_schema(built):
    table = built.table
    assert list(table.columns) == table_columns(landmarks=True)
    assert list(table.columns[6:58]) == list(BLENDSHAPE_NAMES)
    assert list(table.columns[-len(LANDMARK_COLUMNS + MATRIX_COLUMNS) :]) == list(
        LANDMARK_COLUMNS + MATRIX_COLUMNS
    )
    assert table["detected"].dtype == bool
    features = table.columns[6:]
    # NaN exactly where no face was found, numbers everywhere else.
    assert table.loc[~table["detected"], features].isna().all().all()
    assert table.loc[table["detected"], features].notna().all().all()
    assert table["detected"].mean() > 0.7
    pd.testing.assert_frame_equal(pd.read_parquet(built.out / "features.parquet"), table)


def test_labels_splits_and_caps(built, csv_rows):
    table = built.table
    source = csv_rows.loc[table["image_id"]]
    np.testing.assert_array_equal(table["emotion"], source["emotion"])
    np.testing.assert_array_equal(table["split"], source["Usage"].map(SPLITS))
    np.testing.assert_array_equal(table["label"], fer_to_label(source["emotion"].to_numpy()))
    originals = table[table["augmentation"] == "none"]
    for split in ("val", "test"):  # kept whole, never augmented
        rows = table[table["split"] == split]
        assert sorted(rows["image_id"]) == list(csv_rows.index[csv_rows["Usage"] == _usage(split)])
        assert (rows["augmentation"] == "none").all()
    train = originals[originals["split"] == "train"]
    available = csv_rows[csv_rows["Usage"] == "Training"]["emotion"].value_counts()
    kept = train["emotion"].value_counts()
    for code, n in available.items():
        cap = CAPS[FER_EMOTIONS[code]]
        assert kept[code] == (n if cap is None else min(cap, n)), FER_EMOTIONS[code]
    assert train["image_id"].is_unique


def _usage(split: str) -> str:
    return {v: k for k, v in SPLITS.items()}[split]


def test_one_augmented_copy_per_training_image(built):
    table = built.table
    train = table[table["split"] == "train"]
    copies = train[train["augmentation"] != "none"]
    assert sorted(copies["image_id"]) == sorted(
        train.loc[train["augmentation"] == "none", "image_id"]
    )
    assert copies["augmentation"].str.fullmatch(r"flip|rot[+-]\d+\.\d|flip\+rot[+-]\d+\.\d").all()
    # Rows come in CSV order, each original followed by its copies.
    assert table["image_id"].is_monotonic_increasing


def test_image_id_traces_back_to_the_csv_row(built, csv_rows, landmarker):
    table = built.table
    detected = table[table["detected"]]
    picks = pd.concat(
        [
            detected[detected["augmentation"] == "none"].head(3),
            detected[detected["augmentation"] != "none"].head(3),
            detected[detected["split"] == "test"].tail(2),
            table[~table["detected"]].head(2),
        ]
    )
    assert len(picks) == 10
    for _, row in picks.iterrows():
        pixels = np.array(csv_rows.loc[row["image_id"], "pixels"].split(), dtype=np.uint8)
        image = apply_augmentation(pixels.reshape(48, 48), row["augmentation"])
        faces = landmarker.detect(image)
        assert bool(faces) == row["detected"]
        if faces:
            np.testing.assert_array_equal(
                faces[0].blendshapes, row[list(BLENDSHAPE_NAMES)].to_numpy(dtype=np.float32)
            )
            np.testing.assert_array_equal(
                faces[0].landmarks.reshape(-1), row[list(LANDMARK_COLUMNS)].to_numpy(np.float32)
            )


def test_report_counts(built):
    table, out = built.table, built.out
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(built.report))
    originals = table[table["augmentation"] == "none"]
    for split in ("train", "val", "test"):
        missed = originals[(originals["split"] == split) & ~originals["detected"]]
        counts = missed["emotion"].value_counts()
        expected = {name: int(counts.get(code, 0)) for code, name in enumerate(FER_EMOTIONS)}
        assert report["table3_undetected"]["by_emotion"][split] == expected
    assert sum(report["table1_csv"]["by_class"]["val"].values()) == 60
    assert report["table"]["rows"] == len(table)
    assert report["augmentation"]["rows"] == int((table["augmentation"] != "none").sum())
    assert -36 <= report["augmentation"]["angle_min"] <= report["augmentation"]["angle_max"] <= 36
    assert report["timings"]["images_extracted"] == len(table)
    md = (out / "report.md").read_text()
    assert "Table 3" in md and "paper" in md
    assert (out / "undetected.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / ".shards").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "features.parquet", "report.json", "report.md", "undetected.png"
    ]  # fmt: skip


def test_select_command_on_the_built_table(built, tmp_path):
    table = built.table
    fig5 = tmp_path / "fig5.png"
    proc = run_cli(
        "blendshapes", "select", built.out / "features.parquet",
        "--min-count", "3", "--json", "--plot", fig5,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    train = table[table["split"] == "train"][list(BLENDSHAPE_NAMES)].to_numpy()
    above = (np.nan_to_num(train, nan=-1) > 0.4).sum(axis=0)
    assert result["kept"] == [n for n, c in zip(BLENDSHAPE_NAMES, above, strict=True) if c > 3]
    assert result["rows"] == len(train)
    assert fig5.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_killed_build_resumes_to_an_identical_table(fer2013_sample, face_model, tmp_path):
    common = [
        "dataset", "build", "--fer2013", str(fer2013_sample), "--limit", "40",
        "--seed", "3", "--face-model", str(face_model),
    ]  # fmt: skip
    # The reference: uninterrupted, with other chunking and another worker count.
    reference = tmp_path / "reference"
    proc = run_cli(*common, "--out", reference, "--workers", "2", "--chunk-size", "64")
    assert proc.returncode == 0, proc.stderr

    out, shards = tmp_path / "killed", tmp_path / "killed" / ".shards"
    resumable = [*common, "--out", str(out), "--workers", "1", "--chunk-size", "8"]
    victim = subprocess.Popen(
        [sys.executable, "-m", "emoblend", *resumable],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )
    deadline = time.monotonic() + 180
    while len(list(shards.glob("[0-9]*.parquet"))) < 2:
        assert victim.poll() is None, "the build ended before it could be killed"
        assert time.monotonic() < deadline, "no shard appeared"
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    done = len(list(shards.glob("[0-9]*.parquet")))
    assert not (out / "features.parquet").exists()
    assert 2 <= done < 20  # 160 images in chunks of 8

    proc = run_cli(*resumable)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["timings"]["chunks_reused"] == done
    assert report["timings"]["images_extracted"] == 160 - 8 * done  # only the missing chunks
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "features.parquet"),
        pd.read_parquet(reference / "features.parquet"),
    )


def test_missing_face_model_writes_nothing(fer2013_sample, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        "dataset", "build", "--fer2013", fer2013_sample, "--out", out,
        "--face-model", tmp_path / "missing.task",
    )  # fmt: skip
    assert_user_error(proc, "face model not found", "--face-model")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "fragment"), [("--limit", "--limit is 0"), ("--workers", "--workers is 0")]
)
def test_bad_options(fer2013_sample, tmp_path, option, fragment):
    out = tmp_path / "out"
    proc = run_cli("dataset", "build", "--fer2013", fer2013_sample, "--out", out, option, "0")
    assert_user_error(proc, fragment)
    assert not out.exists()


def test_no_caps_keeps_every_training_image_and_writes_aligned_crops(
    fer2013_sample, face_model, csv_rows, landmarker, tmp_path
):
    """`--no-caps --crops 48`: the table the shipped crop models train on; each crop is what
    the live path's crop function gives on that row's pixels and landmarks."""
    out = tmp_path / "out"
    proc = run_cli(
        "dataset", "build", "--fer2013", fer2013_sample, "--out", out, "--limit", "12",
        "--no-caps", "--landmarks", "--crops", "48", "--workers", "1",
        "--face-model", face_model,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "crops.npy" in proc.stderr
    table = pd.read_parquet(out / "features.parquet")
    crops = np.load(out / "crops.npy")
    train = table[(table["split"] == "train") & (table["augmentation"] == "none")]
    assert len(train) == 12  # every Training row of the first 12, none capped away
    assert crops.shape == (len(table), 48, 48) and crops.dtype == np.uint8
    assert not crops[~table["detected"].to_numpy()].any()
    assert crops[table["detected"].to_numpy()].reshape(-1, 48 * 48).std(axis=1).min() > 5
    from emoblend.features.crop import aligned_crop

    for i in np.flatnonzero(table["detected"].to_numpy())[::7]:
        row = table.iloc[i]
        pixels = np.array(csv_rows.loc[row["image_id"], "pixels"].split(), np.uint8)
        image = apply_augmentation(pixels.reshape(48, 48), row["augmentation"])
        face = landmarker.detect(image)[0]  # IMAGE mode is deterministic: the build's landmarks
        np.testing.assert_array_equal(crops[i], aligned_crop(image, face.landmarks))
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["crop_size"] == 48
    assert all(v is None for v in report["config"]["caps"].values())


def test_crops_need_landmarks(fer2013_sample, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("dataset", "build", "--fer2013", fer2013_sample, "--out", out, "--crops", "48")
    assert_user_error(proc, "--crops needs --landmarks")
    assert not out.exists()
