"""A client for ``emoblend serve``: an estimator whose frames are read on a server.

:class:`RemoteEstimator` has the same ``process(frame, timestamp_ms)`` as the local
:class:`~emoblend.realtime.estimator.EmotionEstimator`, so the frame loop, the timeline and
the overlay work unchanged (``emoblend video IN --server ws://HOST:PORT``), and robot code
can swap one for the other::

    with RemoteEstimator("ws://compute-box:8765", token="...") as estimator:
        for reading in estimator.process(frame_bgr, timestamp_ms=t):
            robot.react(reading.face_id, reading.stable_label, reading.confidence)

It sends each frame with its own timestamp (the client clock) and waits for the reply
before the next one, so nothing is dropped. A lost connection is retried; the server then
starts a fresh stream (face ids and stabilizers begin again). Needs only ``websockets``.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from ..errors import EmoblendError
from ..realtime.estimator import EmotionReading, EstimatorOptions
from .protocol import CLIENT_CLOCK, CLOSE_POLICY, CLOSE_TRY_AGAIN, pack_frame


class RemoteError(EmoblendError):
    """The server could not be used: unreachable, refused, or it refused a frame."""


class ServerError(RemoteError):
    """The server answered a frame with an error message (``{"error": ...}``)."""


class AuthError(RemoteError):
    """The server wants a token and this one is missing or wrong (close code 1008)."""


class ServerBusy(RemoteError):
    """The server already serves --max-streams streams (close code 1013)."""


def stream_url(url: str) -> str:
    """ws://HOST:PORT (or http://...) -> ws://HOST:PORT/v1/stream."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise RemoteError(f"server {url!r} is no ws://HOST:PORT address")
    path = parts.path if parts.path not in ("", "/") else "/v1/stream"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class RemoteEstimator:
    """Read frames on an emoblend server, one reply per frame (see the module docstring)."""

    def __init__(self, url: str, *, token: str | None = None, encoding: str = "png",
                 jpeg_quality: int = 95, retries: int = 3, timeout_s: float = 30.0) -> None:
        try:
            import websockets.sync.client  # noqa: F401 - checked here, used in _connect
        except ImportError:
            raise RemoteError("the remote client needs websockets: pip install "
                              "'emoblend[serve]' (or pip install websockets)") from None
        if encoding not in ("png", "jpeg"):
            raise RemoteError(f"encoding {encoding!r} is not 'png' or 'jpeg'")
        self.url = stream_url(url)
        self.token = token
        self.encoding = encoding
        self.jpeg_quality = jpeg_quality
        self.retries = retries
        self.timeout_s = timeout_s
        self.options = EstimatorOptions()
        """The server's estimator runs with default stabilizer settings; run_stream reads them."""
        self.server: dict = {}
        """The server's greeting: version, model, classes, num_faces, limits."""
        self.reconnects = 0
        self._frames = 0
        self._ws = None
        self._connect()

    def _connect(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            # entered by hand: the connection lives as long as this object, not one block
            self._ws = connect(self.url, additional_headers=headers, open_timeout=self.timeout_s,
                               max_size=None, compression=None).__enter__()  # frames: JPEG/PNG
            self._ws.send(json.dumps(CLIENT_CLOCK))
            hello = json.loads(self._ws.recv(timeout=self.timeout_s))
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise RemoteError(f"cannot reach the server at {self.url} ({exc}); is "
                              "`emoblend serve` running there?") from None
        if "server" not in hello:
            raise RemoteError(f"{self.url} did not greet like an emoblend server: {hello}")
        self.server = hello["server"]
        self._frames = 0

    def _closed_error(self, exc: Exception) -> RemoteError:
        rcvd = getattr(exc, "rcvd", None)
        code, reason = (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")
        if code == CLOSE_POLICY:
            return AuthError(f"the server refused the token ({reason}); pass the server's "
                             "--token")
        if code == CLOSE_TRY_AGAIN:
            return ServerBusy(f"the server is busy ({reason})")
        return RemoteError(f"the server closed the stream (code {code} {reason})".strip())

    @property
    def classes(self) -> tuple[str, ...]:
        """The server model's labels, in its order."""
        return tuple(self.server.get("classes", ()))

    def encode(self, frame: np.ndarray) -> bytes:
        """PNG (lossless, the default) or JPEG at ``jpeg_quality`` of a BGR frame."""
        if self.encoding == "png":
            ok, buf = cv2.imencode(".png", frame, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        else:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RemoteError(f"cannot encode a frame of shape {np.shape(frame)} as "
                              f"{self.encoding}")
        return buf.tobytes()

    def process(self, frame: np.ndarray, timestamp_ms: int | None = None
                ) -> list[EmotionReading]:
        """The readings of one BGR frame; ``timestamp_ms`` must increase from call to call."""
        from websockets.exceptions import ConnectionClosed

        if timestamp_ms is None:
            raise RemoteError("the remote estimator needs timestamp_ms for every frame")
        message = pack_frame(timestamp_ms, self.encode(frame))
        for attempt in range(self.retries + 1):
            try:
                return self._exchange(message)
            except ConnectionClosed as exc:
                error = self._closed_error(exc)
                if isinstance(error, AuthError) or attempt == self.retries:
                    raise error from None
                time.sleep(0.5 * 2**attempt)
                self._close_socket()
                self._connect()
                self.reconnects += 1
        raise AssertionError("unreachable")

    def _exchange(self, message: bytes) -> list[EmotionReading]:
        index = self._frames
        self._ws.send(message)
        self._frames += 1
        while True:
            try:
                reply = json.loads(self._ws.recv(timeout=self.timeout_s))
            except TimeoutError:
                raise RemoteError(f"no reply from {self.url} within {self.timeout_s:.0f} s") \
                    from None
            if "error" in reply:
                raise ServerError(f"server: {reply['error']}")
            if reply.get("frame") == index:
                return [_reading(face, reply["timestamp_ms"]) for face in reply["faces"]]

    def _close_socket(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def close(self) -> None:
        self._close_socket()

    def __enter__(self) -> RemoteEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reading(face: dict, timestamp_ms: int) -> EmotionReading:
    return EmotionReading(
        face_id=int(face["face_id"]), box=tuple(int(v) for v in face["box"]),
        probabilities={k: float(v) for k, v in face["probabilities"].items()},
        raw_label=face["raw_label"], stable_label=face["stable_label"],
        confidence=float(face["confidence"]), timestamp_ms=int(timestamp_ms))
