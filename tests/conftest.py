"""Shared test fixtures: the real MediaPipe model, FER2013 and media from ../shared.

Tests that need a shared file skip with a clear reason where it is absent. The face model is
given through EMOBLEND_FACE_MODEL, and the cache is pointed at a temporary folder, so tests
never download anything or touch the user's cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOBLEND_SHARED", REPO.parent / "shared"))
FACE_MODEL = SHARED / "models" / "face_landmarker.task"
FER2013 = SHARED / "data" / "fer2013.csv.gz"
MEDIA = SHARED / "media"

os.environ["EMOBLEND_CACHE_DIR"] = tempfile.mkdtemp(prefix="emoblend-test-cache-")
if FACE_MODEL.is_file():
    os.environ["EMOBLEND_FACE_MODEL"] = str(FACE_MODEL)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (set EMOBLEND_SHARED to the shared folder)")
    return path


@pytest.fixture(scope="session")
def face_model() -> Path:
    return _need(FACE_MODEL, "MediaPipe face model")


@pytest.fixture(scope="session")
def fer2013_csv() -> Path:
    return _need(FER2013, "FER2013 CSV")


@pytest.fixture(scope="session")
def fer2013_sample(fer2013_csv: Path, tmp_path_factory) -> Path:
    """A real FER2013 CSV: the first 60 rows of each split, in the original layout and order."""
    import pandas as pd

    full = pd.read_csv(fer2013_csv, dtype=str)
    path = tmp_path_factory.mktemp("fer2013") / "fer2013_sample.csv"
    full.groupby("Usage", sort=False).head(60).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def media(face_model: Path) -> Path:
    """The folder of real photos and clips (implies the face model, which every use needs)."""
    return _need(MEDIA, "shared media folder")


@pytest.fixture(scope="session")
def landmarker(face_model: Path):
    """One IMAGE-mode landmarker for the whole session (creating one takes ~0.1 s)."""
    from emoblend import FaceLandmarker

    with FaceLandmarker(face_model) as lm:
        yield lm


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``python -m emoblend ARGS`` as a user would; returns the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "emoblend", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user's mistake: exit status 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="session")
def fer_table(fer2013_csv: Path, face_model: Path, tmp_path_factory) -> Path:
    """A small real feature table: `emoblend dataset build --limit 240 --landmarks` on FER2013
    (the first 240 rows of each split through the real landmarker, one augmented copy each
    for Training). Takes ~15 s once per session."""
    out = tmp_path_factory.mktemp("fer_table")
    proc = run_cli("dataset", "build", "--fer2013", fer2013_csv, "--out", out, "--limit", "240",
                   "--landmarks", "--workers", "1", "--face-model", face_model)
    assert proc.returncode == 0, proc.stderr
    return out / "features.parquet"
