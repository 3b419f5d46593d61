"""Figures as output files: matplotlib set up headless, and one atomic way to save a figure.

Area-specific figures live beside their code (face, data, train, evaluate, io/timeline); they
all save through :func:`save_figure` so a plot is never half-written.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from .atomic import atomic_path  # noqa: E402


def save_figure(fig: matplotlib.figure.Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save and close ``fig`` atomically (format from the file extension)."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
