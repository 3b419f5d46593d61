"""Figures of the data set: the paper's Fig. 3 (undetectable faces) and Fig. 5 (score scatter)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..face.blendshapes import BLENDSHAPE_NAMES
from ..io.figures import plt, save_figure


def plot_blendshape_scatter(table: pd.DataFrame, threshold: float, path: str | os.PathLike) -> None:
    """The paper's Fig. 5: every image's 52 scores, one column per blendshape, threshold drawn."""
    values = table[list(BLENDSHAPE_NAMES)].dropna().to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(16, 6))
    rng = np.random.default_rng(0)
    for i in range(values.shape[1]):
        jitter = rng.uniform(-0.3, 0.3, size=values.shape[0])
        above = values[:, i] > threshold
        ax.scatter(
            i + jitter[~above], values[~above, i], s=1, alpha=0.15, c="tab:gray", rasterized=True
        )
        ax.scatter(
            i + jitter[above], values[above, i], s=1, alpha=0.3, c="tab:red", rasterized=True
        )
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold}")
    ax.set_xticks(range(len(BLENDSHAPE_NAMES)), BLENDSHAPE_NAMES, rotation=90, fontsize=7)
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.set_title(f"blendshape scores over {len(values)} images")
    ax.legend(loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_undetected_grid(
    images: np.ndarray,
    emotions: np.ndarray,
    image_ids: np.ndarray,
    path: str | os.PathLike,
    *,
    total: int | None = None,
) -> None:
    """The paper's Fig. 3: images MediaPipe finds no face in, one row per FER emotion.

    Each tile is titled with its image_id, so a sample can be looked up in the CSV.
    """
    from ..labels import FER_EMOTIONS

    present = [code for code in range(len(FER_EMOTIONS)) if np.any(emotions == code)]
    per_row = max([int(np.sum(emotions == code)) for code in present], default=1)
    n_rows = max(len(present), 1)
    fig, axes = plt.subplots(
        n_rows, per_row, figsize=(1.4 * per_row + 1, 1.6 * n_rows + 0.6), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, code in enumerate(present):
        picks = np.flatnonzero(emotions == code)
        for c, i in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"#{image_ids[i]}", fontsize=7)
        axes[r, 0].text(
            -0.15,
            0.5,
            FER_EMOTIONS[code],
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
            fontsize=9,
        )
    if not present:
        axes[0, 0].text(0.5, 0.5, "every image had a face", ha="center", va="center")
    shown = len(images)
    fig.suptitle(
        f"no face found: {shown} of {total if total is not None else shown} images shown",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path)
