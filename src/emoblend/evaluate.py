"""Evaluate a classifier on a feature table: the paper's Table 4 and its error tracking.

Figures come from scikit-learn's metrics (a core dependency, so evaluation works on the
robot-side install too). Rows where MediaPipe found no face (all 52 blendshapes empty) cannot
be classified; they are counted -- in total and per class -- and reported, never dropped
silently, and the result also gives the accuracy and macro-F1 obtained if they all counted
as "unknown", the reading a robot would make of a faceless frame (for a seven-class model,
which has no "unknown", they count as errors).

The truth follows the classifier's label set: the paper's three classes from the table's
``label`` (or ``emotion``) column, FER2013's seven from its ``emotion`` codes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .classify.classifier import Classifier, table_features
from .errors import DatasetError
from .features.table import check_table, detected_mask, read_table
from .labels import CLASSES, WARMUP_LABEL, fer_to_names


def load_rows(path: str | os.PathLike, split: str | None = None) -> pd.DataFrame:
    """Read a table and keep one split (``train``, ``val``, ``test``) when asked."""
    table = read_table(path)
    if split is not None:
        if "split" not in table.columns:
            raise DatasetError(f"{path} has no 'split' column, so --split {split} cannot apply")
        found = sorted(table["split"].astype(str).unique())
        table = table[table["split"] == split]
        if table.empty:
            raise DatasetError(f"{path} has no rows in split {split!r}; it has {found}")
    return table


def evaluate(table: pd.DataFrame, classifier: Classifier, source: str = "the table",
             crops: np.ndarray | None = None) -> dict:
    """Metrics of ``classifier`` on ``table`` as plain data, plus a per-row frame.

    A crop-reading classifier also needs ``crops``: uint8 [len(table), S, S], row for row
    (:func:`emoblend.features.table.read_crops` with the table's index).

    Returns ``{"result": dict, "rows": DataFrame}``; the dict holds ``rows``, ``evaluated``,
    ``undetected``, ``accuracy``, ``macro_f1``, ``cross_entropy``, ``per_class``,
    ``confusion_matrix`` (rows truth, columns prediction, in ``labels`` order) and more.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
    )

    table = check_table(table, source=source)  # scores checked: numbers in [0, 1] or empty
    found = detected_mask(table)
    if not found.any():
        raise DatasetError(f"{source}: none of its {len(table)} rows has a detected face")
    classes = classifier.classes
    labels = list(range(len(classes)))
    index = {c: i for i, c in enumerate(classes)}
    truth = _truth(table, classes, source)
    y_all = pd.Series(truth).map(index).to_numpy(np.int64)
    rows = table[found]
    y = y_all[found]
    proba = classifier.predict_features(
        table_features(classifier.info, rows), _crops_of(classifier, crops, found, source)
    )
    pred = proba.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    # Undetected faces read as "unknown": what a robot reports for a frame without a face.
    # A label set without "unknown" has no right answer for them: -1 counts as an error.
    pred_all = np.full(len(table), index.get(WARMUP_LABEL, -1))
    pred_all[found] = pred
    missed = ~found
    undetected_key = (
        "with_undetected_as_unknown" if WARMUP_LABEL in index else "with_undetected_as_errors"
    )
    result = {
        "model": classifier.name,
        "model_version": classifier.info.raw.get("version"),
        "source": source,
        "rows": int(len(table)),
        "evaluated": int(found.sum()),
        "undetected": int(missed.sum()),
        "undetected_by_class": {c: int((y_all[missed] == i).sum()) for i, c in enumerate(classes)},
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "cross_entropy": float(log_loss(y, np.clip(proba, 1e-7, 1.0), labels=labels)),
        "labels": list(classes),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        undetected_key: {
            "accuracy": float(accuracy_score(y_all, pred_all)),
            "macro_f1": float(
                f1_score(y_all, pred_all, labels=labels, average="macro", zero_division=0)
            ),
        },
    }
    per_row = pd.DataFrame(
        {
            "image_id": (
                rows["image_id"].to_numpy() if "image_id" in rows.columns else np.flatnonzero(found)
            ),
            "label": truth[found],
            "predicted": np.array(classes)[pred],
            **{f"p_{c}": proba[:, i] for i, c in enumerate(classes)},
            "p_true": proba[np.arange(len(y)), y],
        }
    )
    for extra in ("split", "augmentation", "emotion"):
        if extra in rows.columns:
            per_row[extra] = rows[extra].to_numpy()
    return {"result": result, "rows": per_row}


def _crops_of(classifier: Classifier, crops: np.ndarray | None, found: np.ndarray,
              source: str) -> np.ndarray | None:
    """The detected rows' crops for a crop-reading classifier (None for the others)."""
    if not classifier.needs_crop:
        return None
    if crops is None:
        raise DatasetError(
            f"classifier {classifier.name!r} also reads the aligned face crop; build {source} "
            "with `emoblend dataset build --landmarks --crops 64` (crops.npy beside it)"
        )
    size = classifier.info.crop_size
    if crops.shape != (len(found), size, size):
        raise DatasetError(
            f"the crops have shape {crops.shape}; classifier {classifier.name!r} takes "
            f"[{len(found)}, {size}, {size}]: build the table with --crops {size}"
        )
    return crops[found]


def _truth(table: pd.DataFrame, classes: tuple[str, ...], source: str) -> np.ndarray:
    """Each row's true label in the classifier's label set."""
    if tuple(classes) == CLASSES:
        return table["label"].to_numpy(dtype=str)
    if "emotion" not in table.columns:
        raise DatasetError(
            f"{source} has no 'emotion' column; a model with labels {', '.join(classes)} is "
            "scored against FER2013's emotion codes (0-6)"
        )
    return fer_to_names(table["emotion"].to_numpy(), classes)


def errors_frame(per_row: pd.DataFrame) -> pd.DataFrame:
    """Misclassified rows, worst first (lowest probability given to the true class)."""
    wrong = per_row[per_row["label"] != per_row["predicted"]]
    return wrong.sort_values("p_true", kind="stable").reset_index(drop=True)


def read_fer_pixels(path: str | os.PathLike, image_ids: list[int]) -> dict[int, np.ndarray]:
    """48x48 grey images of the given FER2013 rows (``image_id`` = row number in the CSV)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"FER2013 CSV not found: {path}")
    wanted = set(int(i) for i in image_ids)
    try:
        frame = pd.read_csv(path, usecols=["pixels"], nrows=max(wanted) + 1)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"cannot read {path} as the FER2013 CSV ({exc})") from None
    return {
        i: np.array(frame["pixels"].iloc[i].split(), np.uint8).reshape(48, 48)
        for i in sorted(wanted)
        if i < len(frame)
    }


def plot_confusion(result: dict, path: str | os.PathLike) -> None:
    """Counts and row-normalised recall, Table 4 layout (rows truth, columns prediction)."""
    from .io.figures import plt, save_figure

    cm = np.array(result["confusion_matrix"])
    size = 4.2 if len(result["labels"]) <= 3 else 6.0
    fig, axes = plt.subplots(1, 2, figsize=(size * 2.4, size))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    for ax, values, title in ((axes[0], cm, "counts"), (axes[1], norm, "share of true class")):
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(values):
            ax.text(
                c,
                r,
                f"{v:.2f}" if values is norm else str(v),
                ha="center",
                va="center",
                color="white" if norm[r, c] > 0.5 else "black",
            )
        ticks = range(len(result["labels"]))
        ax.set_xticks(ticks, result["labels"], rotation=45 if len(ticks) > 3 else 0)
        ax.set_yticks(ticks, result["labels"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.suptitle(
        f"{result['model']}: accuracy {result['accuracy']:.3f}, "
        f"macro-F1 {result['macro_f1']:.3f} ({result['evaluated']} faces)"
    )
    fig.tight_layout()
    save_figure(fig, path)


def plot_per_class(result: dict, path: str | os.PathLike) -> None:
    from .io.figures import plt, save_figure

    n = len(result["labels"])
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * n), 3.5))
    width = 0.27
    for k, metric in enumerate(("precision", "recall", "f1")):
        values = [result["per_class"][c][metric] for c in result["labels"]]
        ax.bar(np.arange(n) + (k - 1) * width, values, width, label=metric)
    ax.set_xticks(range(n), result["labels"])
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(f"{result['model']}: per-class figures")
    fig.tight_layout()
    save_figure(fig, path)


def plot_worst(
    errors: pd.DataFrame, pixels: dict[int, np.ndarray], path: str | os.PathLike, count: int = 24
) -> int:
    """The worst-classified FER2013 images with truth, prediction and p(true); returns how many."""
    from .io.figures import plt, save_figure

    shown = errors[errors["image_id"].isin(pixels)].drop_duplicates("image_id").head(count)
    if shown.empty:
        return 0
    cols = 8
    rows = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.7, rows * 2.0), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (_, row) in zip(axes.flat, shown.iterrows(), strict=False):
        ax.imshow(pixels[int(row["image_id"])], cmap="gray", vmin=0, vmax=255)
        ax.set_title(
            f"#{int(row['image_id'])}\n{row['label']}->{row['predicted']} p={row['p_true']:.2f}",
            fontsize=7,
        )
    fig.suptitle("worst-classified images (true -> predicted, probability of the truth)")
    fig.tight_layout()
    save_figure(fig, path)
    return len(shown)
