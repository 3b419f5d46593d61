"""Figures of the data set: the paper's Fig. 3 (undetectable faces) and Fig. 5 (score scatter)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..blendshapes import BLENDSHAPE_NAMES
from ..plots import plt, save_figure


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
