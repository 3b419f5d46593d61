"""Face-model resolution: explicit path, env var, cache, download; the checksum guards all."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest
from conftest import assert_user_error, run_cli

from emoblend.errors import FaceModelError
from emoblend.face.model_file import (
    CACHE_ENV_VAR,
    ENV_VAR,
    MODEL_FILENAME,
    MODEL_SHA256,
    URL_ENV_VAR,
    resolve_face_model,
    sha256_of,
)


@pytest.fixture
def clean_env(monkeypatch, tmp_path) -> Path:
    """No $EMOBLEND_FACE_MODEL, and an empty cache directory of our own."""
    cache = tmp_path / "cache"
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(URL_ENV_VAR, raising=False)
    monkeypatch.setenv(CACHE_ENV_VAR, str(cache))
    return cache


@pytest.fixture
def server(tmp_path, face_model):
    """A local HTTP server on 127.0.0.1 serving the right model, a truncated one and junk."""
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(face_model, root / "good.task")
    data = face_model.read_bytes()
    (root / "truncated.task").write_bytes(data[: len(data) // 2])
    (root / "wrong.task").write_bytes(b"not a model" * 1000)
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


def test_explicit_path_wins_over_env(face_model, clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere.task"))  # would fail if used
    assert resolve_face_model(face_model) == face_model


def test_env_var(face_model, clean_env, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(face_model))
    assert resolve_face_model() == face_model


def test_cache(face_model, clean_env):
    clean_env.mkdir(parents=True)
    shutil.copy(face_model, clean_env / MODEL_FILENAME)
    assert resolve_face_model() == clean_env / MODEL_FILENAME


def test_wrong_checksum_and_missing_file(clean_env, tmp_path):
    wrong = tmp_path / "wrong.task"
    wrong.write_bytes(b"\x00" * 4096)
    with pytest.raises(FaceModelError, match="sha256") as info:
        resolve_face_model(wrong)
    assert "\n" not in str(info.value) and "--face-model" in str(info.value)
    with pytest.raises(FaceModelError, match="not found"):
        resolve_face_model(tmp_path / "missing.task")


def test_cli_one_line_errors(media, tmp_path):
    wrong = tmp_path / "wrong.task"
    wrong.write_bytes(b"\x00" * 4096)
    image = media / "single_face.jpg"
    assert_user_error(
        run_cli("blendshapes", image, "--face-model", wrong), "sha256", "corrupt", "--face-model"
    )
    assert_user_error(
        run_cli("blendshapes", image, "--face-model", tmp_path / "missing.task"),
        "face model not found",
        "EMOBLEND_FACE_MODEL",
    )


def test_download_is_verified_and_cached(server, clean_env, monkeypatch):
    monkeypatch.setenv(URL_ENV_VAR, f"{server}/good.task")
    path = resolve_face_model()
    assert path == clean_env / MODEL_FILENAME
    assert sha256_of(path) == MODEL_SHA256
    assert sorted(p.name for p in clean_env.iterdir()) == [MODEL_FILENAME]
    # A second call finds it in the cache, with no server.
    monkeypatch.setenv(URL_ENV_VAR, "http://127.0.0.1:9/unused")
    assert resolve_face_model() == path


@pytest.mark.parametrize("name", ["truncated.task", "wrong.task", "missing.task"])
def test_bad_download_leaves_no_file(server, clean_env, monkeypatch, name):
    monkeypatch.setenv(URL_ENV_VAR, f"{server}/{name}")
    with pytest.raises(FaceModelError) as info:
        resolve_face_model()
    message = str(info.value)
    assert "\n" not in message and ENV_VAR in message
    assert ("sha256" in message) if name != "missing.task" else ("404" in message)
    assert not clean_env.exists()  # neither the model, a partial download, nor the folder made


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_url_says_how_to_supply_the_file(clean_env, monkeypatch):
    monkeypatch.setenv(URL_ENV_VAR, f"http://127.0.0.1:{_unused_port()}/face_landmarker.task")
    with pytest.raises(FaceModelError, match="could not download") as info:
        resolve_face_model()
    assert "--face-model PATH" in str(info.value) and ENV_VAR in str(info.value)
    assert not (clean_env / MODEL_FILENAME).exists()


def test_unreachable_url_from_the_cli(media, clean_env, monkeypatch):
    monkeypatch.setenv(URL_ENV_VAR, f"http://127.0.0.1:{_unused_port()}/face_landmarker.task")
    proc = run_cli("blendshapes", media / "single_face.jpg")
    assert_user_error(proc, "could not download the face model", "EMOBLEND_FACE_MODEL=PATH")
