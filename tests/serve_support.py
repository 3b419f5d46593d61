"""A real `emoblend serve` in a subprocess on a free loopback port, for the server's tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def need_serve_extra() -> None:
    for module in ("fastapi", "uvicorn", "websockets", "multipart"):
        pytest.importorskip(module, reason=f"{module} is missing: pip install -e '.[serve]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, data: bytes | None = None, headers: dict | None = None,
         timeout: float = 30) -> tuple[int, dict | list]:
    """(status, JSON body) of a GET, or a POST when ``data`` is given; errors are returned."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Server:
    """``with Server(tmp_path, "--token", "t") as server:`` runs a real server until the end."""

    def __init__(self, folder: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/stream"
        self.args = ["--port", str(self.port), *args]
        self.stdout = folder / f"serve-{self.port}.out"
        self.stderr = folder / f"serve-{self.port}.err"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "emoblend", "serve", *self.args],
                stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.errors()}")
            try:
                if http(self.url + "/healthz", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not answer /healthz within 120 s: {self.errors()}")

    def health(self) -> dict:
        return http(self.url + "/healthz")[1]

    def wait_streams(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.health()["streams"] != count:
            assert time.monotonic() < deadline, f"streams never came to {count}"
            time.sleep(0.1)

    def errors(self) -> str:
        return self.stderr.read_text() if self.stderr.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server ignored signal {sig} for {timeout} s") from None
        return self.proc.returncode

    def __exit__(self, *exc: object) -> None:
        self.stop()
