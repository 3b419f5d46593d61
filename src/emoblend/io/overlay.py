"""Draw readings onto BGR frames with OpenCV: box, stable label, confidence bar, fps.

The overlay shows the stable label (what a robot would act on) in the box's colour, with the
per-frame label in small print beside it, so a viewer sees the stabilizer at work.
"""

from __future__ import annotations

import cv2
import numpy as np

from .palette import label_bgr

FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_readings(image: np.ndarray, readings, fps: float | None = None) -> np.ndarray:  # noqa: ANN001
    """Draw each reading (an :class:`~emoblend.realtime.estimator.EmotionReading`) on ``image``,
    in place."""
    h, w = image.shape[:2]
    scale = max(0.5, min(w, h) / 480)
    thick = max(1, int(round(2 * scale)))
    for r in readings:
        x, y, bw, bh = r.box
        color = label_bgr(r.stable_label)
        cv2.rectangle(image, (x, y), (x + bw, y + bh), color, thick)
        text = f"#{r.face_id} {r.stable_label} {r.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(text, FONT, 0.7 * scale, thick)
        ty = y - 8 if y - th - 8 > 0 else min(h - 4, y + bh + th + 8)
        cv2.rectangle(image, (x, ty - th - base), (x + tw + 4, ty + base), color, -1)
        cv2.putText(image, text, (x + 2, ty), FONT, 0.7 * scale, (0, 0, 0), thick, cv2.LINE_AA)
        # confidence bar under the box, plus the three per-frame probabilities
        bar_y = min(h - 1, y + bh + 6)
        bar_h = max(4, int(8 * scale))
        cv2.rectangle(image, (x, bar_y), (x + bw, bar_y + bar_h), (60, 60, 60), -1)
        cv2.rectangle(image, (x, bar_y), (x + int(bw * r.confidence), bar_y + bar_h), color, -1)
        raw = " ".join(f"{c[:3]} {p:.2f}" for c, p in _top_three(r.probabilities))
        cv2.putText(image, f"frame: {raw}", (x, min(h - 4, bar_y + bar_h + int(18 * scale))),
                    FONT, 0.5 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(image, f"{fps:.1f} fps", (8, int(24 * scale)), FONT, 0.7 * scale,
                    (255, 255, 255), thick, cv2.LINE_AA)
    return image


def _top_three(probabilities: dict[str, float]) -> list[tuple[str, float]]:
    """The per-frame line's entries: all three of the paper's classes in their order, or the
    three likeliest of a larger label set (seven would not fit beside a face)."""
    items = list(probabilities.items())
    return items if len(items) <= 3 else sorted(items, key=lambda kv: -kv[1])[:3]
