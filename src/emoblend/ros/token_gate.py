"""A token check in front of the Foxglove server, which has none of its own.

``foxglove-sdk``'s live server lets in whoever connects. Beyond loopback, emoblend follows the
rule of ``emoblend serve``: no address other than loopback without a token. The Foxglove server
then listens on a free loopback port, and this gate listens on the address asked for: a client
that gives the token (``ws://HOST:PORT/?token=TOKEN``, which Foxglove's "Open connection" box
accepts as it is, or an ``Authorization: Bearer TOKEN`` header) is passed through to it, frame
for frame in both directions, with the subprotocol it asked for; any other gets HTTP 401 before
the WebSocket opens. The token is compared in constant time.
"""

from __future__ import annotations

import hmac
import threading
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from .extra import require

SUBPROTOCOLS = ("foxglove.sdk.v1", "foxglove.websocket.v1")


def request_token(path: str, authorization: str | None) -> str:
    """The token a client presented: ``?token=`` in the URL, else a Bearer header."""
    token = parse_qs(urlsplit(path).query).get("token", [""])[0]
    if not token and authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    return token


class TokenGate:
    """Serve ``host:port``; pass clients with ``token`` on to ``ws://127.0.0.1:upstream_port``."""

    def __init__(self, host: str, port: int, upstream_port: int, token: str) -> None:
        serve = require("websockets.sync.server", "a --token for the live Foxglove view").serve

        self.token = token.encode()
        self.upstream = f"ws://127.0.0.1:{upstream_port}"
        self._server = serve(
            self._relay, host, port, subprotocols=list(SUBPROTOCOLS),
            process_request=self._check, max_size=None, compression=None,
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="foxglove-token-gate")
        self._thread.start()

    def _check(self, connection, request):  # noqa: ANN001, ANN202
        given = request_token(request.path, request.headers.get("Authorization"))
        if hmac.compare_digest(given.encode(), self.token):
            return None
        return connection.respond(
            HTTPStatus.UNAUTHORIZED, "missing or wrong token: connect to ws://HOST:PORT/?token=TOKEN\n"
        )

    def _relay(self, client) -> None:  # noqa: ANN001
        from websockets.sync.client import connect

        offered = [client.subprotocol] if client.subprotocol else None
        with connect(self.upstream, subprotocols=offered, max_size=None,
                     compression=None) as server:
            back = threading.Thread(target=_pump, args=(server, client), daemon=True)
            back.start()
            _pump(client, server)
            back.join(timeout=5)

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def _pump(source, sink) -> None:  # noqa: ANN001
    """Copy messages until either side closes, then close the other."""
    from websockets.exceptions import ConnectionClosed

    try:
        for message in source:
            sink.send(message)
    except ConnectionClosed:
        pass
    finally:
        sink.close()
