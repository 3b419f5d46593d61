"""`dataset build` recovers from what an earlier run or a bad copy left: a build stopped by
Ctrl-C keeps its shards and no temporary file, a damaged shard is extracted again (and said
so) instead of failing the whole build at the end, and a truncated .csv.gz is one line."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
from conftest import assert_user_error, run_cli


def test_damaged_shards_are_extracted_again(fer2013_sample, face_model, tmp_path):
    common = ["dataset", "build", "--fer2013", str(fer2013_sample), "--limit", "30",
              "--seed", "2", "--face-model", str(face_model)]
    reference = tmp_path / "reference"
    proc = run_cli(*common, "--out", reference, "--chunk-size", "64", "--workers", "1")
    assert proc.returncode == 0, proc.stderr

    # An earlier run, stopped by Ctrl-C once it wrote a few shards: the terminal sends SIGINT
    # to the whole process group, workers included; only the parent may act on it.
    out, shards = tmp_path / "stopped", tmp_path / "stopped" / ".shards"
    resumable = [*common, "--out", str(out), "--chunk-size", "4"]
    victim = subprocess.Popen([sys.executable, "-m", "emoblend", *resumable, "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 180
    while len(list(shards.glob("[0-9]*.parquet"))) < 3:
        assert victim.poll() is None, "the build ended before it could be stopped"
        assert time.monotonic() < deadline, "no shard appeared"
        time.sleep(0.01)
    os.killpg(victim.pid, signal.SIGINT)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 130, err
    assert "Traceback" not in err, err
    left = sorted(p.name for p in shards.iterdir())
    assert not [name for name in left if name.startswith(".")], f"temporaries left: {left}"
    done = sorted(shards.glob("[0-9]*.parquet"))
    assert 3 <= len(done) < 30  # 120 images in chunks of 4

    # Damage two of them: one cut short (a full disk, a bad copy), one a valid Parquet file
    # holding another chunk's rows.
    first, second = done[0], done[1]
    second.write_bytes(first.read_bytes())
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])

    proc = run_cli(*resumable, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    damaged = [line for line in proc.stderr.splitlines() if "is damaged" in line]
    assert len(damaged) == 2, proc.stderr
    assert first.name in damaged[0] and "unreadable" in damaged[0], damaged
    assert second.name in damaged[1] and "image_id" in damaged[1], damaged
    report = json.loads((out / "report.json").read_text())
    assert report["timings"]["chunks_reused"] == len(done) - 2
    assert report["timings"]["images_extracted"] == 120 - 4 * (len(done) - 2)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "features.parquet"),
        pd.read_parquet(reference / "features.parquet"),
    )
    assert not (out / ".shards").exists()


def test_truncated_csv_gz_is_one_line(fer2013_sample, tmp_path):
    packed = gzip.compress(fer2013_sample.read_bytes())
    cut = tmp_path / "fer2013.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    out = tmp_path / "out"
    proc = run_cli("dataset", "build", "--fer2013", cut, "--out", out)
    assert_user_error(proc, str(cut), "truncated or damaged", "download or copy it again")
    assert not out.exists()
