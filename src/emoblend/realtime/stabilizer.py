"""Turn a face's noisy per-frame probabilities into a steady label.

A per-frame classifier flickers: MediaPipe's blendshapes jitter from frame to frame, and a
face near a class boundary flips its argmax several times a second. A robot that reacts to
every flip looks nervous. The stabilizer keeps one reading per face and changes it only on
sustained evidence, in three steps:

1. **Exponential smoothing** of the probabilities with a time constant ``tau_ms``. The weight
   of a new frame is ``alpha = 1 - exp(-dt / tau_ms)``, so the filter behaves the same at
   10 fps and at 60 fps (a fixed per-frame alpha would not).
2. **Hysteresis**: the label switches only when another class leads the current one, in the
   smoothed probabilities, by at least ``margin``.
3. **Minimum dwell**: a label is held at least ``min_dwell_ms`` after it was taken.

Before ``warmup_ms`` of evidence the label is ``"unknown"`` (the paper's "no emotion we
recognise"), so a face that has just appeared does not get a confident label from one frame.
In a label set without "unknown" (FER2013's seven) the warm-up label is None, which the
estimator reports as ``"unknown"`` with confidence 0.

All parameters are in milliseconds of stream time, never in frames, because frame rates vary
between cameras and with load.

Latency: after a step change in which the new class leads the current one by ``L > margin``
in the per-frame probabilities, the label follows within
``tau_ms * ln((1 + L) / (L - margin))`` plus one frame, or ``min_dwell_ms`` after the
previous switch if that is later: 1.32 ``tau_ms`` (264 ms with the defaults) for L = 0.5,
1.39 ``tau_ms`` (279 ms) for the 0.46 by which the default model reads the smile in
single_face.mp4.
(The smoothed lead rises from at worst -1 towards L and crosses ``margin`` once
``alpha >= (1 + margin) / (1 + L)``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import EmoblendError
from ..labels import CLASSES, WARMUP_LABEL


@dataclass(frozen=True)
class StabilizerOptions:
    """Settings of :class:`Stabilizer`, in milliseconds of stream time."""

    tau_ms: float = 200.0
    """Time constant of the exponential smoothing: a step change is 63 % through after this."""
    margin: float = 0.1
    """A new label must lead the current one by this much in smoothed probability."""
    min_dwell_ms: float = 300.0
    """A label is held at least this long before it may change."""
    warmup_ms: float = 100.0
    """Stream time a face must be seen before its first label other than "unknown"."""
    max_gap_ms: float = 1000.0
    """A gap longer than this between frames restarts the filter (stale evidence is dropped)."""

    def __post_init__(self) -> None:
        for name in ("tau_ms", "min_dwell_ms", "warmup_ms", "max_gap_ms"):
            if not getattr(self, name) >= 0:
                value = getattr(self, name)
                raise EmoblendError(f"StabilizerOptions.{name} is {value}; use >= 0 ms")
        if not 0 <= self.margin < 1:
            raise EmoblendError(f"StabilizerOptions.margin is {self.margin}; use 0 <= margin < 1")


class Stabilizer:
    """One face's temporal filter: ``update(probs, t_ms)`` -> (stable label index, confidence).

    The confidence is the smoothed probability of the stable label. ``labels`` is the
    classifier's label set; it only decides the warm-up label (see the module docstring).
    """

    def __init__(
        self, options: StabilizerOptions | None = None, labels: tuple[str, ...] = CLASSES
    ) -> None:
        self.options = options or StabilizerOptions()
        self._warmup = labels.index(WARMUP_LABEL) if WARMUP_LABEL in labels else None
        self.reset()

    def reset(self) -> None:
        self.smoothed: np.ndarray | None = None
        self.label: int | None = self._warmup
        self._first_ms: float | None = None
        self._last_ms: float | None = None
        self._since_ms: float | None = None  # when the current label was taken
        self._settled = False

    def update(self, probabilities: np.ndarray, timestamp_ms: float) -> tuple[int | None, float]:
        opts = self.options
        p = np.asarray(probabilities, dtype=np.float64)
        t = float(timestamp_ms)
        if self._last_ms is not None and t <= self._last_ms:
            raise EmoblendError(
                f"stabilizer timestamp {t} ms is not after the previous one ({self._last_ms} ms)"
            )
        if self.smoothed is None or t - self._last_ms > opts.max_gap_ms:
            self.reset()
            self.smoothed = p.copy()
            self._first_ms = self._since_ms = t
        else:
            dt = t - self._last_ms
            alpha = 1.0 if opts.tau_ms == 0 else 1.0 - math.exp(-dt / opts.tau_ms)
            self.smoothed += alpha * (p - self.smoothed)
        self._last_ms = t
        if not self._settled:
            if t - self._first_ms < opts.warmup_ms:
                return self.label, self._confidence()
            # the first real label: take the smoothed argmax, no margin against "unknown"
            self._settled = True
            self.label = int(np.argmax(self.smoothed))
            self._since_ms = t
            return self.label, self._confidence()
        best = int(np.argmax(self.smoothed))
        if (
            best != self.label
            and self.smoothed[best] - self.smoothed[self.label] >= opts.margin
            and t - self._since_ms >= opts.min_dwell_ms
        ):
            self.label = best
            self._since_ms = t
        return self.label, self._confidence()

    def _confidence(self) -> float:
        return 0.0 if self.label is None else float(self.smoothed[self.label])


def count_switches(labels: list | np.ndarray) -> int:
    """How many times a label sequence changes value (the flicker measure)."""
    seq = list(labels)
    return sum(a != b for a, b in zip(seq, seq[1:], strict=False))
