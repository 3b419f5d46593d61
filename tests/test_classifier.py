"""The bundled classifiers: loadable without PyTorch, honest sidecars, real faces in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emoblend.classify.classifier import DEFAULT_MODEL, available_models, load_classifier
from emoblend.errors import ClassifierError
from emoblend.io.images import read_image


def test_default_and_paper_models_are_bundled():
    names = available_models()
    assert DEFAULT_MODEL in names and "paper-lstm" in names
    assert load_classifier().name == DEFAULT_MODEL
    paper = load_classifier("paper-lstm")
    assert paper.info.raw["architecture"]["units"] == [52, 16, 48, 44]
    assert paper.info.raw["architecture"]["activation"] == "selu"
    assert paper.info.raw["parameters"] == 44_631
    assert not paper.needs_landmarks


@pytest.mark.parametrize("name", available_models())
def test_every_bundled_sidecar_reports_its_data_and_test_metrics(name):
    info = load_classifier(name).info.raw
    assert info["name"] == name
    assert len(info["training_data_sha256"]) == 64
    test = info["metrics"]["test"]
    assert 0.5 < test["accuracy"] < 1 and 0.4 < test["macro_f1"] < 1
    assert np.array(test["confusion_matrix"]).sum() == test["evaluated"]


@pytest.mark.parametrize("name", available_models())
def test_a_real_face_gets_probabilities(name, landmarker, media):
    image = read_image(media / "0-f15-hao-ph.jpg")  # a posed happy face, RGB
    face = landmarker.detect(image)[0]
    classifier = load_classifier(name)
    p = classifier.predict_face(face, image, color="rgb")  # the image: for crop readers
    assert p.shape == (len(classifier.classes),) and abs(p.sum() - 1) < 1e-5
    assert classifier.classes[int(p.argmax())] == "happy"
    crops = (classifier.crops(image, np.stack([face.landmarks] * 3), color="rgb")
             if classifier.needs_crop else None)
    batch = classifier.predict_proba(
        np.stack([face.blendshapes] * 3),
        np.stack([face.landmarks] * 3),
        np.stack([face.matrix] * 3),
        crops,
    )
    np.testing.assert_allclose(batch, np.stack([p] * 3), atol=1e-6)


def _kind(name: str) -> str:
    return load_classifier(name).info.raw["architecture"]["kind"]


@pytest.mark.parametrize("name", [n for n in available_models() if _kind(n) != "fused"])
def test_bundled_graph_equals_pytorch_within_1e5(name, fer_table):
    """Rebuild each shipped model in PyTorch from its ONNX weights; outputs must agree.
    (A fused graph's export folds its batch norms, so its names differ from the network's:
    its round trip is checked when it is exported, see the next test.)"""
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from emoblend.classify.classifier import table_features
    from emoblend.features.table import detected_mask
    from emoblend.train.models import ModelConfig, Probabilities, build_model

    classifier = load_classifier(name)
    weights = {
        init.name.removeprefix("model."): torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in onnx.load(str(classifier.path)).graph.initializer
    }
    config = ModelConfig.from_dict(classifier.info.raw["architecture"])
    model = build_model(config, classifier.n_features)
    model.load_state_dict(weights)
    table = pd.read_parquet(fer_table)
    x = table_features(classifier.info, table[detected_mask(table)])
    with torch.no_grad():
        want = Probabilities(model.eval())(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(classifier.predict_features(x), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", [n for n in available_models() if _kind(n) == "fused"])
def test_bundled_fused_graph_was_checked_against_pytorch(name):
    info = load_classifier(name).info.raw
    assert info["round_trip_max_abs_error"] < 1e-4  # export_fused: onnxruntime vs PyTorch
    assert info["inputs"]["crop"]["size"] == load_classifier(name).info.crop_size


def test_unknown_names_and_bad_shapes_are_refused(tmp_path):
    with pytest.raises(ClassifierError, match="no classifier named"):
        load_classifier("no-such-model")
    with pytest.raises(ClassifierError, match=r"\[52\]"):
        load_classifier("landmark-mlp").predict_proba(np.zeros(27))
    with pytest.raises(ClassifierError, match="NaN"):
        load_classifier("landmark-mlp").predict_proba(np.full(52, np.nan))
    (tmp_path / "lonely.onnx").write_bytes(b"")
    with pytest.raises(ClassifierError, match="sidecar"):
        load_classifier(tmp_path / "lonely.onnx")
