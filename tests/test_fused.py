"""The fused (crop + geometry) classifier end to end on real data: a real FER2013 build with
crops, a short real training run, the exported two-input ONNX graph, and that graph read by
the Classifier and the EmotionEstimator on real photos and a real clip."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import assert_user_error, run_cli

torch = pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")

from emoblend.classify.classifier import load_classifier  # noqa: E402
from emoblend.errors import ClassifierError  # noqa: E402
from emoblend.labels import CLASSES, FER_EMOTIONS  # noqa: E402


@pytest.fixture(scope="module")
def crop_build(fer2013_sample, face_model, tmp_path_factory):
    """`dataset build --no-caps --landmarks --crops 48` on the real 180-row sample."""
    out = tmp_path_factory.mktemp("crop_build")
    proc = run_cli(
        "dataset", "build", "--fer2013", fer2013_sample, "--out", out, "--no-caps",
        "--landmarks", "--crops", "48", "--workers", "1", "--face-model", face_model,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def fused_run(crop_build, tmp_path_factory):
    from emoblend.train.fused import FusedConfig, run_fused

    out = tmp_path_factory.mktemp("fused_run")
    config = FusedConfig(crop_size=48, widths=(16, 32, 64, 128), epochs=4, batch_size=32,
                         threads=1)
    sidecars = run_fused(crop_build / "features.parquet", out, config, progress=False,
                         log=lambda _line: None)
    return out, sidecars


def test_one_run_exports_three_calibrated_heads(fused_run):
    out, sidecars = fused_run
    assert set(sidecars) == {"3", "7", "fold"}
    for head, side in sidecars.items():
        assert (out / f"fused-{head}.onnx").is_file()
        on_disk = json.loads((out / f"fused-{head}.json").read_text())
        assert on_disk["metrics"] == side["metrics"]
        assert on_disk["classes"] == (list(FER_EMOTIONS) if head == "7" else list(CLASSES))
        assert on_disk["inputs"]["crop"]["size"] == 48
        assert on_disk["round_trip_max_abs_error"] < 1e-4
        val = on_disk["metrics"]["val"]
        assert len(val["confusion_matrix"]) == len(on_disk["classes"])
        raw = on_disk["metrics"]["val_uncalibrated"]
        assert np.sum(val["confusion_matrix"]) == np.sum(raw["confusion_matrix"]) > 0
        # the bias is fitted for accuracy + macro-F1 on val: never worse there than without
        assert val["accuracy"] + val["macro_f1"] >= raw["accuracy"] + raw["macro_f1"] - 1e-9
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log and all("val3_accuracy" in row for row in log)


def test_classifier_reads_the_crop_from_the_image(fused_run, media, landmarker):
    out, _ = fused_run
    classifier = load_classifier(out / "fused-3.onnx")
    assert classifier.needs_crop and classifier.needs_landmarks
    photo = cv2.imread(str(media / "single_face.jpg"))
    face = landmarker.detect(photo, bgr=True)[0]
    p = classifier.predict_face(face, photo)
    assert p.shape == (3,) and abs(p.sum() - 1) < 1e-5
    # the same face from an RGB copy of the image gives the same probabilities
    np.testing.assert_allclose(
        classifier.predict_face(face, np.ascontiguousarray(photo[:, :, ::-1]), color="rgb"), p,
        atol=1e-6,
    )
    # another picture under the same landmarks changes the reading: the crop reaches the graph
    noise = np.random.default_rng(0).integers(0, 256, photo.shape, dtype=np.uint8)
    assert np.abs(classifier.predict_face(face, noise) - p).max() > 1e-7
    with pytest.raises(ClassifierError, match="give the image"):
        classifier.predict_face(face)
    with pytest.raises(ClassifierError, match="crop"):
        classifier.predict_proba(face.blendshapes, face.landmarks[None], face.matrix[None])


def test_blendshape_models_still_need_no_crop(media, landmarker):
    classifier = load_classifier("blend-mlp")
    assert not classifier.needs_crop
    face = landmarker.detect(cv2.imread(str(media / "single_face.jpg")), bgr=True)[0]
    assert classifier.predict_face(face).shape == (3,)
    with pytest.raises(ClassifierError, match="reads no face crop"):
        classifier.crops(np.zeros((10, 10), np.uint8), face.landmarks[None])


def test_estimator_runs_the_fused_model_on_a_real_clip(fused_run, media):
    from emoblend.realtime.estimator import EmotionEstimator, EstimatorOptions

    out, _ = fused_run
    capture = cv2.VideoCapture(str(media / "single_face.mp4"))
    options = EstimatorOptions(classifier=out / "fused-fold.onnx")
    readings = []
    with EmotionEstimator.create_from_options(options) as estimator:
        for k in range(12):
            ok, frame = capture.read()
            assert ok
            readings += estimator.process(frame, timestamp_ms=k * 33)
        faces = estimator._landmarker.detect(frame, 12 * 33, bgr=True)
        with pytest.raises(Exception, match="pass the frame"):
            estimator.process_faces(faces, 13 * 33)
    assert len(readings) == 12
    assert all(abs(sum(r.probabilities.values()) - 1) < 1e-4 for r in readings)


def test_mirrored_inputs_are_an_involution(crop_build):
    from emoblend.train.fused import load_fused_data, mirror_inputs

    data = load_fused_data(crop_build / "features.parquet")
    x = data.x_train[:20]
    np.testing.assert_allclose(mirror_inputs(mirror_inputs(x)), x, atol=1e-5)
    assert np.abs(mirror_inputs(x) - x).max() > 1e-3


def test_train_fused_cli_rejects_bad_options(crop_build, tmp_path):
    table = crop_build / "features.parquet"
    proc = run_cli("train-fused", table, "--out", tmp_path / "r", "--heads", "5")
    assert_user_error(proc, "--heads")
    proc = run_cli("train-fused", table, "--out", tmp_path / "r", "--crops", tmp_path / "no.npy")
    assert_user_error(proc, "no face crops at")


def test_evaluate_reads_the_crops_beside_the_table(crop_build, fused_run, tmp_path):
    """`emoblend evaluate` scores a crop-reading model with the build's crops.npy: the same
    figures as the classifier run by hand on the table's features and crops."""
    from emoblend.classify.classifier import table_features
    from emoblend.features.table import detected_mask, read_crops, read_table

    out, _ = fused_run
    table_path = crop_build / "features.parquet"
    proc = run_cli("evaluate", table_path, "--model", out / "fused-3.onnx", "--split", "val",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    table = read_table(table_path)
    rows = table[(table["split"] == "val").to_numpy() & detected_mask(table)]
    classifier = load_classifier(out / "fused-3.onnx")
    proba = classifier.predict_features(table_features(classifier.info, rows),
                                        read_crops(table_path, rows.index))
    truth = rows["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    assert result["evaluated"] == len(rows) > 0
    assert result["accuracy"] == pytest.approx(float((proba.argmax(1) == truth).mean()))
    # a crops file of another size is refused with a one-line error naming the fix
    wrong = tmp_path / "crops.npy"
    np.save(wrong, np.zeros((len(table), 32, 32), np.uint8))
    proc = run_cli("evaluate", table_path, "--model", out / "fused-3.onnx", "--crops", wrong)
    assert_user_error(proc, "--crops 48")


def test_flip_averaged_graph_reads_a_face_and_its_mirror_alike(crop_build, fused_run):
    """The exported graph averages the face and its mirror image, so on real FER2013 rows it
    gives the same reading for a face and for its mirror; and it computes exactly what the
    bias was calibrated on (the flip-averaged probabilities of the checkpoint plus the bias)."""
    from emoblend.train.fused import (
        FusedConfig,
        FusedNet,
        head_log_probs,
        load_fused_data,
        mirror_inputs,
    )

    out, _ = fused_run
    data = load_fused_data(crop_build / "features.parquet")
    x, c = data.x_val, data.c_val
    classifier = load_classifier(out / "fused-fold.onnx")
    p = classifier.predict_features(x, c)
    mirrored = classifier.predict_features(mirror_inputs(x), np.ascontiguousarray(c[:, :, ::-1]))
    np.testing.assert_allclose(mirrored, p, atol=1e-4)
    saved = torch.load(out / "fused-fold.pt", weights_only=False)
    net = FusedNet(FusedConfig.from_dict(saved["config"]), saved["n_features"])
    net.load_state_dict(saved["state"])
    logits = head_log_probs(net, x, c, "fold", flip=True) + net.bias3.numpy()
    want = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(p, want, atol=1e-4)


def test_from_run_exports_a_run_again_without_training(crop_build, fused_run, tmp_path):
    """`train-fused --from-run` re-exports a run's checkpoints: with flip averaging (the
    default) the same graph as the run's own; without it, a graph that reads only the face
    as given, so a face and its mirror read differently."""
    from emoblend.train.fused import load_fused_data, mirror_inputs

    out, _ = fused_run
    table = crop_build / "features.parquet"
    for flag, folder in (("--flip-average", "again"), ("--no-flip-average", "plain")):
        proc = run_cli("train-fused", table, "--out", tmp_path / folder, "--from-run", out,
                       "--heads", "fold", flag)
        assert proc.returncode == 0, proc.stderr
    data = load_fused_data(table)
    x, c = data.x_val, data.c_val
    flipped = (mirror_inputs(x), np.ascontiguousarray(c[:, :, ::-1]))
    same = load_classifier(tmp_path / "again" / "fused-fold.onnx").predict_features(x, c)
    np.testing.assert_allclose(
        same, load_classifier(out / "fused-fold.onnx").predict_features(x, c), atol=1e-6)
    plain = load_classifier(tmp_path / "plain" / "fused-fold.onnx")
    assert np.abs(plain.predict_features(x, c) - plain.predict_features(*flipped)).max() > 1e-4
    side = json.loads((tmp_path / "plain" / "fused-fold.json").read_text())
    assert side["architecture"]["flip_average"] is False
    proc = run_cli("train-fused", table, "--out", tmp_path / "x", "--from-run", tmp_path)
    assert_user_error(proc, "train-fused")


def test_epochs_draw_the_schedule_over_a_fixed_number_of_epochs(fused_run):
    """With ``epochs`` (`train-fused --epochs N`) a run trains exactly N epochs whatever the
    machine's speed (the learning-rate schedule follows the step count), and the sidecar
    records N."""
    out, sidecars = fused_run
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]
    assert all(side["training"]["config"]["epochs"] == 4 for side in sidecars.values())
