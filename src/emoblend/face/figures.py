"""The paper's Fig. 2 for any face: the image with its landmarks beside its 52 blendshape scores."""

from __future__ import annotations

import os

import numpy as np

from ..io.figures import plt, save_figure
from .blendshapes import BLENDSHAPE_NAMES
from .landmarker import Face


def plot_face_blendshapes(
    image: np.ndarray, face: Face, path: str | os.PathLike, title: str = ""
) -> None:
    """The paper's Fig. 2: the image with its landmarks beside a bar chart of 52 scores."""
    fig, (ax_img, ax_bar) = plt.subplots(
        1, 2, figsize=(13, 8), gridspec_kw={"width_ratios": [1, 1.1]}
    )
    h, w = image.shape[:2]
    ax_img.imshow(image, cmap="gray" if image.ndim == 2 else None)
    ax_img.scatter(face.landmarks[:, 0] * w, face.landmarks[:, 1] * h, s=1.5, c="lime")
    x, y, bw, bh = face.box
    ax_img.add_patch(plt.Rectangle((x, y), bw, bh, fill=False, ec="yellow", lw=1.5))
    ax_img.set_axis_off()
    ax_img.set_title(title or "landmarks")
    positions = np.arange(len(BLENDSHAPE_NAMES))
    ax_bar.barh(positions, face.blendshapes, color="tab:blue")
    ax_bar.set_yticks(positions, BLENDSHAPE_NAMES, fontsize=7)
    ax_bar.invert_yaxis()
    ax_bar.set_xlim(0, 1)
    ax_bar.set_xlabel("score")
    ax_bar.set_title("52 blendshape scores")
    fig.tight_layout()
    save_figure(fig, path)
