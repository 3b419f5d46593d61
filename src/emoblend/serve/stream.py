"""One WebSocket stream: its own VIDEO-mode estimator, a one-frame slot, a worker thread.

Why a slot and not a queue: a camera produces frames whether or not the server keeps up, and
a queue turns a slow second into seconds of latency that never go away. Here a frame that
arrives while another still waits replaces it (the replaced one is counted as dropped), so a
reply is never older than one frame's processing. The estimator runs in the stream's own
thread: MediaPipe and ONNX Runtime release the GIL, so the event loop keeps answering
``/healthz`` and the other streams, and each landmarker stays on the thread that made it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import EmoblendError
from ..realtime.estimator import EmotionEstimator, EstimatorOptions
from .frames import check_bytes, decode_frame
from .protocol import CLIENT_CLOCK, frame_reply, unpack_frame

log = logging.getLogger("emoblend.serve")


@dataclass(frozen=True)
class Pending:
    """A received frame waiting for the worker."""

    index: int
    timestamp_ms: int
    data: bytes


class LatestFrame:
    """A single slot: ``put`` replaces a waiting frame (and counts it dropped); ``get`` waits."""

    def __init__(self) -> None:
        self._item: Pending | None = None
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, item: Pending) -> None:
        if self._item is not None:
            self.dropped += 1
        self._item = item
        self._ready.set()

    async def get(self) -> Pending:
        await self._ready.wait()
        item, self._item = self._item, None
        self._ready.clear()
        return item


class StreamSession:
    """Serve one connection: receive frames, read the latest one, reply, free it all at the end."""

    def __init__(self, websocket: WebSocket, options: EstimatorOptions, max_frame_bytes: int,
                 hello: dict) -> None:
        self.websocket = websocket
        self.options = options
        self.max_frame_bytes = max_frame_bytes
        self.hello = hello
        self.slot = LatestFrame()
        self.frames = 0
        self._client_clock = False
        self._last_timestamp = -1
        self._send_lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="emoblend-stream")
        self._estimator: EmotionEstimator | None = None

    async def run(self) -> None:
        """Until the client leaves (or the server stops): the estimator is closed either way."""
        loop = asyncio.get_running_loop()
        worker = None
        try:
            self._estimator = await loop.run_in_executor(
                self._executor, EmotionEstimator.create_from_options, self.options)
            await self._send({"server": self.hello})
            worker = asyncio.create_task(self._work())
            await self._receive()
        except (WebSocketDisconnect, ConnectionError):
            pass
        finally:
            if worker is not None:
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
            if self._estimator is not None:
                await loop.run_in_executor(self._executor, self._estimator.close)
            self._executor.shutdown(wait=False)

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await self._on_text(message["text"])
            elif message.get("bytes") is not None:
                await self._on_frame(message["bytes"])

    async def _on_text(self, text: str) -> None:
        try:
            command = json.loads(text)
        except json.JSONDecodeError:
            command = None
        if command == CLIENT_CLOCK:
            self._client_clock = True
            return
        await self._send({"error": f"unknown text message {text[:80]!r}; the only one is "
                                   f"{json.dumps(CLIENT_CLOCK)} (frames go as binary messages)"})

    async def _on_frame(self, message: bytes) -> None:
        """Checks that cost nothing happen here; decoding happens on the worker thread."""
        index = self.frames
        self.frames += 1
        try:
            if self._client_clock:
                timestamp, data = unpack_frame(message)
                if timestamp <= self._last_timestamp:
                    raise ValueError(
                        f"timestamp {timestamp} ms is not after the previous frame's "
                        f"{self._last_timestamp} ms; client timestamps must increase")
            else:
                data = message
                timestamp = max(int(time.monotonic() * 1000), self._last_timestamp + 1)
            check_bytes(data, self.max_frame_bytes)  # before it takes the slot
        except (ValueError, EmoblendError) as exc:
            await self._send({"error": str(exc), "frame": index})
            return
        self._last_timestamp = timestamp
        self.slot.put(Pending(index, timestamp, data))

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = await self.slot.get()
            reply = await loop.run_in_executor(self._executor, self._read, pending)
            await self._send(reply)

    def _read(self, pending: Pending) -> dict:
        """On the stream's thread: decode, estimate, build the reply (or an error message)."""
        start = time.perf_counter()
        try:
            image = decode_frame(pending.data, self.max_frame_bytes)
            readings = self._estimator.process(image, pending.timestamp_ms)
        except EmoblendError as exc:
            return {"error": str(exc), "frame": pending.index}
        except Exception:  # a bug must not end the stream, but it must be seen
            log.exception("frame %d failed", pending.index)
            return {"error": "internal error reading this frame (see the server log)",
                    "frame": pending.index}
        server_ms = (time.perf_counter() - start) * 1e3
        return frame_reply(pending.index, pending.timestamp_ms, readings, server_ms,
                           self.slot.dropped)

    async def _send(self, message: dict) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))

    async def close(self, code: int, reason: str) -> None:
        """Close the connection from the server's side (shutdown); run() then frees the rest."""
        try:
            await self.websocket.close(code, reason)
        except (RuntimeError, ConnectionError):
            pass  # already closed
