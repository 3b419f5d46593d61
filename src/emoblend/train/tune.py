"""Hyperparameter search with Optuna (the paper used KerasTuner).

Search space: number of layers and units per layer, activation, learning rate, weight decay,
class weights and the feature set (the paper's selection or all 52). Each trial trains with
the normal loop; its score is validation macro-F1 + accuracy after calibration -- the test
split is never read. A median pruner stops trials whose per-epoch validation score trails the
median of earlier trials. The study is written as ``study.json`` (summary), ``study.md``,
``trials.csv`` and ``history.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DatasetError, EmoblendError
from ..io.atomic import atomic_path, write_text
from .data import load_splits
from .loop import TrainConfig, train

ACTIVATIONS = {"lstm": ["tanh", "selu"], "gru": ["tanh"], "dense": ["relu", "gelu", "selu"]}
UNITS = [16, 32, 48, 64, 96, 128]


def suggest(
    trial,
    family: str,
    epochs: int,
    seed: int,  # noqa: ANN001
    feature_sets: tuple[str, ...] = ("27", "52"),
) -> TrainConfig:
    """One point of the search space as a training config."""
    layers = trial.suggest_int("layers", 1, 4 if family != "dense" else 3)
    units = tuple(trial.suggest_categorical(f"units_{i}", UNITS) for i in range(layers))
    return TrainConfig(
        model="paper-lstm" if family == "lstm" else family,
        units=units,
        activation=trial.suggest_categorical("activation", ACTIVATIONS[family]),
        lr=trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-4, 3e-2, log=True),
        class_weights=trial.suggest_categorical("class_weights", [False, True]),
        features=trial.suggest_categorical("features", list(feature_sets)),
        epochs=epochs,
        patience=max(3, epochs // 3),
        seed=seed,
    )


def run_study(
    table: str | os.PathLike,
    out: str | os.PathLike,
    *,
    trials: int = 12,
    epochs: int = 20,
    family: str = "lstm",
    seed: int = 0,
    timeout_minutes: float | None = None,
) -> dict:
    import optuna

    if family not in ACTIVATIONS:
        raise EmoblendError(f"--model must be one of {', '.join(ACTIVATIONS)} for tuning")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache: dict[str, object] = {"52": load_splits(table, "52")}  # a bad table stops here
    try:
        cache["27"] = load_splits(table, "27")
    except DatasetError:  # too few images for the paper's selection: search 52 only
        pass
    feature_sets = tuple(sorted(cache, key=int))

    def objective(trial) -> float:  # noqa: ANN001
        config = suggest(trial, family, epochs, seed, feature_sets)

        def report(epoch: int, val: dict) -> None:
            trial.report(val["macro_f1"] + val["accuracy"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = train(
            cache[config.features],
            out / f"trial-{trial.number}",
            config,
            progress=False,
            on_epoch=report,
            export=False,
        )
        trial.set_user_attr("val_accuracy", result.val["accuracy"])
        trial.set_user_attr("val_macro_f1", result.val["macro_f1"])
        trial.set_user_attr("seconds", round(result.seconds, 1))
        return result.val["macro_f1"] + result.val["accuracy"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3),
    )
    study.optimize(
        objective,
        n_trials=trials,
        timeout=None if timeout_minutes is None else 60 * timeout_minutes,
        show_progress_bar=True,
    )
    return write_summary(study, out, table, family)


def write_summary(study, out: Path, table, family: str) -> dict:  # noqa: ANN001
    import optuna

    from ..io.figures import plt, save_figure

    frame = study.trials_dataframe()
    with atomic_path(out / "trials.csv") as tmp:
        frame.to_csv(tmp, index=False)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise EmoblendError("no trial completed; give more --trials or --epochs")
    best = study.best_trial
    summary = {
        "table": str(table),
        "family": family,
        "objective": "validation macro-F1 + accuracy (calibrated); test split never read",
        "trials": len(study.trials),
        "complete": len(complete),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "best_val": best.user_attrs,
    }
    write_text(out / "study.json", json.dumps(summary, indent=1))
    lines = [
        f"# Tuning study ({family})",
        "",
        summary["objective"] + ".",
        "",
        f"{summary['trials']} trials: {summary['complete']} complete, "
        f"{summary['pruned']} pruned. Best: trial {best.number}, score {best.value:.4f}.",
        "",
        "| trial | state | score | params |",
        "|---|---|---|---|",
    ]
    for t in study.trials:
        value = f"{t.value:.4f}" if t.value is not None else "-"
        lines.append(f"| {t.number} | {t.state.name.lower()} | {value} | {t.params} |")
    write_text(out / "study.md", "\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([t.number for t in complete], [t.value for t in complete], "o", label="trial")
    best_so_far, values = -1.0, []
    for t in complete:
        best_so_far = max(best_so_far, t.value)
        values.append(best_so_far)
    ax.plot([t.number for t in complete], values, "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("val macro-F1 + accuracy")
    ax.legend()
    save_figure(fig, out / "history.png")
    return summary
