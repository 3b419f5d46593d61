"""Classifier speed and size, and training time to the paper's accuracy; prints one JSON object.

    python benchmarks/classifier.py [--table /work/data/build_full/features.parquet]
                                    [--blocks 15] [--no-train] [--train-paper]

For every bundled model (src/emoblend/classify/assets):

- ``onnxruntime_ms_per_face``: batch 1, one thread, median of timed blocks -- the robot's path;
- ``pytorch_eager_ms_per_face``: the same weights rebuilt in PyTorch (eager, one thread,
  no autograd), batch 1;
- ``file_bytes``, ``parameters``, and the goals (<= 0.05 ms, <= 200 KB) met or not.

The baseline, run in the same process, is the faithful paper model (``paper-lstm``) in
PyTorch eager -- the closest thing here to the paper's Keras model (about 20 ms per frame
under Keras ``predict``); ``speedup_vs_paper_pytorch`` divides its time by each model's
onnxruntime time.

With ``--table``, it also trains the default model's recipe (dense, 52 blendshapes, the
default OneCycle schedule) from scratch in this process and reports the wall time until the
validation accuracy first reaches the paper's 0.7199, and the test-split figures of the
result; with ``--train-paper`` it also trains paper-lstm until its validation accuracy first
reaches 0.7199 and reports that wall time. Recorded training times of the bundled models are
read from their sidecars.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from emoblend.classify.classifier import DEFAULT_MODEL, available_models, load_classifier
from emoblend.train.speed import onnx_ms_per_face, torch_ms_per_face

PAPER_ACCURACY = 0.7199
GOAL_MS, GOAL_BYTES = 0.05, 200 * 1024


def torch_model(classifier):  # noqa: ANN001, ANN201 - emoblend Classifier -> torch module
    """The bundled model's weights, read from its ONNX graph, in the PyTorch class."""
    import onnx
    import torch
    from onnx import numpy_helper

    from emoblend.train.models import ModelConfig, Probabilities, build_model

    weights = {
        init.name.removeprefix("model."): torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in onnx.load(str(classifier.path)).graph.initializer
    }
    model = build_model(
        ModelConfig.from_dict(classifier.info.raw["architecture"]), classifier.n_features
    )
    model.load_state_dict(weights)
    return Probabilities(model.eval()).eval()


def _write_floor_graph(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 52])
    y = helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 52])
    node = helper.make_node("Softmax", ["features"], ["p"], axis=1)
    graph = helper.make_graph([node], "floor", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


class _Reached(Exception):
    pass


def paper_time_to_accuracy(table: Path, max_epochs: int = 40) -> dict:
    """Train paper-lstm (the shipped run's recipe) until validation accuracy first reaches
    0.7199. With the 24-epoch default schedule it peaked at ~0.716 and never got there."""
    import time

    from emoblend.train.loop import TrainConfig, train

    start = time.perf_counter()
    seen: dict = {}

    def stop_when_reached(epoch: int, val: dict) -> None:
        seen.update(epoch=epoch, accuracy=val["accuracy"])
        if val["accuracy"] >= PAPER_ACCURACY:
            raise _Reached

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(model="paper-lstm", features="27", epochs=max_epochs, patience=10)
        try:
            train(
                table,
                Path(tmp) / "run",
                config,
                progress=False,
                on_epoch=stop_when_reached,
                export=False,
            )
            reached = None
        except _Reached:
            reached = round(time.perf_counter() - start, 1)
    return {
        "recipe": f"paper-lstm (selu), the paper's selection, OneCycle 3e-3 over {max_epochs} "
        "epochs, patience 10 (the shipped run's settings)",
        "seconds_to_val_accuracy_0.7199": reached,
        "epoch": seen.get("epoch"),
        "val_accuracy": seen.get("accuracy"),
        "note": "includes reading the table; stops at the first epoch reaching the paper",
    }


def time_to_paper_accuracy(table: Path) -> dict:
    from emoblend.evaluate import evaluate, load_rows
    from emoblend.train.loop import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(model="dense", features="52")
        result = train(table, Path(tmp) / "run", config, progress=False)
        reached = next(
            (h["seconds"] for h in result.history if h["val_accuracy"] >= PAPER_ACCURACY), None
        )
        classifier = load_classifier(Path(tmp) / "run" / "model.onnx")
        test = evaluate(load_rows(table, "test"), classifier, source=str(table))["result"]
    return {
        "recipe": "dense, 52 blendshapes, OneCycle 3e-3, batch 128, AdamW+amsgrad",
        "seconds_to_val_accuracy_0.7199": reached,
        "epochs_run": len(result.history),
        "total_train_seconds": round(result.seconds, 1),
        "test_accuracy": round(test["accuracy"], 4),
        "test_macro_f1": round(test["macro_f1"], 4),
        "torch_threads": 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=None)
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument(
        "--train-paper",
        action="store_true",
        help="also time paper-lstm to the paper's accuracy (minutes)",
    )
    args = parser.parse_args()

    baseline_ms = None
    try:
        paper = load_classifier("paper-lstm")
        baseline_ms = torch_ms_per_face(
            torch_model(paper), paper.n_features, blocks=args.blocks, per_block=50
        )
    except ImportError:
        print("PyTorch not installed: no eager figures", file=sys.stderr)
    # onnxruntime figures: models measured in turn, three rounds, median of the rounds, so
    # that load from other processes on a shared CPU falls on all of them alike. The floor
    # is a one-node graph (Softmax): what any session.run costs here.
    floor = Path(tempfile.mkdtemp()) / "floor.onnx"
    _write_floor_graph(floor)
    rounds: dict[str, list[float]] = {}
    for _ in range(3):
        rounds.setdefault("floor", []).append(onnx_ms_per_face(floor, 52, blocks=args.blocks))
        for name in available_models():
            c = load_classifier(name)
            rounds.setdefault(name, []).append(
                onnx_ms_per_face(c.path, c.n_features, blocks=args.blocks)
            )
    models = {}
    for name in available_models():
        classifier = load_classifier(name)
        ort_ms = statistics.median(rounds[name])
        entry = {
            "default": name == DEFAULT_MODEL,
            "features": classifier.n_features,
            "needs_landmarks": classifier.needs_landmarks,
            "parameters": classifier.info.raw.get("parameters"),
            "file_bytes": classifier.path.stat().st_size,
            "onnxruntime_ms_per_face": round(ort_ms, 4),
            "test_accuracy": classifier.info.raw["metrics"].get("test", {}).get("accuracy"),
            "test_macro_f1": classifier.info.raw["metrics"].get("test", {}).get("macro_f1"),
            "goal_ms_met": ort_ms <= GOAL_MS,
            "goal_size_met": classifier.path.stat().st_size <= GOAL_BYTES,
            "recorded_train_seconds": classifier.info.raw.get("training", {}).get("seconds"),
        }
        if baseline_ms is not None:
            slow = name == "paper-lstm"
            eager = (
                baseline_ms
                if slow
                else torch_ms_per_face(
                    torch_model(classifier), classifier.n_features, blocks=args.blocks
                )
            )
            entry["pytorch_eager_ms_per_face"] = round(eager, 4)
            entry["speedup_vs_paper_pytorch"] = round(baseline_ms / ort_ms, 1)
        models[name] = entry
    report = {
        "what": "classifier ms per face: batch 1, one thread, median of timed blocks",
        "onnxruntime_floor_ms_one_node_graph": round(statistics.median(rounds["floor"]), 4),
        "cpu_count": os.cpu_count(),
        "baseline": "paper-lstm in PyTorch eager (faithful selu port), same process",
        "baseline_ms_per_face": None if baseline_ms is None else round(baseline_ms, 4),
        "goals": {"ms_per_face": GOAL_MS, "file_bytes": GOAL_BYTES},
        "models": models,
    }
    if args.table is not None and not args.no_train:
        report["training_to_paper_accuracy"] = time_to_paper_accuracy(args.table)
        if args.train_paper:
            report["paper_lstm_training_to_paper_accuracy"] = paper_time_to_accuracy(args.table)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
