"""The overlay keeps box, tag, bar and this frame's line whole inside the frame, at any edge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emoblend.io.overlay import FONT, draw_readings
from emoblend.io.palette import label_bgr
from emoblend.realtime.estimator import EmotionReading

BACKING = (30, 30, 30)


def _rows_with(image: np.ndarray, color) -> np.ndarray:  # noqa: ANN001
    return np.flatnonzero((image == np.array(color, np.uint8)).all(axis=2).any(axis=1))


@pytest.mark.parametrize("box", [(500, 300, 180, 160),   # past the bottom-right corner
                                 (-30, -20, 150, 150),   # past the top-left corner
                                 (250, 100, 120, 120)])  # well inside
def test_tag_bar_and_frame_line_are_whole_inside_the_frame(box):
    """The stabilizer holds "happy" at 0.28 while this frame says sad 0.49: both are shown,
    each labelled, and nothing is cut off by the frame's edge."""
    image = np.full((360, 640, 3), 235, np.uint8)  # a pale background
    reading = EmotionReading(0, box, {"happy": 0.08, "unknown": 0.43, "sad": 0.49}, "sad",
                             "happy", 0.28, 0)
    draw_readings(image, [reading])
    scale = max(0.5, 360 / 480)
    (_, rh), rbase = cv2.getTextSize("this frame: hap 0.08 unk 0.43 sad 0.49", FONT,
                                     0.5 * scale, 1)
    (_, th), base = cv2.getTextSize("#0 steady: happy 0.28", FONT, 0.7 * scale, 2)
    backing = _rows_with(image, BACKING)  # this frame's line, on its dark backing
    assert len(backing) == rh + rbase + 3  # every row of it: not cut at the bottom edge
    tag = _rows_with(image, label_bgr("happy"))  # tag, box and bar in the label's colour
    assert len(tag) >= th + base + 4
    assert tag.min() <= backing.min()  # the tag above this frame's line, both in the frame


def test_fps_sits_on_a_backing_in_the_bottom_left():
    image = np.full((360, 640, 3), 235, np.uint8)
    draw_readings(image, [], fps=29.7)
    rows = _rows_with(image, BACKING)
    assert rows.max() == 359 and rows.min() > 300
