"""A seven-class model flows through everything that reads a classifier, unchanged.

The model here is real: a small dense network trained on the session's real FER2013 feature
rows against FER2013's seven emotion codes, exported to ONNX by emoblend's own exporter, with a
sidecar naming the seven labels. It is not meant to be good, only real, so every figure below
is checked against the model's own outputs, not against fixed numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from emoblend.face.blendshapes import BLENDSHAPE_NAMES
from emoblend.io.timeline import timeline_columns
from emoblend.labels import CLASSES, FER_EMOTIONS

torch = pytest.importorskip("torch", reason="training a model needs the [train] extra")


@pytest.fixture(scope="module")
def seven_class_model(fer_table, tmp_path_factory):
    """(path to a real seven-class .onnx with its sidecar, the table it was trained on)."""
    from emoblend.train.export import export_onnx
    from emoblend.train.models import build_model

    table = pd.read_parquet(fer_table)
    train = table[(table["split"] == "train") & table["detected"]]
    x = torch.tensor(train[list(BLENDSHAPE_NAMES)].to_numpy(np.float32))
    y = torch.tensor(train["emotion"].to_numpy(np.int64))
    torch.manual_seed(0)
    model = build_model("dense", len(BLENDSHAPE_NAMES), n_classes=len(FER_EMOTIONS))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
    model.eval()
    path = tmp_path_factory.mktemp("seven") / "seven.onnx"
    export_onnx(model, path)
    sidecar = {"name": "seven", "version": "0.0.1", "classes": list(FER_EMOTIONS),
               "inputs": {"blendshapes": list(BLENDSHAPE_NAMES), "landmarks": None}}
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def test_the_classifier_reports_the_sidecar_labels(seven_class_model, landmarker, media):
    from emoblend.classify.classifier import load_classifier
    from emoblend.io.images import read_image

    classifier = load_classifier(seven_class_model)
    assert classifier.classes == FER_EMOTIONS
    face = landmarker.detect(read_image(media / "single_face.jpg"))[0]
    p = classifier.predict_face(face)
    assert p.shape == (7,) and p.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_mismatched_or_unknown_label_set_is_refused(seven_class_model, tmp_path):
    from emoblend.classify.classifier import load_classifier
    from emoblend.errors import ClassifierError

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(seven_class_model.read_bytes())
    sidecar = json.loads(seven_class_model.with_suffix(".json").read_text())
    onnx.with_suffix(".json").write_text(json.dumps({**sidecar, "classes": list(CLASSES)}))
    with pytest.raises(ClassifierError, match="outputs 7 probabilities but its sidecar names 3"):
        load_classifier(onnx)
    shuffled = [*FER_EMOTIONS[1:], FER_EMOTIONS[0]]
    onnx.with_suffix(".json").write_text(json.dumps({**sidecar, "classes": shuffled}))
    with pytest.raises(ClassifierError, match="not a known label set"):
        load_classifier(onnx)


def test_video_timeline_overlay_and_plot_carry_seven_labels(seven_class_model, media, tmp_path):
    timeline, plot, out = tmp_path / "t.csv", tmp_path / "t.png", tmp_path / "a.mp4"
    proc = run_cli("video", media / "single_face.mp4", "--model", seven_class_model,
                   "--timeline", timeline, "--plot", plot, "-o", out)
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(timeline)
    assert tuple(rows.columns) == timeline_columns(FER_EMOTIONS)
    assert len(rows) == 72
    probs = rows[[f"p_{c}" for c in FER_EMOTIONS]].to_numpy()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4)
    assert (np.array(FER_EMOTIONS)[probs.argmax(1)] == rows["label"]).all()
    # warm-up: a seven-class set has no "unknown" class, the stable label still says so
    assert rows["stable_label"].iloc[0] == "unknown"
    assert set(rows["stable_label"]) <= {*FER_EMOTIONS, "unknown"}
    assert set(rows["stable_label"].iloc[10:]) <= set(FER_EMOTIONS)
    assert plot.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 10_000


def test_images_csv_has_a_column_per_label(seven_class_model, media, tmp_path):
    csv = tmp_path / "faces.csv"
    proc = run_cli("images", media / "single_face.jpg", "--model", seven_class_model,
                   "--csv", csv)
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(csv)
    assert [c for c in rows.columns if c.startswith("p_")] == [f"p_{c}" for c in FER_EMOTIONS]
    assert rows["label"].iloc[0] in FER_EMOTIONS


def test_evaluate_scores_seven_classes_against_the_emotion_codes(seven_class_model, fer_table,
                                                                 tmp_path):
    from emoblend.classify.classifier import load_classifier

    proc = run_cli("evaluate", fer_table, "--split", "test", "--model", seven_class_model,
                   "--json", "--plots", tmp_path / "plots")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["labels"] == list(FER_EMOTIONS)
    table = pd.read_parquet(fer_table)
    test = table[table["split"] == "test"]
    found = test[test["detected"]]
    proba = load_classifier(seven_class_model).predict_proba(
        found[list(BLENDSHAPE_NAMES)].to_numpy())
    pred, truth = proba.argmax(1), found["emotion"].to_numpy()
    confusion = np.zeros((7, 7), int)
    np.add.at(confusion, (truth, pred), 1)
    assert got["confusion_matrix"] == confusion.tolist()
    assert got["accuracy"] == pytest.approx((pred == truth).mean())
    assert got["undetected"] == int((~test["detected"]).sum())
    # faceless rows have no right answer among seven emotions: they count as errors
    assert got["with_undetected_as_errors"]["accuracy"] == pytest.approx(
        (pred == truth).sum() / len(test))
    assert "with_undetected_as_unknown" not in got
    assert (tmp_path / "plots" / "confusion_matrix.png").stat().st_size > 1000


def test_stabilizer_warm_up_in_a_set_without_unknown():
    from emoblend.realtime.stabilizer import Stabilizer, StabilizerOptions

    stabilizer = Stabilizer(StabilizerOptions(warmup_ms=100), labels=FER_EMOTIONS)
    p = np.full(7, 0.05)
    p[FER_EMOTIONS.index("surprise")] = 0.7
    assert stabilizer.update(p, 0.0) == (None, 0.0)
    label, confidence = stabilizer.update(p, 150.0)
    assert FER_EMOTIONS[label] == "surprise" and confidence == pytest.approx(0.7)
