"""A live Foxglove view of a running session: the camera, the boxes and labels, the readings.

``emoblend live --foxglove [HOST:]PORT`` serves Foxglove's WebSocket protocol with
``foxglove-sdk`` while the camera runs; Foxglove (web or desktop: "Open connection" ->
"Foxglove WebSocket" -> ``ws://HOST:PORT``) shows it with ``docs/foxglove-layout.json``.
Three channels:

- ``/camera/image_raw/compressed`` (``foxglove.CompressedImage``, JPEG): the camera frame, on
  the topic a bag made with ``--bag-images`` keeps it on, so one layout shows both. It is
  encoded only while a client subscribes: the robot pays nothing when nobody watches.
- ``/camera/annotations`` (``foxglove.ImageAnnotations``): each face's box as a closed line
  and its stable label with confidence as text, in the image's pixels, stamped like the frame,
  so Foxglove's Image panel draws them over it. The metadata names the frame index.
- ``/emoblend/readings`` (JSON): per frame, every face's probabilities (the classifier's own
  labels), raw and stable label and confidence, for a Plot or Raw Messages panel.

``layout_json`` writes the Foxglove layout (``docs/foxglove-layout.json``) for these topics.

Timestamps are the wall clock (``clock.StreamClock``). The server binds to loopback by default;
another address is refused without a token, the rule ``emoblend serve`` follows; with a token,
``token_gate.TokenGate`` checks it in front of the SDK's server, which has no check of its own.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

import cv2

from ..errors import EmoblendError
from .bag import IMAGE_TOPIC, face_topic
from .clock import StreamClock, split_ns
from .extra import require

if TYPE_CHECKING:
    from ..io.video import Frame
    from ..realtime.estimator import EmotionReading

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
ANNOTATIONS_TOPIC = "/camera/annotations"
READINGS_TOPIC = "/emoblend/readings"
FRAME_ID = "camera"

READINGS_SCHEMA = {
    "type": "object",
    "title": "emoblend readings of one frame",
    "properties": {
        "frame": {"type": "integer"},
        "timestamp_ms": {"type": "integer", "description": "the stream's own clock"},
        "faces": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "face_id": {"type": "integer"},
                    "box": {"type": "array", "items": {"type": "integer"}},
                    "probabilities": {
                        "type": "object", "additionalProperties": {"type": "number"},
                        "description": "keyed by the classifier's labels",
                    },
                    "raw_label": {"type": "string"},
                    "stable_label": {"type": "string"},
                    "confidence": {"type": "number"},
                },
            },
        },
    },
}


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` -> (host, port); a bare port means loopback. IPv6 as ``[::1]:8765``."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise EmoblendError(
            f"--foxglove {text!r}: give [HOST:]PORT with a port number 0-65535, "
            f"e.g. --foxglove {DEFAULT_PORT} or --foxglove 127.0.0.1:{DEFAULT_PORT}"
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FoxgloveLive:
    """A Foxglove WebSocket server fed frame by frame (a ``realtime.pipeline.FrameSink``).

    The server starts on ``__enter__`` and stops on ``__exit__``; ``port`` is the bound port
    (useful with port 0, which lets the system choose a free one). ``token`` is required for
    any address but loopback; clients then present it (``ws://HOST:PORT/?token=TOKEN``).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        jpeg_quality: int = 80,
        name: str = "emoblend",
    ) -> None:
        self._fg = require("foxglove", "the live Foxglove view")
        if not is_loopback(host) and not token:
            raise EmoblendError(
                f"--foxglove {host}:{port} would show this camera to anyone on the network; "
                "serving beyond loopback needs a token: --token TOKEN (or EMOBLEND_TOKEN), "
                "and clients then connect to ws://HOST:PORT/?token=TOKEN"
            )
        self.token = token or None
        if self.token:
            require("websockets", "a --token for the live Foxglove view")
        self.host, self.requested_port = host, port
        self.jpeg_quality = int(jpeg_quality)
        self.name = name
        self.clock = StreamClock(wall_clock=True)
        self.frames_published = 0
        self.server = None
        self._gate = None

    @property
    def port(self) -> int:
        if self._gate is not None:
            return self._gate.port
        return self.server.port if self.server is not None else self.requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def __enter__(self) -> FoxgloveLive:
        fg = self._fg
        from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel

        self._context = fg.Context()
        self._image = CompressedImageChannel(IMAGE_TOPIC, context=self._context)
        self._annotations = ImageAnnotationsChannel(ANNOTATIONS_TOPIC, context=self._context)
        self._readings = fg.Channel(READINGS_TOPIC, schema=READINGS_SCHEMA, context=self._context)
        # With a token, the SDK's server hides on a free loopback port behind the token gate.
        host, port = ("127.0.0.1", 0) if self.token else (self.host, self.requested_port)
        try:
            self.server = fg.start_server(name=self.name, host=host, port=port,
                                          context=self._context)
            if self.token:
                from .token_gate import TokenGate

                self._gate = TokenGate(self.host, self.requested_port, self.server.port,
                                       self.token)
        except (OSError, RuntimeError) as error:  # a busy port, an address not on this machine
            self.__exit__()
            raise EmoblendError(
                f"cannot serve Foxglove on {self.host}:{self.requested_port} ({error}); "
                "choose another port with --foxglove PORT"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._gate is not None:
            self._gate.close()
            self._gate = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def write_frame(self, frame: Frame, readings: list[EmotionReading]) -> None:
        from foxglove.messages import (
            Color,
            CompressedImage,
            ImageAnnotations,
            KeyValuePair,
            Point2,
            PointsAnnotation,
            PointsAnnotationType,
            TextAnnotation,
            Timestamp,
        )

        ns = self.clock.ns(frame.timestamp_ms)
        stamp = Timestamp(*split_ns(ns))
        if self._image.has_sinks():
            ok, jpeg = cv2.imencode(
                ".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
            )
            if ok:
                self._image.log(
                    CompressedImage(timestamp=stamp, frame_id=FRAME_ID, data=jpeg.tobytes(),
                                    format="jpeg"),
                    log_time=ns,
                )
        green, white = Color(r=0.2, g=0.9, b=0.3, a=1.0), Color(r=1.0, g=1.0, b=1.0, a=1.0)
        shade = Color(r=0.0, g=0.0, b=0.0, a=0.6)
        boxes, texts = [], []
        for r in readings:
            x, y, w, h = (float(v) for v in r.box)
            corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
            boxes.append(PointsAnnotation(
                timestamp=stamp, type=PointsAnnotationType.LineLoop,
                points=[Point2(x=px, y=py) for px, py in corners],
                outline_color=green, thickness=3.0,
            ))
            texts.append(TextAnnotation(
                timestamp=stamp, position=Point2(x=x, y=max(0.0, y - 8.0)),
                text=f"#{r.face_id} {r.stable_label} {r.confidence:.2f}", font_size=20.0,
                text_color=white, background_color=shade,
            ))
        self._annotations.log(
            ImageAnnotations(timestamp=stamp, points=boxes, texts=texts,
                             metadata=[KeyValuePair(key="frame", value=str(frame.index))]),
            log_time=ns,
        )
        self._readings.log(
            {
                "frame": frame.index,
                "timestamp_ms": int(frame.timestamp_ms),
                "faces": [
                    {"face_id": r.face_id, "box": [int(v) for v in r.box],
                     "probabilities": {k: round(float(v), 6) for k, v in r.probabilities.items()},
                     "raw_label": r.raw_label, "stable_label": r.stable_label,
                     "confidence": round(float(r.confidence), 6)}
                    for r in readings
                ],
            },
            log_time=ns,
        )
        self.frames_published += 1


def layout(labels: Iterable[str]) -> dict:
    """A Foxglove layout (the app's "Import from file" format) for a classifier's ``labels``.

    Left, the Image panel: the camera with the boxes and labels drawn over it. Right, a Plot of
    face 0's probabilities and stable confidence (live), and of its ``/expression`` confidence
    (a bag), over the Raw Messages of the readings (live) and of the expression (a bag). Panel
    configurations are built with foxglove-sdk's own layout classes, so their keys are the app's.
    """
    fl = require("foxglove.layouts", "the Foxglove layout")
    readings = f"{READINGS_TOPIC}.faces[:]{{face_id==0}}"
    expression = face_topic(0, "expression")
    plotted = [(f"{readings}.probabilities.{label}", label) for label in labels] + [
        (f"{readings}.confidence", "stable confidence"),
        (f"{expression}.confidence", "bag: expression confidence"),
    ]
    series = [fl.PlotSeries(value=value, label=label, enabled=True,
                            timestamp_method="receiveTime") for value, label in plotted]
    panels = {
        "Image!emoblend": fl.ImageConfig(image_mode=fl.ImageModeConfig(
            image_topic=IMAGE_TOPIC,
            annotations={ANNOTATIONS_TOPIC: fl.ImageAnnotationSettings(visible=True)},
        )),
        "Plot!emoblend": fl.PlotConfig(paths=series, min_y_value=0.0, max_y_value=1.0,
                                       show_legend=True, is_synced=True),
        "RawMessages!readings": fl.RawMessagesConfig(topic_path=READINGS_TOPIC),
        "RawMessages!expression": fl.RawMessagesConfig(topic_path=expression),
    }
    return {
        "configById": {key: json.loads(config.to_json()) for key, config in panels.items()},
        "globalVariables": {},
        "userNodes": {},
        "playbackConfig": {"speed": 1},
        "layout": {
            "direction": "row", "splitPercentage": 55, "first": "Image!emoblend",
            "second": {
                "direction": "column", "splitPercentage": 50, "first": "Plot!emoblend",
                "second": {"direction": "row", "first": "RawMessages!readings",
                           "second": "RawMessages!expression"},
            },
        },
    }


def layout_json(labels: Iterable[str]) -> str:
    return json.dumps(layout(labels), indent=2) + "\n"
