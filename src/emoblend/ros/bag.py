"""Write emotion readings as a ROS 2 bag in REP-155's topics, without a ROS installation.

A rosbag2 directory (``metadata.yaml`` + one MCAP file) that ``ros2 bag play`` replays into a
robot's stack and Foxglove opens, written with ``rosbags`` (pure Python). Per frame:

=================================== ========================================== ===============
topic                               type                                       when
=================================== ========================================== ===============
``/humans/faces/tracked``           ``hri_msgs/msg/IdsList``                   every frame
``/humans/faces/<id>/roi``          ``hri_msgs/msg/NormalizedRegionOfInterest2D`` each face
``/humans/faces/<id>/expression``   ``hri_msgs/msg/Expression``                each face
``/camera/image_raw/compressed``    ``sensor_msgs/msg/CompressedImage`` (JPEG) ``images=True``
=================================== ========================================== ===============

``<id>`` is ``face_<n>`` for emoblend's face id n (REP-155 asks for ids that are valid
identifiers, e.g. starting with a letter). ``expression`` is the stable label mapped to the
message's constants (``ros/expression.py``), ``confidence`` the stabilizer's confidence;
``valence`` and ``arousal`` are NaN, since no emoblend model estimates them and the message
defines no "not set" value of its own (0.0 would read as a real, neutral valence). The ROI's
``c`` is 1.0: MediaPipe returns faces above its presence threshold without a per-face score.

The bag is written under a hidden temporary folder and renamed to its name when complete
(``io.atomic.atomic_dir``): a run that fails or is killed leaves no half bag under that name.
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..io.atomic import atomic_dir
from .extra import BagError, require

if TYPE_CHECKING:
    from ..io.video import Frame
    from ..realtime.estimator import EmotionReading
from .clock import StreamClock, split_ns
from .expression import MSG_DIR, expression_for, expression_map

TRACKED_TOPIC = "/humans/faces/tracked"
IMAGE_TOPIC = "/camera/image_raw/compressed"
HRI_TYPES = ("Expression", "IdsList", "NormalizedRegionOfInterest2D")
IMAGE_FORMAT = "bgr8; jpeg compressed bgr8"
"""What ROS's compressed image_transport writes for a colour JPEG (and decodes from)."""


def face_name(face_id: int) -> str:
    """REP-155 face id for emoblend's face id: ``face_0``, ``face_1``, ..."""
    return f"face_{face_id}"


def face_topic(face_id: int, leaf: str) -> str:
    return f"/humans/faces/{face_name(face_id)}/{leaf}"


@cache
def typestore():
    """ROS 2 Jazzy's types plus hri_msgs, registered from the .msg files shipped in ros/msgs/.

    One per process: registering and compiling the (de)serializers costs ~0.1 s."""
    typesys = require("rosbags.typesys", "a ROS 2 bag")
    store = typesys.get_typestore(typesys.Stores.ROS2_JAZZY)
    types = {}
    for name in HRI_TYPES:
        text = (MSG_DIR / "hri_msgs" / f"{name}.msg").read_text(encoding="utf-8")
        types.update(typesys.get_types_from_msg(text, f"hri_msgs/msg/{name}"))
    store.register(types)
    return store


class BagWriter:
    """Feed it readings frame by frame; on a clean exit the bag appears at ``path``.

    ::

        with BagWriter("session_bag", images=True, wall_clock=True) as bag:
            while (frame := camera.read()[1]) is not None:
                t = now_ms()
                bag.write(estimator.process(frame, t), timestamp_ms=t, image=frame)

    ``images`` also records each frame (BGR, as OpenCV delivers it) as JPEG (``jpeg_quality``);
    then ``image`` must be given to :meth:`write`, which also gives the size the ROIs are
    normalized by (without images, pass ``image`` or ``image_size=(width, height)``).
    ``wall_clock`` stamps with the wall clock (live); otherwise stamps are the frames' own
    times (a video's timeline).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        images: bool = False,
        wall_clock: bool = False,
        frame_id: str = "camera",
        jpeg_quality: int = 90,
    ) -> None:
        self.path = Path(path)
        rosbag2 = require("rosbags.rosbag2", "a ROS 2 bag")
        if self.path.exists():
            raise BagError(
                f"bag folder {self.path} exists already; remove it or name another "
                "(like ros2 bag record, emoblend never writes into an existing bag)"
            )
        self.images = images
        self.frame_id = frame_id
        self.jpeg_quality = int(jpeg_quality)
        self.clock = StreamClock(wall_clock)
        self.frames_written = 0
        self.message_counts: dict[str, int] = {}
        self._rosbag2 = rosbag2
        self._store = typestore()
        self._types = self._store.types
        self._expressions: dict[str, str] | None = None
        self._connections: dict[str, object] = {}
        self._last_ns = -1
        self._stack: ExitStack | None = None
        self._writer = None

    # -- the context: a temporary folder, renamed on a clean exit ---------------------------

    def __enter__(self) -> BagWriter:
        self._stack = ExitStack()
        work = self._stack.enter_context(atomic_dir(self.path))
        self._writer = self._rosbag2.Writer(
            work, version=9, storage_plugin=self._rosbag2.StoragePlugin.MCAP
        )
        self._writer.open()
        self._connection(TRACKED_TOPIC, "hri_msgs/msg/IdsList")
        if self.images:
            self._connection(IMAGE_TOPIC, "sensor_msgs/msg/CompressedImage")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        stack, writer, self._writer = self._stack, self._writer, None
        if exc_type is None:
            try:
                writer.close()  # the MCAP index and metadata.yaml
            except BaseException as error:
                stack.__exit__(type(error), error, error.__traceback__)
                raise
        else:
            writer.abort()
        stack.__exit__(exc_type, exc, tb)  # renamed into place on success, removed otherwise

    # -- writing --------------------------------------------------------------------------

    def write_frame(self, frame: Frame, readings: list[EmotionReading]) -> None:
        """The frame loop's sink method (``realtime.pipeline.FrameSink``)."""
        self.write(readings, timestamp_ms=frame.timestamp_ms, image=frame.image)

    def write(
        self,
        readings: list[EmotionReading],
        *,
        timestamp_ms: int | float,
        image: np.ndarray | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        """One frame: the tracked ids, each face's ROI and expression, and the image if kept."""
        if self._writer is None:
            raise RuntimeError("use BagWriter as a context manager: with BagWriter(path) as bag")
        if image is not None:
            image_size = (image.shape[1], image.shape[0])
        if self.images and image is None:
            raise ValueError("this BagWriter records images: pass image= with every frame")
        if readings and image_size is None:
            raise ValueError("pass image= or image_size=(width, height) to normalize the ROIs")
        ns = self.clock.ns(timestamp_ms)
        if ns <= self._last_ns:
            raise ValueError(f"timestamps must increase: {timestamp_ms} ms came after a later one")
        self._last_ns = ns
        T = self._types
        sec, nanosec = split_ns(ns)
        header = T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
            frame_id=self.frame_id,
        )
        if self.images:
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise ValueError("OpenCV could not JPEG-encode the frame")
            msg = T["sensor_msgs/msg/CompressedImage"](
                header=header, format=IMAGE_FORMAT, data=np.frombuffer(jpeg, dtype=np.uint8)
            )
            self._put(IMAGE_TOPIC, msg, ns)
        ids = T["hri_msgs/msg/IdsList"](header=header, ids=[face_name(r.face_id) for r in readings])
        self._put(TRACKED_TOPIC, ids, ns)
        for r in readings:
            if self._expressions is None:  # the classifier's label set, checked once
                self._expressions = expression_map(r.probabilities)
            width, height = image_size
            x, y, w, h = r.box
            roi = T["hri_msgs/msg/NormalizedRegionOfInterest2D"](
                header=header,
                xmin=_unit(x / width), ymin=_unit(y / height),
                xmax=_unit((x + w) / width), ymax=_unit((y + h) / height),
                c=1.0,
            )
            self._put(face_topic(r.face_id, "roi"), roi, ns)
            label = self._expressions.get(r.stable_label) or expression_for(r.stable_label)
            expression = T["hri_msgs/msg/Expression"](
                header=header, expression=label,
                valence=math.nan, arousal=math.nan, confidence=float(r.confidence),
            )
            self._put(face_topic(r.face_id, "expression"), expression, ns)
        self.frames_written += 1

    def _connection(self, topic: str, msgtype: str):  # noqa: ANN202
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self._store
            )
            self.message_counts[topic] = 0
        return self._connections[topic]

    def _put(self, topic: str, msg, ns: int) -> None:  # noqa: ANN001
        connection = self._connection(topic, msg.__msgtype__)
        self._writer.write(connection, ns, self._store.serialize_cdr(msg, msg.__msgtype__))
        self.message_counts[topic] += 1


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
