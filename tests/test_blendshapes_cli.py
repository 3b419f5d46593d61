"""`emoblend blendshapes IMAGE...`: the CLI reports what MediaPipe itself reports."""

from __future__ import annotations

import json
import shutil

import cv2
import mediapipe as mp
import numpy as np
import pandas as pd
from conftest import assert_user_error, run_cli
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.python import vision

from emoblend.face.blendshapes import BLENDSHAPE_NAMES


def _direct_mediapipe(path, face_model) -> dict[str, float]:
    """The first face's scores from MediaPipe's own API, with no emoblend code involved."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    options = vision.FaceLandmarkerOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=str(face_model)),
        output_face_blendshapes=True,
    )
    with vision.FaceLandmarker.create_from_options(options) as direct:
        result = direct.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    return {c.category_name: c.score for c in result.face_blendshapes[0]}


def test_json_equals_a_direct_mediapipe_call(media, face_model):
    image = media / "single_face.jpg"
    proc = run_cli("blendshapes", image, "--json")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    row = json.loads(line)
    expected = _direct_mediapipe(image, face_model)
    assert [k for k in row if k in expected] == list(BLENDSHAPE_NAMES)
    np.testing.assert_allclose(
        [row[n] for n in BLENDSHAPE_NAMES], [expected[n] for n in BLENDSHAPE_NAMES], atol=1e-6
    )
    x, y, w, h = (row[k] for k in "xywh")
    assert w > 0 and h > 0 and x >= 0 and y >= 0


def test_csv_and_plot(media, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("single_face.jpg", "free-mountain-vector-01.jpg"):
        shutil.copy(media / name, folder / name)
    csv, plot = tmp_path / "out" / "faces.csv", tmp_path / "out" / "fig2.png"
    proc = run_cli("blendshapes", folder, "--csv", csv, "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(csv)
    assert list(table.columns) == ["file", "face", "x", "y", "w", "h", *BLENDSHAPE_NAMES, "error"]
    by_file = table.set_index(table["file"].map(lambda p: p.rsplit("/", 1)[-1]))
    assert by_file.loc["single_face.jpg", "face"] == 0
    assert pd.isna(by_file.loc["free-mountain-vector-01.jpg", "face"])  # no face: one empty row
    assert by_file.loc["single_face.jpg", list(BLENDSHAPE_NAMES)].between(0, 1).all()
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600
    assert sorted(p.name for p in csv.parent.iterdir()) == ["faces.csv", "fig2.png"]


def test_unreadable_image_alone_gives_one_line_and_writes_nothing(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a JPEG")
    out = tmp_path / "out"
    proc = run_cli("blendshapes", broken, "--csv", out / "faces.csv", "--plot", out / "fig2.png")
    assert_user_error(proc, "cannot read", "broken.jpg")
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_image(tmp_path):
    assert_user_error(run_cli("blendshapes", tmp_path / "nope.png"), "image not found")


def test_plot_without_a_face_is_an_error(media, tmp_path):
    plot = tmp_path / "fig2.png"
    proc = run_cli("blendshapes", media / "free-mountain-vector-01.jpg", "--plot", plot)
    assert_user_error(proc, "no face found")
    assert not plot.exists()
