"""The messages of ``/v1/stream`` and ``/v1/images``, shared by the server and the client.

Plain functions on dicts and bytes (no web framework), so robot code that only runs the
client needs nothing but ``websockets``. docs/serve.md describes the same shapes for people.

Client -> server:
- binary: one encoded frame (JPEG, PNG, WebP); the server stamps it with its monotonic clock;
- text ``{"clock": "client"}``: from then on each binary message is an 8-byte little-endian
  unsigned timestamp in ms followed by the encoded frame.

Server -> client (text, JSON):
- ``{"server": {...}}`` once on connect: version, model, classes, num_faces, limits;
- ``{"frame", "timestamp_ms", "faces", "server_ms", "dropped"}`` per processed frame;
- ``{"error": "...", "frame": n}`` for a frame it could not read (the stream goes on).
"""

from __future__ import annotations

import struct

CLIENT_CLOCK = {"clock": "client"}
"""Text message switching a stream to client timestamps."""

TIMESTAMP = struct.Struct("<Q")
"""The 8-byte little-endian unsigned prefix of a binary frame on a client clock."""

CLOSE_POLICY = 1008
"""WebSocket close code for a missing or wrong token."""
CLOSE_TRY_AGAIN = 1013
"""WebSocket close code when the server already runs --max-streams streams."""
CLOSE_GOING_AWAY = 1001
"""WebSocket close code when the server shuts down."""

MAX_PIXELS_SIDE = 4096
"""Frames and photos wider or taller than this are refused (413 / an error message)."""


def pack_frame(timestamp_ms: int, encoded: bytes) -> bytes:
    """A binary message on a client clock: the timestamp prefix, then the encoded frame."""
    return TIMESTAMP.pack(int(timestamp_ms)) + encoded


def unpack_frame(message: bytes) -> tuple[int, bytes]:
    """(timestamp_ms, encoded frame) of a binary message on a client clock."""
    if len(message) <= TIMESTAMP.size:
        raise ValueError(
            f"a frame on the client clock needs an {TIMESTAMP.size}-byte timestamp and an "
            f"encoded image; got {len(message)} bytes"
        )
    return TIMESTAMP.unpack_from(message)[0], message[TIMESTAMP.size:]


def face_dict(reading, *, stream: bool) -> dict:  # noqa: ANN001 - EmotionReading
    """One face of a reply: the stream's shape, or the photo's (no stabilizer fields)."""
    face = {
        "face_id": reading.face_id,
        "box": [int(v) for v in reading.box],
        "probabilities": {k: round(float(v), 6) for k, v in reading.probabilities.items()},
    }
    if stream:
        face.update(raw_label=reading.raw_label, stable_label=reading.stable_label,
                    confidence=round(float(reading.confidence), 6))
    else:
        face["label"] = reading.raw_label
    return face


def frame_reply(frame: int, timestamp_ms: int, readings: list, server_ms: float,
                dropped: int) -> dict:
    """The reply to one processed frame of a stream."""
    return {"frame": frame, "timestamp_ms": int(timestamp_ms),
            "faces": [face_dict(r, stream=True) for r in readings],
            "server_ms": round(server_ms, 2), "dropped": dropped}
