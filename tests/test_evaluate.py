"""`emoblend evaluate` on real FER2013 feature rows: figures checked by hand, bad input refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, run_cli

from emoblend.classify.classifier import load_classifier
from emoblend.face.blendshapes import BLENDSHAPE_NAMES
from emoblend.features.table import LANDMARK_COLUMNS, MATRIX_COLUMNS
from emoblend.labels import CLASSES

GEOMETRY = "landmark-mlp"
"""The model these tests score: it reads the tiny table's blendshapes and landmarks (the
table has no face crops; crop-reading models are evaluated in test_fused)."""


@pytest.fixture(scope="module")
def tiny(fer_table, tmp_path_factory):
    """Twelve real test-split rows (all three classes) plus two undetected faces, as CSV."""
    table = pd.read_parquet(fer_table)
    test = table[table["split"] == "test"]
    found = test[test["detected"]]
    picked = pd.concat([found[found["label"] == c].head(4) for c in CLASSES])
    missed = test[~test["detected"]].head(2)
    assert len(picked) == 12 and len(missed) == 2
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    pd.concat([picked, missed]).to_csv(path, index=False)
    return path


def test_figures_match_a_count_by_hand(tiny, tmp_path):
    proc = run_cli(
        "evaluate", tiny, "--model", GEOMETRY, "--json", "--errors", tmp_path / "errors.csv"
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)  # exactly one JSON object on stdout

    rows = pd.read_csv(tiny)
    found = rows[rows[list(BLENDSHAPE_NAMES)].notna().all(axis=1)]
    classifier = load_classifier(GEOMETRY)  # the runtime path: 52 scores + landmarks in
    landmarks = matrices = None
    if classifier.needs_landmarks:
        landmarks = found[list(LANDMARK_COLUMNS)].to_numpy().reshape(-1, 478, 3)
        matrices = found[list(MATRIX_COLUMNS)].to_numpy().reshape(-1, 4, 4)
    proba = classifier.predict_proba(found[list(BLENDSHAPE_NAMES)].to_numpy(), landmarks, matrices)
    truth = [CLASSES.index(label) for label in found["label"]]
    pred = [int(np.argmax(p)) for p in proba]
    # By hand: count, then the textbook formulas.
    confusion = [[0, 0, 0] for _ in range(3)]
    for t, p in zip(truth, pred, strict=True):
        confusion[t][p] += 1
    f1s = []
    for c in range(3):
        tp = confusion[c][c]
        predicted = sum(confusion[r][c] for r in range(3))
        actual = sum(confusion[c])
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        assert got["per_class"][CLASSES[c]]["precision"] == pytest.approx(precision)
        assert got["per_class"][CLASSES[c]]["recall"] == pytest.approx(recall)
        assert got["per_class"][CLASSES[c]]["support"] == actual == 4
    cross_entropy = -sum(math.log(p[t]) for p, t in zip(proba, truth, strict=True)) / 12

    assert got["rows"] == 14
    assert got["evaluated"] == 12
    assert got["undetected"] == 2
    assert sum(got["undetected_by_class"].values()) == 2
    assert got["labels"] == ["happy", "unknown", "sad"]
    assert got["confusion_matrix"] == confusion
    assert got["accuracy"] == pytest.approx(
        sum(t == p for t, p in zip(truth, pred, strict=True)) / 12
    )
    assert got["macro_f1"] == pytest.approx(sum(f1s) / 3)
    assert got["cross_entropy"] == pytest.approx(cross_entropy, rel=1e-4)

    errors = pd.read_csv(tmp_path / "errors.csv")
    wrong = sum(t != p for t, p in zip(truth, pred, strict=True))
    assert len(errors) == wrong
    assert set(errors["image_id"]) <= set(found["image_id"])
    assert (errors["label"] != errors["predicted"]).all()
    assert list(errors["p_true"]) == sorted(errors["p_true"])  # worst first


def test_text_report_and_plots(tiny, fer2013_csv, tmp_path):
    proc = run_cli(
        "evaluate",
        tiny,
        "--model",
        GEOMETRY,
        "--plots",
        tmp_path / "plots",
        "--fer2013",
        fer2013_csv,
    )
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "2 undetected" in proc.stdout
    assert "confusion matrix" in proc.stdout
    for name in ("confusion_matrix.png", "per_class.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000
    if "worst_errors.png" in proc.stdout:  # only when the model got something wrong
        assert (tmp_path / "plots" / "worst_errors.png").stat().st_size > 1000


def test_emotion_codes_work_in_place_of_labels(tiny, tmp_path):
    rows = pd.read_csv(tiny).drop(columns=["label"])
    path = tmp_path / "codes.parquet"
    rows.to_parquet(path)
    proc = run_cli("evaluate", path, "--model", GEOMETRY, "--json")
    assert proc.returncode == 0, proc.stderr
    by_label = json.loads(run_cli("evaluate", tiny, "--model", GEOMETRY, "--json").stdout)
    assert json.loads(proc.stdout)["confusion_matrix"] == by_label["confusion_matrix"]


def test_bad_inputs_get_one_line_errors(tiny, tmp_path):
    rows = pd.read_csv(tiny)
    cases = {
        "missing.csv": (rows.drop(columns=["mouthSmileLeft"]), "mouthSmileLeft"),
        "partial.csv": (
            rows.assign(jawOpen=np.where(rows.index == 0, np.nan, rows["jawOpen"])),
            "column jawOpen is empty",
        ),
        "labels.csv": (rows.assign(label="joy"), "'joy'"),
        "nolabel.csv": (rows.drop(columns=["label", "emotion"]), "neither a 'label'"),
        "header.csv": (rows.head(0), "no rows"),
    }
    for name, (frame, fragment) in cases.items():
        frame.to_csv(tmp_path / name, index=False)
        assert_user_error(run_cli("evaluate", tmp_path / name, "--model", GEOMETRY), fragment)
    (tmp_path / "empty.csv").write_text("")
    assert_user_error(run_cli("evaluate", tmp_path / "empty.csv", "--model", GEOMETRY), "empty.csv")
    assert_user_error(
        run_cli("evaluate", tmp_path / "absent.parquet", "--model", GEOMETRY), "not found"
    )
    assert_user_error(run_cli("evaluate", tiny, "--model", "no-such-model"), "no classifier")
    assert_user_error(
        run_cli("evaluate", tiny, "--model", GEOMETRY, "--split", "val"), "no rows in split"
    )
    undetected = rows[rows[list(BLENDSHAPE_NAMES)].isna().all(axis=1)]
    undetected.to_csv(tmp_path / "faceless.csv", index=False)
    assert_user_error(
        run_cli("evaluate", tmp_path / "faceless.csv", "--model", GEOMETRY), "no", "detected face"
    )
    assert not (tmp_path / "errors.csv").exists()


def test_a_landmark_model_refuses_a_table_without_landmarks(tiny):
    from emoblend.classify.classifier import ModelInfo, table_features
    from emoblend.errors import ClassifierError

    pytest.importorskip("emoblend.features.landmarks")
    from emoblend.features.landmarks import LANDMARK_PREPROCESSING

    name = next(iter(LANDMARK_PREPROCESSING))
    info = ModelInfo(name="needs-landmarks", blendshapes=BLENDSHAPE_NAMES, landmarks=name)
    rows = pd.read_csv(tiny)
    rows = rows[rows["detected"]]
    table_features(info, rows)  # with its landmark columns, the table is accepted ...
    bare = rows[[c for c in rows.columns if not c.startswith(("lm", "m0", "m1", "m2", "m3"))]]
    with pytest.raises(ClassifierError, match="needs landmark columns"):
        table_features(info, bare)  # ... without them, a clear error
