"""Training on a small real feature table (FER2013 rows through the real landmarker)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_user_error, run_cli  # noqa: E402

from emoblend.train.data import load_splits  # noqa: E402
from emoblend.train.loop import TrainConfig, calibrate, train  # noqa: E402

FAST = dict(model="dense", features="52", epochs=15, lr=3e-3, patience=50, seed=0)


def test_training_reduces_the_loss_and_beats_chance(fer_table, tmp_path):
    result = train(fer_table, tmp_path / "run", TrainConfig(**FAST), progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.8 * losses[0]
    # Chance on 3 classes is 1/3; always answering the majority class ("unknown") scores
    # its share of the validation rows. The model must beat both.
    splits = load_splits(fer_table, "52")
    majority = np.bincount(splits.y_val).max() / len(splits.y_val)
    assert result.val_uncalibrated["accuracy"] > max(1 / 3, majority)
    assert result.val["macro_f1"] > 1 / 3
    for name in (
        "log.csv",
        "curves.png",
        "best.pt",
        "last.pt",
        "model.pt",
        "model.onnx",
        "model.json",
        "config.json",
        "metrics.json",
    ):
        assert (tmp_path / "run" / name).is_file(), name
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    assert list(log["epoch"]) == list(range(1, 16))
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1"} <= set(log.columns)


def test_paper_lstm_trains(fer_table, tmp_path):
    # The faithful selu-LSTM; 52 features because this small table has too few images for the
    # paper's selection rule (> 100 images above 0.4), which the next test checks.
    config = TrainConfig(model="paper-lstm", features="52", epochs=3, patience=50)
    result = train(fer_table, tmp_path / "paper", config, progress=False, export=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    meta = json.loads((tmp_path / "paper" / "metrics.json").read_text())
    assert meta["n_features"] == 52
    assert meta["model_config"]["activation"] == "selu"


def test_blendshape_selection_follows_the_papers_rule(fer_table):
    from emoblend.errors import DatasetError
    from emoblend.face.blendshapes import BLENDSHAPE_NAMES

    table = pd.read_parquet(fer_table)
    train_rows = table[(table["split"] == "train") & (table["augmentation"] == "none")]
    above = (train_rows[list(BLENDSHAPE_NAMES)] > 0.4).sum()
    if (above > 100).any():
        splits = load_splits(fer_table, "27")
        assert splits.blendshapes == [n for n in BLENDSHAPE_NAMES if above[n] > 100]
    else:
        with pytest.raises(DatasetError, match="--features 52"):
            load_splits(fer_table, "27")
    # Repeating the training rows 4 times pushes counts past 100: the rule then selects.
    big = pd.concat([table] + [train_rows] * 3, ignore_index=True)
    kept = load_splits(big, "27").blendshapes
    assert kept == [n for n in BLENDSHAPE_NAMES if 4 * above[n] > 100]
    assert 0 < len(kept) < 52


def test_resume_continues_exactly_where_training_stopped(fer_table, tmp_path):
    config = TrainConfig(**{**FAST, "epochs": 4})
    whole = train(fer_table, tmp_path / "whole", config, progress=False, export=False)

    def stop_after_two(epoch, _metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fer_table, tmp_path / "cut", config, progress=False, on_epoch=stop_after_two)
    resumed = train(fer_table, tmp_path / "cut", resume=True, progress=False, export=False)
    assert [h["epoch"] for h in resumed.history] == list(range(1, 5))
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)


def test_calibration_bias_never_lowers_the_objective_it_maximises():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + np.eye(3)[y] * 0.8 + np.array([0.0, 1.0, 0.0])

    def objective(z):
        pred = z.argmax(1)
        f1 = [
            2 * ((pred == c) & (y == c)).sum() / max((pred == c).sum() + (y == c).sum(), 1)
            for c in range(3)
        ]
        return np.mean(f1) + (pred == y).mean()

    bias = calibrate(logits, y)
    assert bias[1] == 0.0
    assert objective(logits + bias) >= objective(logits)


def test_train_cli_writes_a_model_and_rejects_bad_options(fer_table, tmp_path):
    proc = run_cli(
        "train",
        fer_table,
        "--out",
        tmp_path / "cli",
        "--model",
        "dense",
        "--features",
        "52",
        "--epochs",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    assert "validation accuracy" in proc.stdout
    assert (tmp_path / "cli" / "model.onnx").is_file()
    assert_user_error(
        run_cli("train", fer_table, "--out", tmp_path / "x", "--model", "cnn"), "unknown --model"
    )
    assert_user_error(
        run_cli("train", fer_table, "--out", tmp_path / "x", "--features", "30"), "--features"
    )
    assert_user_error(
        run_cli("train", tmp_path / "none.parquet", "--out", tmp_path / "x"), "not found"
    )
    assert_user_error(
        run_cli("train", fer_table, "--out", tmp_path / "empty", "--resume"), "nothing to resume"
    )


def test_tune_cli_writes_a_study_summary(fer_table, tmp_path):
    proc = run_cli(
        "tune",
        fer_table,
        "--out",
        tmp_path / "study",
        "--model",
        "dense",
        "--trials",
        "3",
        "--epochs",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "study" / "study.json").read_text())
    assert summary["trials"] == 3 and summary["complete"] >= 1
    assert {"layers", "lr", "weight_decay", "class_weights", "features", "activation"} <= set(
        summary["best_params"]
    )
    assert (tmp_path / "study" / "history.png").is_file()
    assert (tmp_path / "study" / "trials.csv").is_file()


def test_mirror_averaging_makes_predictions_symmetric():
    from emoblend.face.blendshapes import BLENDSHAPE_NAMES
    from emoblend.train.models import build_model

    model = build_model("dense", 52, mirror=True).eval()
    model.set_mirror(list(BLENDSHAPE_NAMES))
    x = torch.rand(6, 52)
    swapped = [
        n.replace("Left", "@").replace("Right", "Left").replace("@", "Right")
        for n in BLENDSHAPE_NAMES
    ]
    mirrored = x[:, [BLENDSHAPE_NAMES.index(n) for n in swapped]]
    assert not torch.equal(x, mirrored)
    torch.testing.assert_close(model(x), model(mirrored))


def test_cli_choices_match_the_presets_and_losses():
    """The CLI keeps torch-free copies of the model and loss names; they must not drift."""
    from emoblend.cli.train_cmd import LOSSES, MODELS
    from emoblend.train import losses
    from emoblend.train.models import PRESETS

    assert MODELS == tuple(PRESETS)
    assert LOSSES == losses.LOSSES


def test_mirroring_is_refused_for_landmark_models(fer_table, tmp_path):
    """Mirroring swaps Left/Right blendshapes only; a landmark model must not half-mirror."""
    from emoblend.errors import EmoblendError

    config = TrainConfig(model="dense", features="52", landmarks="contour-affine", mirror=True,
                         epochs=1)
    with pytest.raises(EmoblendError, match="mirrors blendshapes only"):
        train(fer_table, tmp_path / "run", config, progress=False)
