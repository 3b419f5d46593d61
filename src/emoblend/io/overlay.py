"""Draw readings onto BGR frames with OpenCV: box, stable label, confidence bar, fps.

The overlay shows the stable label (what a robot would act on) and its smoothed probability in
the box's colour, with this frame's probabilities in small print under it, so a viewer sees
the stabilizer at work.
"""

from __future__ import annotations

import cv2
import numpy as np

from .palette import label_bgr

FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_readings(image: np.ndarray, readings, fps: float | None = None) -> np.ndarray:  # noqa: ANN001
    """Draw each reading (an :class:`~emoblend.realtime.estimator.EmotionReading`) on ``image``,
    in place.

    Per face: the box; a tag "#ID steady: LABEL P" (the stabilizer's label and its smoothed
    probability, which can differ from this frame's numbers while the label is held); a bar of
    that probability; and "this frame: ..." (this frame's probabilities) on a dark backing so
    it reads on pale backgrounds. Everything is kept inside the frame: a face at an edge gets
    its tag inside the box and its bar and line moved up from the bottom edge.
    """
    h, w = image.shape[:2]
    scale = max(0.5, min(w, h) / 480)
    thick = max(1, int(round(2 * scale)))
    for r in readings:
        x, y, bw, bh = r.box
        x0, y0 = min(max(0, x), w - 1), min(max(0, y), h - 1)
        x1, y1 = min(max(x0 + 1, x + bw), w - 1), min(max(y0 + 1, y + bh), h - 1)
        color = label_bgr(r.stable_label)
        cv2.rectangle(image, (x0, y0), (x1, y1), color, thick)
        tag = f"#{r.face_id} steady: {r.stable_label} {r.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(tag, FONT, 0.7 * scale, thick)
        tag_h = th + base + 4
        tag_top = y0 - tag_h if y0 - tag_h >= 0 else y0  # above the box, or inside its top
        tag_x = max(0, min(x0, w - tw - 4))
        cv2.rectangle(image, (tag_x, tag_top), (tag_x + tw + 4, tag_top + tag_h), color, -1)
        cv2.putText(image, tag, (tag_x + 2, tag_top + th + 2), FONT, 0.7 * scale, (0, 0, 0),
                    thick, cv2.LINE_AA)
        # under the box: the steady probability as a bar, then this frame's probabilities
        raw = "this frame: " + " ".join(
            f"{c[:3]} {p:.2f}" for c, p in _top_three(r.probabilities))
        (rw, rh), rbase = cv2.getTextSize(raw, FONT, 0.5 * scale, 1)
        bar_h = max(4, int(8 * scale))
        block_h = 4 + bar_h + 4 + rh + rbase + 4
        top = max(0, min(y1 + 2, h - block_h))  # moved up (over the box) at the bottom edge
        bar_y = top + 4
        cv2.rectangle(image, (x0, bar_y), (x1, bar_y + bar_h), (60, 60, 60), -1)
        cv2.rectangle(image, (x0, bar_y), (x0 + int((x1 - x0) * r.confidence), bar_y + bar_h),
                      color, -1)
        text_top = bar_y + bar_h + 4
        text_x = max(0, min(x0, w - rw - 4))
        cv2.rectangle(image, (text_x, text_top), (text_x + rw + 4, text_top + rh + rbase + 2),
                      (30, 30, 30), -1)
        cv2.putText(image, raw, (text_x + 2, text_top + rh + 1), FONT, 0.5 * scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    if fps is not None:  # bottom left, where it does not cover a tag at the top
        text = f"{fps:.1f} fps"
        (fw, fh), fbase = cv2.getTextSize(text, FONT, 0.5 * scale, 1)
        cv2.rectangle(image, (0, h - fh - fbase - 6), (fw + 8, h - 1), (30, 30, 30), -1)
        cv2.putText(image, text, (4, h - fbase - 3), FONT, 0.5 * scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return image


def _top_three(probabilities: dict[str, float]) -> list[tuple[str, float]]:
    """The per-frame line's entries: all three of the paper's classes in their order, or the
    three likeliest of a larger label set (seven would not fit beside a face)."""
    items = list(probabilities.items())
    return items if len(items) <= 3 else sorted(items, key=lambda kv: -kv[1])[:3]
