"""``emoblend train | tune | evaluate | ablation | export``: the research path to a classifier.

``evaluate`` runs on the robot-side install (onnxruntime + scikit-learn); the others need the
``train`` extra (PyTorch, ONNX, Optuna) and say so if it is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..errors import EmoblendError, require_extra

MODELS = ("paper-lstm", "lstm", "gru", "dense")  # emoblend.train.models.PRESETS (torch-free here)
LOSSES = ("ce", "focal", "mse")  # emoblend.train.losses.LOSSES
PAPER = {
    "accuracy": 0.7199,
    "macro_f1": 0.6298,
    "confusion_matrix": [[251, 35, 5], [110, 850, 150], [21, 140, 84]],
}


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("train-fused")(train_fused)
    app.command("tune")(tune)
    app.command("evaluate")(evaluate)
    app.command("ablation")(ablation)
    app.command("export")(export)


def _need_torch() -> None:
    for module in ("torch", "onnx"):
        require_extra(module, "train", "this command")


def train_fused(
    table: Path = typer.Argument(
        ..., help="Table from `dataset build --no-caps --landmarks --crops 64` (train, val)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run folder: NAME-<head>.onnx + .json per head, log.jsonl."
    ),
    crops: Path | None = typer.Option(
        None, "--crops", help="The crops file (default: crops.npy beside the table)."
    ),
    minutes: float = typer.Option(55.0, "--minutes", help="Training time budget (wall clock)."),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Train this many epochs instead of --minutes: the same "
        "learning-rate schedule on any machine.",
    ),
    heads: str = typer.Option(
        "3,7,fold", "--heads", help="Heads to export: 3 (three classes), 7, fold (7 folded to 3)."
    ),
    name: str = typer.Option("fused", "--name", help="Model name prefix."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(2, "--threads", help="PyTorch threads."),
    flip_average: bool = typer.Option(
        True, "--flip-average/--no-flip-average",
        help="The graph also reads the mirrored face and averages (about 2x the CNN's time).",
    ),
    from_run: Path | None = typer.Option(
        None, "--from-run", help="Skip training: calibrate and export this earlier run's "
        "checkpoints (NAME-<head>.pt) into --out.", file_okay=False,
    ),
) -> None:
    """Train the fused model (CNN on the aligned face crop + blendshape/landmark MLP).

    One run trains the seven-class and three-class heads together; each exported head is
    checkpointed and bias-calibrated on the val split. The test split is never read.
    """
    import os

    # Spin-waiting OpenMP threads crawl on a shared CPU; must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _need_torch()
    from ..train.fused import HEADS, FusedConfig, reexport_fused, run_fused

    chosen = tuple(h.strip() for h in heads.split(",") if h.strip())
    bad = [h for h in chosen if h not in HEADS]
    if bad or not chosen:
        raise EmoblendError(f"--heads {heads!r}: choose from {', '.join(HEADS)}")
    if minutes <= 0:
        raise EmoblendError(f"--minutes is {minutes}; give a positive time budget")
    console = Console(stderr=True)
    if from_run is not None:  # the crop size comes from the run's checkpoints
        sidecars = reexport_fused(from_run, table, out, crops=crops, heads=chosen, name=name,
                                  flip_average=flip_average)
    else:
        config = FusedConfig(crop_size=_crop_size(table, crops), minutes=minutes, epochs=epochs,
                             seed=seed, threads=threads, flip_average=flip_average)
        sidecars = run_fused(table, out, config, crops=crops, heads=chosen, name=name,
                             log=lambda line: console.print(line, highlight=False,
                                                            soft_wrap=True))
    for side in sidecars.values():
        val = side["metrics"]["val"]
        console.print(
            f"{side['name']}: val accuracy {val['accuracy']:.4f}, macro-F1 {val['macro_f1']:.4f} "
            f"(best epoch {side['metrics']['best_epoch']}); wrote {out / side['name']}.onnx",
            highlight=False,
        )


def _crop_size(table: Path, crops: Path | None) -> int:
    """The side of the table's crops (checked like every read of them)."""
    from ..features.table import read_crops

    return int(read_crops(table, [0], crops).shape[-1])


def train(
    table: Path = typer.Argument(
        ..., help="Feature table (Parquet/CSV) with train and val splits."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run folder: checkpoints, log.csv, curves.png, model.onnx."
    ),
    model: str = typer.Option("paper-lstm", "--model", help="paper-lstm | lstm | gru | dense."),
    features: str = typer.Option(
        "27", "--features", help="27 (the paper's blendshape selection) or 52."
    ),
    landmarks: str | None = typer.Option(
        None,
        "--landmarks",
        help="Also feed landmark features built by this emoblend.features.landmarks preprocessing.",
    ),
    loss: str = typer.Option("ce", "--loss", help="ce | focal | mse."),
    weighted: bool = typer.Option(
        False, "--class-weights", help="Weight the loss by inverse class frequency."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Most epochs (default 24; 5000 with --paper-schedule)."
    ),
    lr: float | None = typer.Option(
        None, "--lr", help="Peak learning rate (default 3e-3, OneCycle)."
    ),
    units: str | None = typer.Option(
        None, "--units", help="Layer sizes, e.g. 64,32 (default: the preset's)."
    ),
    activation: str | None = typer.Option(
        None, "--activation", help="Override the preset's activation (selu, tanh, relu, gelu...)."
    ),
    dropout: float | None = typer.Option(
        None, "--dropout", min=0.0, max=0.9, help="Override the preset's dropout (dense models)."
    ),
    patience: int | None = typer.Option(
        None, "--patience", min=1, help="Early-stopping patience in epochs."
    ),
    paper_schedule: bool = typer.Option(
        False,
        "--paper-schedule",
        help="The paper's regime: constant lr 1.0955e-6 for up to 5,000 epochs.",
    ),
    no_calibrate: bool = typer.Option(
        False, "--no-calibrate", help="Skip the per-class bias fitted on validation."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (weights, batch order)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from OUT/last.pt with its saved settings."
    ),
) -> None:
    """Train a classifier: AdamW + amsgrad, clipping at 1, batch 128, early stopping on val loss."""
    if model not in MODELS:
        raise EmoblendError(f"unknown --model {model!r}; choose from {', '.join(MODELS)}")
    if loss not in LOSSES:
        raise EmoblendError(f"unknown --loss {loss!r}; choose from {', '.join(LOSSES)}")
    if features not in ("27", "52"):
        raise EmoblendError(f"--features must be 27 or 52, not {features!r}")
    _need_torch()
    from ..train.loop import PAPER_SCHEDULE, TrainConfig
    from ..train.loop import train as run

    settings = dict(PAPER_SCHEDULE) if paper_schedule else {}
    for key, value in (("epochs", epochs), ("lr", lr), ("patience", patience),
                       ("dropout", dropout)):
        if value is not None:
            settings[key] = value
    if units:
        try:
            settings["units"] = tuple(int(u) for u in units.split(","))
        except ValueError:
            raise EmoblendError(
                f"--units must be comma-separated integers, not {units!r}"
            ) from None
    config = TrainConfig(
        model=model,
        features=features,
        landmarks=landmarks,
        loss=loss,
        class_weights=weighted,
        seed=seed,
        calibrate=not no_calibrate,
        activation=activation,
        **settings,
    )
    result = run(table, out, config, resume=resume)
    console = Console()
    console.print(
        f"kept epoch {result.best_epoch} of {len(result.history)} ({result.seconds:.0f} s); "
        f"validation accuracy {result.val['accuracy']:.4f}, macro-F1 {result.val['macro_f1']:.4f} "
        f"(before calibration {result.val_uncalibrated['accuracy']:.4f} / "
        f"{result.val_uncalibrated['macro_f1']:.4f})",
        highlight=False,
    )
    console.print(
        f"model: {out / 'model.onnx'}; log: {out / 'log.csv'}; curves: {out / 'curves.png'}",
        highlight=False,
    )


def evaluate(
    features: Path = typer.Argument(
        ..., help="Parquet/CSV with the 52 blendshape columns and label or emotion."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Bundled model name or .onnx path (default: the shipped default)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Only rows of this split (train, val, test)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object."),
    plots: Path | None = typer.Option(
        None,
        "--plots",
        help="Folder for the confusion-matrix, per-class and worst-images plots.",
        file_okay=False,
    ),
    errors: Path | None = typer.Option(
        None,
        "--errors",
        help="Write misclassified rows (image_id, truth, prediction, probabilities) to this CSV.",
        dir_okay=False,
    ),
    fer2013: Path | None = typer.Option(
        None,
        "--fer2013",
        help="FER2013 CSV: with --plots, draw the worst-classified images.",
        dir_okay=False,
    ),
    crops: Path | None = typer.Option(
        None,
        "--crops",
        help="Face crops of the table's rows, for models that read them (default: crops.npy "
        "beside the table).",
        dir_okay=False,
    ),
) -> None:
    """Accuracy, macro-F1, cross-entropy, per-class figures and the Table 4 confusion matrix."""
    from ..classify.classifier import load_classifier
    from ..evaluate import (
        errors_frame,
        load_rows,
        plot_confusion,
        plot_per_class,
        plot_worst,
        read_fer_pixels,
    )
    from ..evaluate import evaluate as run
    from ..io.atomic import atomic_path, check_output

    if fer2013 is not None and plots is None:
        raise EmoblendError(
            "--fer2013 draws the worst images into the --plots folder; give --plots DIR"
        )
    table = load_rows(features, split)
    classifier = load_classifier(model)
    if errors is not None:
        check_output(errors)
    if plots is not None:
        check_output(plots, folder=True)
    face_crops = None
    if classifier.needs_crop:
        from ..features.table import read_crops

        face_crops = read_crops(features, table.index, crops)
    done = run(table, classifier, source=str(features), crops=face_crops)
    result, per_row = done["result"], done["rows"]
    wrong = errors_frame(per_row)
    written = []
    if errors is not None:
        with atomic_path(errors) as tmp:
            wrong.to_csv(tmp, index=False)
        written.append(str(errors))
    if plots is not None:
        plot_confusion(result, plots / "confusion_matrix.png")
        plot_per_class(result, plots / "per_class.png")
        written += [str(plots / "confusion_matrix.png"), str(plots / "per_class.png")]
        if fer2013 is not None:
            pixels = read_fer_pixels(fer2013, wrong["image_id"].head(200).tolist())
            if plot_worst(wrong, pixels, plots / "worst_errors.png"):
                written.append(str(plots / "worst_errors.png"))
    if as_json:
        typer.echo(json.dumps({**result, "written": written}))
        return
    _print_result(result, written)


def _print_result(result: dict, written: list[str]) -> None:
    console = Console()
    console.print(
        f"[bold]{result['model']}[/] on {result['source']}: {result['rows']} rows, "
        f"{result['evaluated']} evaluated, {result['undetected']} undetected (no face: "
        + ", ".join(f"{k} {v}" for k, v in result["undetected_by_class"].items())
        + ")"
    )
    three = "with_undetected_as_unknown" in result  # the paper's classes (or seven emotions)
    paper = (f"   (paper: accuracy {PAPER['accuracy']}, macro-F1 {PAPER['macro_f1']})"
             if three else "")
    console.print(
        f"accuracy {result['accuracy']:.4f}   macro-F1 {result['macro_f1']:.4f}   "
        f"cross-entropy {result['cross_entropy']:.4f}{paper}",
        highlight=False,
    )
    other = result["with_undetected_as_unknown" if three else "with_undetected_as_errors"]
    console.print(
        f"counting undetected faces as {'unknown' if three else 'errors'}: "
        f"accuracy {other['accuracy']:.4f}, macro-F1 {other['macro_f1']:.4f}",
        highlight=False,
    )
    cm = Table(title="confusion matrix (rows: truth, columns: prediction)")
    cm.add_column("true \\ predicted")
    for label in result["labels"]:
        cm.add_column(label, justify="right")
    for label, row in zip(result["labels"], result["confusion_matrix"], strict=True):
        cm.add_row(label, *map(str, row))
    console.print(cm)
    pc = Table(title="per class")
    for col in ("class", "precision", "recall", "F1", "support"):
        pc.add_column(col, justify="right")
    for label, m in result["per_class"].items():
        pc.add_row(
            label,
            f"{m['precision']:.3f}",
            f"{m['recall']:.3f}",
            f"{m['f1']:.3f}",
            str(m["support"]),
        )
    console.print(pc)
    for path in written:
        console.print(f"written: {path}", highlight=False)


def tune(
    table: Path = typer.Argument(..., help="Feature table with train and val splits."),
    out: Path = typer.Option(
        ..., "--out", help="Study folder: study summary (JSON, markdown), trials CSV, plot."
    ),
    trials: int = typer.Option(12, "--trials", min=1, help="Number of Optuna trials."),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Most epochs per trial."),
    model: str = typer.Option(
        "lstm", "--model", help="Model family to search: lstm | gru | dense."
    ),
    seed: int = typer.Option(0, "--seed"),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Stop starting trials after this many minutes."
    ),
) -> None:
    """Optuna search (median pruning) over layers, units, activation, lr, weight decay,
    class weights and the feature set; selects on validation macro-F1 + accuracy only."""
    _need_torch()
    from ..train.tune import run_study

    summary = run_study(
        table, out, trials=trials, epochs=epochs, family=model, seed=seed, timeout_minutes=timeout
    )
    Console().print(
        f"best trial {summary['best_trial']}: {summary['best_value']:.4f} "
        f"(val macro-F1 + accuracy) with {summary['best_params']}; summary in {out}",
        highlight=False,
    )


def ablation(
    table: Path = typer.Argument(..., help="Feature table with train, val and test splits."),
    out: Path = typer.Option(Path("docs/ablation.md"), "--out", help="Markdown report to write."),
    runs: Path = typer.Option(
        Path("runs/ablation"), "--runs", help="Folder for the runs' checkpoints."
    ),
    epochs: int = typer.Option(10, "--epochs", min=1, help="Most epochs per run."),
    max_minutes: float = typer.Option(8.0, "--max-minutes", help="Time budget per run."),
    seed: int = typer.Option(0, "--seed"),
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated row names to run (default: all)."
    ),
) -> None:
    """Train each ablation variant with one seed and write one markdown table (test split)."""
    _need_torch()
    from ..train.ablation import run_ablation

    rows = run_ablation(
        table,
        out,
        runs,
        epochs=epochs,
        seed=seed,
        max_minutes=max_minutes,
        only=only.split(",") if only else None,
    )
    Console().print(f"{len(rows)} rows written to {out}", highlight=False)


def export(
    run: Path = typer.Argument(..., help="A run folder from `emoblend train` (or its model.pt)."),
    out: Path = typer.Option(
        ..., "--out", help="Target .onnx path (the .json sidecar goes beside it).", dir_okay=False
    ),
    name: str | None = typer.Option(
        None, "--name", help="Model name in the sidecar (default: the file stem)."
    ),
    version: str = typer.Option("1.0.0", "--version", help="Model version in the sidecar."),
    test_table: Path | None = typer.Option(
        None,
        "--test",
        help="Add test-split metrics from this table to the sidecar (reporting only).",
    ),
) -> None:
    """Export to ONNX (opset 17, [N, F] -> [N, 3]) with its JSON sidecar; checks ONNX == PyTorch."""
    _need_torch()
    from ..io.atomic import check_output
    from ..train.export import export_run

    check_output(out)
    data = export_run(run, out, name=name, version=version)
    if test_table is not None:
        from ..classify.classifier import load_classifier
        from ..evaluate import evaluate as run_eval
        from ..evaluate import load_rows
        from ..io.atomic import write_text

        result = run_eval(
            load_rows(test_table, "test"), load_classifier(out), source=str(test_table)
        )["result"]
        data["metrics"]["test"] = {
            k: result[k]
            for k in (
                "rows",
                "evaluated",
                "undetected",
                "accuracy",
                "macro_f1",
                "cross_entropy",
                "confusion_matrix",
                "per_class",
                "with_undetected_as_unknown",
                "with_undetected_as_errors",
            )
            if k in result
        }
        write_text(Path(out).with_suffix(".json"), json.dumps(data, indent=1) + "\n")
    Console().print(
        f"exported {out} ({data['file_bytes']} bytes, {data['parameters']} "
        f"parameters; ONNX vs PyTorch max |diff| {data['round_trip_max_abs_error']:.1e})",
        highlight=False,
    )
