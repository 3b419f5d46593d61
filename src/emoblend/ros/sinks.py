"""The ROS outputs the CLI asked for, as frame-loop sinks (``realtime.pipeline.FrameSink``).

Built before the camera or video opens, so a missing extra, an existing bag folder or a bad
address fails in one line before any work.
"""

from __future__ import annotations

import os

from ..errors import EmoblendError


def stream_sinks(
    *,
    bag: str | os.PathLike | None = None,
    bag_images: bool = False,
    foxglove: str | None = None,
    token: str | None = None,
    live: bool = False,
) -> list:
    """A BagWriter for ``bag`` and a FoxgloveLive for ``foxglove`` ([HOST:]PORT), as asked;
    ``token`` is what Foxglove clients must present (needed beyond loopback).

    ``live`` stamps the bag with the wall clock; otherwise with the video's frame times.
    """
    sinks: list = []
    if bag_images and bag is None:
        raise EmoblendError("--bag-images records the frames into a bag: add --bag OUT_DIR")
    if bag is not None:
        from .bag import BagWriter

        sinks.append(BagWriter(bag, images=bag_images, wall_clock=live))
    if foxglove is not None:
        from .foxglove_live import FoxgloveLive, parse_address

        host, port = parse_address(foxglove)
        sinks.append(FoxgloveLive(host, port, token=token))
    return sinks
