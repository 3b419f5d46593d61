"""``emoblend serve``: emotion readings over HTTP and WebSocket, and a page for the browser."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import typer

from ..errors import EmoblendError, require_extra
from .common import FaceModelOption
from .realtime_cmd import ModelOption, NumFacesOption


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on; any but loopback needs --token."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free one)."),
    model: str | None = ModelOption,
    num_faces: int = NumFacesOption,
    max_streams: int = typer.Option(4, "--max-streams", min=1,
                                    help="Streams served at once; more are closed (code 1013)."),
    max_frame_bytes: int = typer.Option(4_000_000, "--max-frame-bytes", min=1024,
                                        help="Largest encoded frame or photo accepted."),
    token: str | None = typer.Option(
        None, "--token", envvar="EMOBLEND_TOKEN",
        help="Secret every route but /healthz needs (Authorization: Bearer T, or ?token=T)."),
    face_model: Path | None = FaceModelOption,
) -> None:
    """Serve readings: photos (POST /v1/images), streams (WS /v1/stream) and a page at /."""
    for module in ("fastapi", "uvicorn", "multipart"):
        require_extra(module, "serve", "emoblend serve")
    import uvicorn

    from ..serve.app import ServeConfig, Serving, create_app
    if token is not None and not token.strip():
        raise EmoblendError("--token is empty; give a secret, or leave --token out on loopback")
    if token is None and not _is_loopback(host):
        raise EmoblendError(
            f"refusing to listen on {host} without a token (anyone on that network could send "
            "and read frames); pass --token SECRET (or set EMOBLEND_TOKEN), or use 127.0.0.1")
    sock = _bind(host, port)
    config = ServeConfig(model=model, num_faces=num_faces, max_streams=max_streams,
                         max_frame_bytes=max_frame_bytes, token=token,
                         face_model=None if face_model is None else str(face_model))
    try:
        state = Serving.open(config)
    except BaseException:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={token}" if token else ""
    print(f"emoblend serve: page at http://{shown}:{bound_port}/{query} , stream at "
          f"ws://{shown}:{bound_port}/v1/stream, model {state.classifier.name} "
          "(Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(
        create_app(state), log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
        # a frame over --max-frame-bytes gets an error message, not a dropped connection
        ws_max_size=max(16 * 2**20, 2 * max_frame_bytes + 8),
        ws_per_message_deflate=False))  # frames are JPEG/PNG already: deflate only costs CPU
    server.run(sockets=[sock])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """Bind before loading anything, so a taken port is one line and not a server log."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)  # a second server on this port now fails here, not later
    except OSError as exc:
        sock.close()
        raise EmoblendError(f"cannot listen on {host}:{port} ({exc.strerror}); "
                            "choose another --port or --host") from None
    sock.set_inheritable(True)
    return sock
