"""One colour per label, shared by the video overlay and the timeline plot.

Okabe-Ito colours, which colour-blind viewers can tell apart too; the paper's three classes
keep the overlay colours they always had. "unknown" and "neutral" share a grey: they never
appear in the same label set.
"""

from __future__ import annotations

LABEL_RGB: dict[str, tuple[int, int, int]] = {
    "happy": (255, 165, 0),
    "unknown": (170, 170, 170),
    "sad": (0, 100, 200),
    "angry": (213, 94, 0),
    "disgust": (0, 158, 115),
    "fear": (204, 121, 167),
    "surprise": (240, 228, 66),
    "neutral": (170, 170, 170),
}
_FALLBACK = (255, 255, 255)


def label_bgr(label: str) -> tuple[int, int, int]:
    """The label's colour in OpenCV's channel order."""
    r, g, b = LABEL_RGB.get(label, _FALLBACK)
    return (b, g, r)


def label_hex(label: str) -> str:
    """The label's colour as matplotlib takes it ("#rrggbb")."""
    return "#{:02x}{:02x}{:02x}".format(*LABEL_RGB.get(label, _FALLBACK))
