"""ROS time for a stream's frames: the container's frame times, or the wall clock when live.

A frame's ``timestamp_ms`` is the container's time for a video (0 at its first frame) and
milliseconds since the camera opened for a camera (``io/camera.py``, a monotonic clock). A bag
of a video keeps the video's own times, so its stamps equal the timeline's ``time_ms``; a live
recording is stamped with the wall clock, as a ROS node stamps what it publishes: the first
frame is anchored to ``time.time_ns()`` and later frames keep their monotonic spacing (a wall
clock stepped by NTP mid-session cannot make stamps go backwards).
"""

from __future__ import annotations

import time


class StreamClock:
    """Turns a frame's ``timestamp_ms`` into nanoseconds of ROS time."""

    def __init__(self, wall_clock: bool = False) -> None:
        self.wall_clock = wall_clock
        self._origin_ns: int | None = None if wall_clock else 0

    def ns(self, timestamp_ms: int | float) -> int:
        frame_ns = int(round(timestamp_ms * 1_000_000))
        if self._origin_ns is None:
            self._origin_ns = time.time_ns() - frame_ns
        return self._origin_ns + frame_ns


def split_ns(ns: int) -> tuple[int, int]:
    """(sec, nanosec) as ``builtin_interfaces/Time`` and ``foxglove.Timestamp`` hold them."""
    return ns // 1_000_000_000, ns % 1_000_000_000
