"""Give each face a stable id across frames, so each person keeps their own stabilizer.

MediaPipe's landmarker returns faces in no particular order and with no identity, so faces
are matched frame to frame by their boxes: an optimal assignment (scipy's Hungarian solver)
on a cost that prefers overlapping boxes (IoU) and falls back on the centre distance relative
to the face size, which survives a fast head turn where boxes stop overlapping. A face left
unmatched gets a new id; a track not seen for ``timeout_ms`` of stream time is dropped, and a
face that comes back after that is a new face.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..labels import CLASSES
from .stabilizer import Stabilizer, StabilizerOptions

Box = tuple[int, int, int, int]


@dataclass
class Track:
    """One face followed over time, with its own stabilizer."""

    face_id: int
    box: Box
    last_seen_ms: float
    stabilizer: Stabilizer = field(repr=False)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres in units of the boxes' mean size."""
    size = max(1.0, (a[2] + a[3] + b[2] + b[3]) / 4.0)
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    return float(np.hypot(dx, dy)) / size


class FaceTracker:
    """Assign stable ids to the boxes of each frame; each track owns a :class:`Stabilizer`."""

    def __init__(
        self,
        stabilizer: StabilizerOptions | None = None,
        *,
        timeout_ms: float = 1000.0,
        max_centre_distance: float = 1.0,
        labels: tuple[str, ...] = CLASSES,
    ) -> None:
        self.stabilizer_options = stabilizer or StabilizerOptions()
        self.labels = labels
        self.timeout_ms = timeout_ms
        self.max_centre_distance = max_centre_distance
        self.tracks: dict[int, Track] = {}
        self._next_id = 0

    def reset(self) -> None:
        self.tracks.clear()
        self._next_id = 0

    def update(self, boxes: list[Box], timestamp_ms: float) -> list[Track]:
        """Match this frame's boxes to tracks; returns one track per box, in box order."""
        self.tracks = {
            i: t for i, t in self.tracks.items() if timestamp_ms - t.last_seen_ms <= self.timeout_ms
        }
        live = list(self.tracks.values())
        assigned: list[Track | None] = [None] * len(boxes)
        if live and boxes:
            # cost in [0, 2]: 1 - IoU, plus the centre distance where boxes no longer overlap
            cost = np.full((len(boxes), len(live)), np.inf)
            for i, box in enumerate(boxes):
                for j, track in enumerate(live):
                    overlap = iou(box, track.box)
                    dist = _centre_distance(box, track.box)
                    if overlap > 0 or dist <= self.max_centre_distance:
                        cost[i, j] = (1.0 - overlap) + (dist if overlap == 0 else 0.0)
            finite = np.where(np.isfinite(cost), cost, 1e6)
            rows, cols = linear_sum_assignment(finite)
            for i, j in zip(rows, cols, strict=True):
                if np.isfinite(cost[i, j]):
                    assigned[i] = live[j]
        out = []
        for box, track in zip(boxes, assigned, strict=True):
            if track is None:
                stabilizer = Stabilizer(self.stabilizer_options, self.labels)
                track = Track(self._next_id, box, timestamp_ms, stabilizer)
                self.tracks[track.face_id] = track
                self._next_id += 1
            track.box = box
            track.last_seen_ms = timestamp_ms
            out.append(track)
        return out
