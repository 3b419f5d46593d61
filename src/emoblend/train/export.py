"""Export a trained model to ONNX with its JSON sidecar, and check the two agree.

The graph takes ``features`` [N, F] float32 and returns ``probabilities`` [N, 3]: the
standardisation, the [N, F] -> [N, F, 1] reshape of the sequence models, the calibrated
per-class bias and the softmax all live inside it, so the runtime only builds the feature
vector (:func:`emoblend.classify.classifier.build_features`) and calls onnxruntime.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import EmoblendError
from ..io.atomic import atomic_path, write_text
from ..labels import CLASSES
from .models import Classifier, Probabilities, count_parameters, load_run

OPSET = 17
TOLERANCE = 1e-5


def export_onnx(model: Classifier, path: str | os.PathLike) -> None:
    """Write ``model`` (softmax included) as ONNX, batch dimension dynamic."""
    wrapped = Probabilities(model).eval()
    example = torch.rand(2, model.n_features)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of one needing onnxscript; it still
        # gives plain opset-17 graphs that onnxruntime runs, which is all this needs.
        warnings.simplefilter("ignore", DeprecationWarning)
        # nn.LSTM/GRU: "batch size other than 1 ... can cause an error"; tests run batch 1 and N.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # same check, inside nn.LSTM
        torch.onnx.export(
            wrapped,
            (example,),
            str(tmp),
            input_names=["features"],
            output_names=["probabilities"],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={"features": {0: "N"}, "probabilities": {0: "N"}},
        )


def round_trip_error(model: Classifier, onnx_path: str | os.PathLike, x: np.ndarray) -> float:
    """Largest absolute difference between PyTorch and onnxruntime probabilities on ``x``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": x.astype(np.float32)})[0]
    with torch.no_grad():
        want = Probabilities(model.eval())(torch.from_numpy(x.astype(np.float32))).numpy()
    return float(np.abs(got - want).max())


def sidecar(name: str, meta: dict, model: Classifier, version: str) -> dict:
    """The JSON sidecar read by :class:`emoblend.classify.classifier.ModelInfo`."""
    cfg = model.config
    steps = ["select the listed blendshapes (MediaPipe order)"]
    if meta.get("landmarks"):
        steps.append(
            f"append landmark features {meta['landmarks']!r} (emoblend.features.landmarks)"
        )
    if cfg.standardize:
        steps.append("standardise with the training mean/std (inside the graph)")
    if cfg.kind != "dense":
        steps.append("reshape [N, F] -> [N, F, 1], one feature per time step (inside the graph)")
    steps.append(
        f"add the per-class log-prior {np.round(meta['log_prior'], 3).tolist()} fitted "
        "on validation, then softmax (inside the graph)"
    )
    return {
        "name": name,
        "version": version,
        "classes": list(meta.get("classes", CLASSES)),
        "inputs": {"blendshapes": list(meta["blendshapes"]), "landmarks": meta.get("landmarks")},
        "input_name": "features",
        "output_name": "probabilities",
        "preprocessing": steps,
        "architecture": cfg.to_dict(),
        "parameters": count_parameters(model),
        "training": {
            "config": meta["train_config"],
            "rows": meta["rows"],
            "undetected_dropped": meta["undetected_dropped"],
            "best_epoch": meta["best_epoch"],
            "epochs_run": meta["epochs_run"],
            "seconds": meta["train_seconds"],
        },
        "training_data_sha256": meta.get("training_data_sha256"),
        "metrics": dict(meta["metrics"]),
        "opset": OPSET,
        "emoblend_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def export_run(
    run: str | os.PathLike,
    onnx_path: str | os.PathLike,
    *,
    name: str | None = None,
    version: str = "1.0.0",
) -> dict:
    """Export a run folder's final model to ``onnx_path`` + ``.json``; returns the sidecar.

    Refuses to write a model whose ONNX output differs from PyTorch by more than 1e-5.
    """
    model, meta = load_run(run)
    onnx_path = Path(onnx_path)
    if onnx_path.suffix != ".onnx":
        raise EmoblendError(f"export target {onnx_path} must end in .onnx")
    name = name or onnx_path.stem
    export_onnx(model, onnx_path)
    probe = np.random.default_rng(0).random((64, model.n_features), dtype=np.float32)
    error = round_trip_error(model, onnx_path, probe)
    if error > TOLERANCE:
        onnx_path.unlink(missing_ok=True)
        raise EmoblendError(f"ONNX output differs from PyTorch by {error:.2e} (> {TOLERANCE})")
    data = sidecar(name, meta, model, version)
    data["round_trip_max_abs_error"] = error
    data["file_bytes"] = onnx_path.stat().st_size
    write_text(onnx_path.with_suffix(".json"), json.dumps(data, indent=1) + "\n")
    return data
