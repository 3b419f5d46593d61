"""ONNX export: the graph equals PyTorch within 1e-5 on real features, sidecar complete."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from emoblend.classify.classifier import load_classifier  # noqa: E402
from emoblend.face.blendshapes import BLENDSHAPE_NAMES  # noqa: E402
from emoblend.train.data import load_splits  # noqa: E402
from emoblend.train.export import export_onnx, round_trip_error  # noqa: E402
from emoblend.train.loop import TrainConfig, train  # noqa: E402
from emoblend.train.models import PRESETS, Probabilities, build_model  # noqa: E402


@pytest.fixture(scope="module")
def real_features(fer_table):
    return load_splits(fer_table, "52").x_val


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_round_trip_within_1e5_for_every_variant(preset, real_features, tmp_path):
    torch.manual_seed(1)
    model = build_model(preset, 52).eval()
    with torch.no_grad():  # non-trivial buffers, so the test sees them in the graph
        if preset == "paper-lstm":
            # A freshly initialised selu-LSTM explodes (|h| ~ 800 after 4 layers: selu is
            # unbounded), amplifying float rounding to ~1e-2 in *any* two implementations,
            # even PyTorch float32 vs float64. Halving the weights gives the tame regime a
            # trained model is in (the bundled one is checked in test_classifier.py).
            for layer in model.layers:
                layer.kernel.mul_(0.5)
                layer.recurrent.mul_(0.5)
        else:
            model.mean.copy_(torch.from_numpy(real_features.mean(0)))
            model.scale.copy_(torch.from_numpy(real_features.std(0) + 0.1))
        model.log_prior.copy_(torch.tensor([0.3, 0.0, -0.2]))
    path = tmp_path / f"{preset}.onnx"
    export_onnx(model, path)
    assert round_trip_error(model, path, real_features) <= 1e-5
    graph = onnx.load(str(path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in graph.graph.input] == ["features"]
    # Batch 1 (the live path) gives the same rows as a batch.
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = session.run(None, {"features": real_features[:5]})[0]
    single = np.concatenate(
        [session.run(None, {"features": real_features[i : i + 1]})[0] for i in range(5)]
    )
    np.testing.assert_allclose(single, batch, atol=1e-6)
    np.testing.assert_allclose(batch.sum(1), 1.0, atol=1e-6)


def test_exported_run_loads_as_a_classifier_with_its_sidecar(fer_table, tmp_path):
    run = tmp_path / "run"
    train(fer_table, run, TrainConfig(model="dense", features="52", epochs=2), progress=False)
    classifier = load_classifier(run / "model.onnx")
    sidecar = json.loads((run / "model.json").read_text())
    for key in (
        "name",
        "version",
        "classes",
        "inputs",
        "preprocessing",
        "metrics",
        "training_data_sha256",
        "parameters",
        "created",
        "architecture",
    ):
        assert key in sidecar, key
    assert sidecar["inputs"]["blendshapes"] == list(BLENDSHAPE_NAMES)
    assert sidecar["round_trip_max_abs_error"] <= 1e-5
    assert len(sidecar["training_data_sha256"]) == 64
    # The runtime path (raw 52 scores in) equals the PyTorch model (features in).
    from emoblend.train.models import load_run

    model, _ = load_run(run)
    x = load_splits(fer_table, "52").x_val[:20]
    with torch.no_grad():
        want = Probabilities(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(classifier.predict_proba(x), want, atol=1e-5)
