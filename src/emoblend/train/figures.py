"""Training plots: loss, accuracy and macro-F1 per epoch."""

from __future__ import annotations

import os

from ..io.figures import plt, save_figure


def plot_training_curves(
    history: list[dict], path: str | os.PathLike, best_epoch: int | None = None
) -> None:
    """Three panels (loss, accuracy, macro-F1) over epochs; the kept epoch marked."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (
        ("loss", ("train_loss", "val_loss")),
        ("accuracy", ("train_accuracy", "val_accuracy")),
        ("macro-F1", ("val_macro_f1",)),
    )
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(epochs, [h[key] for h in history], label=key.split("_")[0])
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label="kept (best val loss)")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
