"""The training loop: read it top to bottom.

AdamW with amsgrad and weight decay 0.004, global gradient-norm clipping at 1, batch 128,
seeded (torch, numpy, batch order). The model with the best validation loss is kept
(``best.pt``); ``last.pt`` holds everything needed to resume (model, optimiser, schedule,
random states, history). Training stops early when the validation loss has not improved for
``patience`` epochs. Afterwards a per-class logit bias is fitted on validation
(:func:`calibrate`), the final model is saved as ``model.pt`` and exported as ``model.onnx``
+ ``model.json``. Outputs in the run folder: ``config.json``, ``log.csv``, ``curves.png``.

The paper trained with a learning rate of 1.0955e-6 for up to 5,000 epochs
(``paper_schedule``); the default, a OneCycle schedule peaking at 3e-3, gets to the same
place in a few minutes on a CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import EmoblendError
from ..io.atomic import atomic_path, check_output, write_text
from ..labels import CLASSES
from ..progress import progress_bar
from .data import Splits, load_splits
from .losses import class_weights, make_loss
from .models import PRESETS, Classifier, ModelConfig, build_model


@dataclass(frozen=True)
class TrainConfig:
    model: str = "paper-lstm"  # a preset in models.PRESETS
    features: str = "27"  # 27 (the paper's selection) | 52
    landmarks: str | None = None  # a features.landmarks preprocessing name, or None
    loss: str = "ce"  # ce | focal | mse
    class_weights: bool = False
    epochs: int = 24  # one OneCycle schedule; the kept epoch is the best validation loss
    lr: float = 3e-3  # peak learning rate of the OneCycle schedule
    schedule: str = "onecycle"  # onecycle | constant
    weight_decay: float = 0.004
    batch_size: int = 128
    clip: float = 1.0
    patience: int = 12  # epochs without a better validation loss before stopping
    seed: int = 0
    calibrate: bool = True  # fit the per-class logit bias on validation
    max_minutes: float | None = None  # stop (as early stopping would) after this long
    units: tuple[int, ...] | None = None  # override the preset's layer sizes
    activation: str | None = None  # override the preset's activation
    dropout: float | None = None
    mirror: bool | None = None  # average with the mirrored face (default: the preset's)

    def model_config(self) -> ModelConfig:
        base = PRESETS[self.model]
        changes = {
            k: v
            for k, v in (
                ("units", self.units),
                ("activation", self.activation),
                ("dropout", self.dropout),
                ("mirror", self.mirror),
            )
            if v is not None
        }
        return replace(base, **changes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["units"] = list(self.units) if self.units else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        if data.get("units"):
            data["units"] = tuple(data["units"])
        return cls(**data)


PAPER_SCHEDULE = {"lr": 1.0955e-6, "epochs": 5000, "schedule": "constant", "patience": 50}


@dataclass
class TrainResult:
    out_dir: Path
    model: Classifier
    history: list[dict]
    best_epoch: int
    val: dict  # validation metrics of the final (calibrated) model
    val_uncalibrated: dict
    seconds: float
    blendshapes: list[str]
    extra: dict = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def scores(y: np.ndarray, logits: np.ndarray) -> dict:
    """Accuracy, macro-F1 and cross-entropy of logits against labels (cheap, for every epoch)."""
    pred = logits.argmax(1)
    cm = np.bincount(y * 3 + pred, minlength=9).reshape(3, 3)
    tp = np.diag(cm).astype(float)
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return {
        "accuracy": float(tp.sum() / len(y)),
        "macro_f1": float(f1.mean()),
        "cross_entropy": float(-logp[np.arange(len(y)), y].mean()),
    }


def calibrate(
    logits: np.ndarray, y: np.ndarray, span: float = 2.0, step: float = 0.05
) -> np.ndarray:
    """Per-class logit bias maximising validation accuracy + macro-F1 (the unknown class fixed
    at 0: softmax ignores a common shift). A decision threshold, fitted on validation only."""
    grid = np.arange(-span, span + step / 2, step)
    best, best_bias = -1.0, np.zeros(3, np.float32)
    base = np.asarray(logits, np.float64)
    for b_happy in grid:
        shifted = base + np.array([b_happy, 0.0, 0.0])
        for b_sad in grid:
            pred = (shifted + np.array([0.0, 0.0, b_sad])).argmax(1)
            cm = np.bincount(y * 3 + pred, minlength=9).reshape(3, 3)
            tp = np.diag(cm)
            f1 = (2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)).mean()
            value = f1 + tp.sum() / len(y)
            if value > best + 1e-12:
                best, best_bias = value, np.array([b_happy, 0.0, b_sad], np.float32)
    return best_bias


@torch.no_grad()
def predict_logits(model: Classifier, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    model.eval()
    out = [model(torch.from_numpy(x[i : i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, 3), np.float32)


def _save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _write_log(history: list[dict], path: Path) -> None:
    import pandas as pd

    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)


def train(
    table: str | os.PathLike | Splits,
    out_dir: str | os.PathLike,
    config: TrainConfig = TrainConfig(),
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch=None,
    export: bool = True,
) -> TrainResult:  # noqa: ANN001 - callable
    """Train a model on ``table`` into ``out_dir``; see the module docstring.

    ``on_epoch(epoch, val_metrics)`` is called after each epoch (Optuna pruning hooks in here
    and may raise to stop). Returns the final model and its validation figures.
    """
    out = Path(out_dir)
    check_output(out, folder=True)  # a bad --out fails now, not after the first epoch
    torch.set_num_threads(max(1, int(os.environ.get("EMOBLEND_TRAIN_THREADS", "1"))))
    last_path, best_path = out / "last.pt", out / "best.pt"
    state = None
    if resume:
        if not last_path.is_file():
            raise EmoblendError(f"nothing to resume in {out}: no last.pt; train without --resume")
        state = torch.load(last_path, weights_only=False)
        config = TrainConfig.from_dict(state["config"])
    splits = (
        table
        if isinstance(table, Splits)
        else load_splits(table, config.features, config.landmarks)
    )
    out.mkdir(parents=True, exist_ok=True)  # once the table is known good: no empty run folder
    seed_everything(config.seed)
    model = build_model(config.model_config(), splits.n_features)
    if model.config.mirror:
        if splits.landmarks is not None:
            raise EmoblendError(
                "mirror=True mirrors blendshapes only; train landmark models without it"
            )
        model.set_mirror(splits.blendshapes)
    if model.config.standardize:
        model.mean.copy_(torch.from_numpy(splits.x_train.mean(0)))
        model.scale.copy_(torch.from_numpy(np.maximum(splits.x_train.std(0), 1e-3)))
    weights = class_weights(splits.y_train) if config.class_weights else None
    loss_fn = make_loss(config.loss, weights)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, amsgrad=True, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(splits.x_train) / config.batch_size)
    if config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
        )
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    order = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    best_loss, best_epoch, bad_epochs, start_epoch, elapsed = math.inf, 0, 0, 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        order.set_state(state["order"])
        torch.set_rng_state(state["torch_rng"])
        history, best_loss, best_epoch = state["history"], state["best_loss"], state["best_epoch"]
        bad_epochs, start_epoch, elapsed = state["bad_epochs"], state["epoch"], state["seconds"]
    write_text(
        out / "config.json",
        json.dumps(
            {
                "train": config.to_dict(),
                "model": model.config.to_dict(),
                "blendshapes": splits.blendshapes,
                "landmarks": splits.landmarks,
                "training_data_sha256": splits.sha256,
                "undetected_dropped": splits.undetected,
                "rows": {"train": len(splits.y_train), "val": len(splits.y_val)},
            },
            indent=1,
        ),
    )

    x_train = torch.from_numpy(np.array(splits.x_train, np.float32))
    y_train = torch.from_numpy(np.array(splits.y_train, np.int64))
    started = time.perf_counter() - elapsed
    done = state is not None and state.get("finished", False)
    bar = progress_bar(enabled=progress, transient=False)
    with bar:
        task = bar.add_task("training", total=config.epochs, completed=start_epoch)
        for epoch in range(start_epoch, config.epochs):
            if done:
                break
            model.train()
            total, seen, correct = 0.0, 0, 0
            for idx in torch.randperm(len(x_train), generator=order).split(config.batch_size):
                logits = model(x_train[idx])
                loss = loss_fn(logits, y_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                optimizer.step()
                scheduler.step()
                total += loss.item() * len(idx)
                seen += len(idx)
                correct += int((logits.argmax(1) == y_train[idx]).sum())
            val_logits = predict_logits(model, splits.x_val)
            val = scores(splits.y_val, val_logits)
            val_loss = float(loss_fn(torch.from_numpy(val_logits), torch.from_numpy(splits.y_val)))
            row = {
                "epoch": epoch + 1,
                "lr": scheduler.get_last_lr()[0],
                "train_loss": total / seen,
                "train_accuracy": correct / seen,
                "val_loss": val_loss,
                "val_accuracy": val["accuracy"],
                "val_macro_f1": val["macro_f1"],
                "seconds": round(time.perf_counter() - started, 2),
            }
            history.append(row)
            if val_loss < best_loss - 1e-6:
                best_loss, best_epoch, bad_epochs = val_loss, epoch + 1, 0
                _save({"model": model.state_dict(), "epoch": epoch + 1}, best_path)
            else:
                bad_epochs += 1
            out_of_time = (
                config.max_minutes is not None and row["seconds"] > 60 * config.max_minutes
            )
            done = bad_epochs >= config.patience or out_of_time or epoch + 1 == config.epochs
            _save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "order": order.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    "epoch": epoch + 1,
                    "seconds": row["seconds"],
                    "finished": done,
                    "config": config.to_dict(),
                },
                last_path,
            )
            _write_log(history, out / "log.csv")
            bar.update(
                task,
                completed=epoch + 1,
                description=(
                    f"epoch {epoch + 1} val loss {val_loss:.4f} acc {val['accuracy']:.3f} "
                    f"F1 {val['macro_f1']:.3f}"
                ),
            )
            if on_epoch is not None:
                on_epoch(epoch + 1, {**val, "loss": val_loss})
    seconds = time.perf_counter() - started
    return finish(out, model, splits, config, history, best_epoch, seconds, export=export)


def finish(
    out: Path,
    model: Classifier,
    splits: Splits,
    config: TrainConfig,
    history: list[dict],
    best_epoch: int,
    seconds: float,
    export: bool,
) -> TrainResult:
    """Best checkpoint -> calibration on validation -> model.pt, curves.png, model.onnx."""
    from .figures import plot_training_curves

    model.load_state_dict(torch.load(out / "best.pt", weights_only=False)["model"])
    model.log_prior.zero_()
    logits = predict_logits(model, splits.x_val)
    raw = scores(splits.y_val, logits)
    bias = calibrate(logits, splits.y_val) if config.calibrate else np.zeros(3, np.float32)
    model.log_prior.copy_(torch.from_numpy(bias))
    val = scores(splits.y_val, logits + bias)  # forward() adds log_prior to the same logits
    meta = {
        "blendshapes": splits.blendshapes,
        "landmarks": splits.landmarks,
        "training_data_sha256": splits.sha256,
        "train_config": config.to_dict(),
        "model_config": model.config.to_dict(),
        "n_features": splits.n_features,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "train_seconds": round(seconds, 1),
        "log_prior": model.log_prior.tolist(),
        "metrics": {"val": val, "val_uncalibrated": raw},
        "rows": {"train": len(splits.y_train), "val": len(splits.y_val)},
        "undetected_dropped": splits.undetected,
    }
    _save({"model": model.state_dict(), **meta}, out / "model.pt")
    write_text(out / "metrics.json", json.dumps(meta, indent=1))
    if history:
        plot_training_curves(history, out / "curves.png", best_epoch=best_epoch)
    if export:
        from .export import export_run

        export_run(out, out / "model.onnx", name=f"{config.model}-{out.name}")
    return TrainResult(out, model, history, best_epoch, val, raw, seconds, splits.blendshapes, meta)


__all__ = [
    "TrainConfig",
    "TrainResult",
    "PAPER_SCHEDULE",
    "train",
    "calibrate",
    "scores",
    "CLASSES",
]
