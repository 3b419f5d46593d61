"""The timeline of a stream: one row per face per frame, written as CSV or JSON Lines, and its plot.

Rows are streamed to a temporary file as frames arrive (a long video does not pile up in
memory) and the file is renamed into place only when the stream ended without error.
"""

from __future__ import annotations

import csv
import json
import os
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EmoblendError
from ..labels import CLASSES
from .atomic import atomic_path
from .palette import label_hex

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def timeline_columns(labels: tuple[str, ...] = CLASSES) -> tuple[str, ...]:
    """The timeline's columns for a classifier's label set: one ``p_<label>`` per label."""
    return ("frame", "time_ms", "face_id", "x", "y", "w", "h",
            *(f"p_{c}" for c in labels), "label", "stable_label")


def timeline_labels(columns) -> tuple[str, ...]:  # noqa: ANN001 - any iterable of names
    """The label set a timeline was written with, from its ``p_<label>`` columns."""
    return tuple(c[2:] for c in columns if c.startswith("p_")) or CLASSES


def timeline_format(path: str | os.PathLike) -> str:
    """"csv" or "jsonl" from the file name; a one-line error for any other suffix.

    Callers run it before a stream starts, so a misnamed output fails before any work."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise EmoblendError(f"timeline {path}: name it .csv or .jsonl")
    return fmt


def timeline_row(frame: int, reading) -> dict:  # noqa: ANN001 - EmotionReading
    """One timeline row for one reading in frame ``frame``."""
    x, y, w, h = reading.box
    row = {"frame": frame, "time_ms": reading.timestamp_ms, "face_id": reading.face_id,
           "x": x, "y": y, "w": w, "h": h}
    row.update({f"p_{c}": round(p, 6) for c, p in reading.probabilities.items()})
    row.update(label=reading.raw_label, stable_label=reading.stable_label)
    return row


class TimelineWriter:
    """Write timeline rows to ``path`` (.csv or .jsonl, chosen by suffix), atomically.

    ``labels`` is the classifier's label set (``estimator.classes``): it names the
    ``p_<label>`` columns."""

    def __init__(self, path: str | os.PathLike, labels: tuple[str, ...] = CLASSES) -> None:
        self.path = Path(path)
        self.columns = timeline_columns(labels)
        self.format = timeline_format(self.path)
        self._stack = ExitStack()
        self.rows_written = 0

    def __enter__(self) -> TimelineWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._file = self._stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
        if self.format == "csv":
            self._csv = csv.DictWriter(self._file, fieldnames=self.columns)
            self._csv.writeheader()
        return self

    def write(self, row: dict) -> None:
        if self.format == "csv":
            self._csv.writerow(row)
        else:
            self._file.write(json.dumps(row) + "\n")
        self.rows_written += 1

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self._stack.__exit__(*exc)


def read_timeline(path: str | os.PathLike) -> pd.DataFrame:
    """Read a timeline written by :class:`TimelineWriter` (CSV or JSON Lines), whatever its
    label set; an empty JSON Lines file reads as the paper's three-class columns."""
    path = Path(path)
    if FORMATS.get(path.suffix.lower()) == "jsonl":
        frame = pd.read_json(path, lines=True) if path.stat().st_size else pd.DataFrame()
    else:
        frame = pd.read_csv(path)
    return frame.reindex(columns=timeline_columns(timeline_labels(frame.columns)))


def plot_timeline(rows: pd.DataFrame, path: str | os.PathLike, title: str = "",
                  duration_ms: float | None = None) -> None:
    """Probabilities over time per face, with a band of the stable label under each."""
    import matplotlib.pyplot as plt

    from .figures import save_figure

    face_ids = sorted(rows["face_id"].dropna().unique()) if len(rows) else []
    n = max(1, len(face_ids))
    fig, axes = plt.subplots(
        2 * n, 1, figsize=(10, 2.6 * n + 0.6), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": [5, 1] * n},
    )
    labels = timeline_labels(rows.columns)
    # the stable label is "unknown" while a face warms up, in every label set
    band_labels = labels if "unknown" in labels else (*labels, "unknown")
    end_s = (duration_ms if duration_ms is not None else
             (rows["time_ms"].max() if len(rows) else 1000)) / 1000.0
    if not face_ids:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
    for k, face_id in enumerate(face_ids):
        ax, band = axes[2 * k, 0], axes[2 * k + 1, 0]
        face = rows[rows["face_id"] == face_id].sort_values("time_ms")
        t = face["time_ms"].to_numpy() / 1000.0
        # break lines where the face was absent, rather than drawing across the gap
        gaps = np.diff(t, prepend=t[:1]) > 0.5
        for c in labels:
            p = face[f"p_{c}"].to_numpy(dtype=float).copy()
            p[gaps] = np.nan
            ax.plot(t, p, color=label_hex(c), lw=1.2, label=f"p({c})",
                    marker="." if len(t) < 20 else None)  # a face seen briefly stays visible
        ax.set_ylim(-0.04, 1.04)  # a confident 1.0 or 0.0 stays visible beside the frame
        ax.set_ylabel(f"face #{int(face_id)}")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(loc="upper left", ncol=min(len(labels), 4), fontsize=8)
        dt = np.median(np.diff(t)) if len(t) > 1 else 0.04
        for c in band_labels:
            mask = (face["stable_label"] == c).to_numpy()
            if mask.any():
                band.bar(t[mask], 1, width=dt * 1.05, color=label_hex(c), align="edge", label=c)
        band.set_yticks([])
        band.set_ylim(0, 1)
        band.set_ylabel("stable", rotation=0, ha="right", va="center", fontsize=8)
        if k == 0:
            from matplotlib.patches import Patch

            band.legend(handles=[Patch(color=label_hex(c), label=c) for c in band_labels],
                        loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    axes[0, 0].set_xlim(0, max(end_s, 1e-3))
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title or "emotion over time")
    fig.tight_layout()
    save_figure(fig, path)
