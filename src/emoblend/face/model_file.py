"""Find, verify and (when needed) download MediaPipe's Face Landmarker model file.

The ``mediapipe`` wheel ships no model. A robot in the field may have no network, so the
file is looked up in this order: an explicit path, the ``EMOBLEND_FACE_MODEL`` environment
variable, the user cache, and only then a download from Google's official URL. Every file
is checked against the known sha256, so a truncated or wrong file fails early with a clear
message instead of a MediaPipe crash deep in a graph.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from platformdirs import user_cache_dir

from ..errors import FaceModelError
from ..io.atomic import atomic_path

MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
    "face_landmarker/float16/1/face_landmarker.task"
)
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_FILENAME = "face_landmarker.task"
ENV_VAR = "EMOBLEND_FACE_MODEL"
URL_ENV_VAR = "EMOBLEND_FACE_MODEL_URL"
"""Overrides MODEL_URL: a mirror inside a lab network, or a local server in tests."""
CACHE_ENV_VAR = "EMOBLEND_CACHE_DIR"

_HOW_TO_SUPPLY = (
    f"download {MODEL_URL} on a connected machine and pass its path "
    f"(--face-model PATH) or set {ENV_VAR}=PATH"
)


def cache_dir() -> Path:
    """The directory where a downloaded model is kept (``EMOBLEND_CACHE_DIR`` overrides)."""
    return Path(os.environ.get(CACHE_ENV_VAR) or user_cache_dir("emoblend"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, source: str) -> Path:
    """Return ``path`` if it is the expected model file; raise FaceModelError otherwise."""
    if not path.is_file():
        raise FaceModelError(f"face model not found at {path} (from {source}); {_HOW_TO_SUPPLY}")
    actual = sha256_of(path)
    if actual != MODEL_SHA256:
        raise FaceModelError(
            f"face model {path} (from {source}) has sha256 {actual[:12]}…, expected "
            f"{MODEL_SHA256[:12]}…: the file is corrupt or a different model; {_HOW_TO_SUPPLY}"
        )
    return path


def model_url() -> str:
    """Where to download the model from: ``$EMOBLEND_FACE_MODEL_URL`` or Google's URL."""
    return os.environ.get(URL_ENV_VAR) or MODEL_URL


def download(dest: Path, url: str | None = None, timeout: float = 30.0) -> Path:
    """Download the model to ``dest`` via a temporary file, verify it, then rename.

    A failed, interrupted or wrong download never leaves a file at ``dest``, nor a
    temporary one beside it.
    """
    url = url or model_url()
    try:
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while block := resp.read(1 << 20):
                    out.write(block)
            verify(tmp, f"download from {url}")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, urllib.error.HTTPError) else exc
        reason = getattr(reason, "reason", reason)
        raise FaceModelError(
            f"could not download the face model from {url} ({reason}); {_HOW_TO_SUPPLY}"
        ) from None
    return dest


def resolve_face_model(
    path: str | os.PathLike | None = None, *, allow_download: bool = True
) -> Path:
    """Return a verified path to the face model: explicit path, env var, cache, download."""
    if path is not None:
        return verify(Path(path).expanduser(), "the explicit path")
    env = os.environ.get(ENV_VAR)
    if env:
        return verify(Path(env).expanduser(), f"${ENV_VAR}")
    cached = cache_dir() / MODEL_FILENAME
    if cached.is_file():
        return verify(cached, "the cache")
    if not allow_download:
        raise FaceModelError(f"no face model in {cached.parent}; {_HOW_TO_SUPPLY}")
    return download(cached)
