"""The FastAPI application: health, models, photos, streams and the page.

Laid out as FastAPI's tutorial suggests: typed response models, dependencies for the token
and the limits, and a lifespan that owns what start-up opens (the classifier, the photo
estimator) and closes it, with any stream still open, at shutdown.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from .. import __version__
from ..classify.classifier import Classifier, available_models, load_classifier
from ..errors import EmoblendError
from ..realtime.estimator import EmotionEstimator, EstimatorOptions
from .frames import FrameTooLarge, decode_frame
from .protocol import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TRY_AGAIN, MAX_PIXELS_SIDE, face_dict
from .stream import StreamSession

STATIC = Path(str(resources.files("emoblend.serve") / "static"))
MULTIPART_OVERHEAD = 64 * 1024
"""Room for multipart headers on top of --max-frame-bytes before a body is refused unread."""
DRAIN_LIMIT = 64 * 2**20
"""Bodies refused with 413 are read and dropped up to this size so the client sees the 413."""


@dataclass(frozen=True)
class ServeConfig:
    """What `emoblend serve` was asked for."""

    model: str | None = None
    num_faces: int = 1
    max_streams: int = 4
    max_frame_bytes: int = 4_000_000
    token: str | None = None
    face_model: str | None = None


@dataclass
class Serving:
    """What the server holds while it runs: one classifier shared by every estimator (ONNX
    Runtime sessions are thread-safe), one IMAGE-mode estimator for photos, the open streams."""

    config: ServeConfig
    classifier: Classifier
    photos: EmotionEstimator
    photo_lock: threading.Lock = field(default_factory=threading.Lock)
    streams: set[StreamSession] = field(default_factory=set)

    @classmethod
    def open(cls, config: ServeConfig) -> Serving:
        """Load the models; a wrong model name or a missing face model fails here, one line."""
        classifier = load_classifier(config.model)
        photos = EmotionEstimator(EstimatorOptions(
            classifier=classifier, num_faces=config.num_faces, running_mode="image",
            face_model=config.face_model))
        return cls(config, classifier, photos)

    @functools.cached_property
    def models(self) -> list[ModelEntry]:
        """The bundled classifiers' sidecars, read once."""
        current = self.classifier
        return [ModelEntry(name=name, serving=name == current.name,
                           sidecar=(current if name == current.name
                                    else load_classifier(name)).info.raw)
                for name in available_models()]

    def stream_options(self) -> EstimatorOptions:
        return EstimatorOptions(classifier=self.classifier, num_faces=self.config.num_faces,
                                running_mode="video", face_model=self.config.face_model)

    def hello(self) -> dict:
        """The stream's first message: what the client is talking to."""
        return {"version": __version__, "model": self.classifier.name,
                "classes": list(self.classifier.classes), "num_faces": self.config.num_faces,
                "max_frame_bytes": self.config.max_frame_bytes, "max_side": MAX_PIXELS_SIDE}

    def close(self) -> None:
        self.photos.close()


# ---- typed responses (they make the OpenAPI page at /docs) -------------------------------


class Health(BaseModel):
    status: str
    version: str
    model: str
    streams: int


class ModelEntry(BaseModel):
    name: str
    serving: bool
    """True for the model this server reads with."""
    sidecar: dict
    """The model's JSON sidecar: inputs, classes, metrics, version."""


class PhotoFace(BaseModel):
    face_id: int
    box: list[int]
    probabilities: dict[str, float]
    label: str


class PhotoResult(BaseModel):
    faces: list[PhotoFace]


class Error(BaseModel):
    error: str


# ---- dependencies: the token and the body limit -------------------------------------------


def token_matches(expected: str | None, headers: Mapping[str, str],
                  query: Mapping[str, str]) -> bool:
    """True without a configured token, or when the request carries it (in constant time)."""
    if expected is None:
        return True
    given = query.get("token")
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def serving(request: Request) -> Serving:
    return request.app.state.serving


def require_token(request: Request) -> None:
    if not token_matches(serving(request).config.token, request.headers, request.query_params):
        raise HTTPException(401, "missing or wrong token: send 'Authorization: Bearer TOKEN' "
                                 "(or ?token=TOKEN)", headers={"WWW-Authenticate": "Bearer"})


async def _too_large(request: Request, limit: int, received: int = 0) -> HTTPException:
    """The 413, after reading (not keeping) the rest of a moderately large body: a server that
    answers while the client still sends makes the connection reset, and most HTTP clients
    then report the reset instead of the 413."""
    async for chunk in request.stream():
        received += len(chunk)
        if received > DRAIN_LIMIT:
            break
    return _over(limit)


def _over(limit: int) -> HTTPException:
    return HTTPException(413, f"photo over {limit:,} bytes (--max-frame-bytes)")


async def photo_bytes(request: Request) -> bytes:
    """The photo in the body (raw, or multipart field ``file``), refused past the limit."""
    limit = serving(request).config.max_frame_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise await _too_large(request, limit)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, "the multipart body has no file field named 'file'")
        data = await upload.read(limit + 1)  # the form has read the whole body already
        if len(data) > limit:
            raise _over(limit)
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise await _too_large(request, limit, size)
            chunks.append(chunk)
        data = b"".join(chunks)
    return data


# ---- routes -----------------------------------------------------------------------------

public = APIRouter()
api = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


@public.get("/healthz", response_model=Health, tags=["server"])
def healthz(request: Request) -> Health:
    """Liveness, open to all (no token): the version, the model and the open streams."""
    state = serving(request)
    return Health(status="ok", version=__version__, model=state.classifier.name,
                  streams=len(state.streams))


@public.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The browser page; it carries no data, and must load to tell a user a token is wrong."""
    return FileResponse(STATIC / "index.html")


@api.get("/models", response_model=list[ModelEntry], tags=["models"])
def models(request: Request) -> list[ModelEntry]:
    """The classifiers bundled with this emoblend, with their sidecar metadata."""
    return serving(request).models


@api.post(
    "/images", response_model=PhotoResult, tags=["photos"],
    responses={400: {"model": Error}, 401: {"model": Error}, 413: {"model": Error}},
    openapi_extra={"requestBody": {"content": {
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}},
    }}},
)
async def images(request: Request, data: bytes = Depends(photo_bytes)) -> PhotoResult:
    """Read one photo (JPEG, PNG, WebP, BMP) in IMAGE mode: each face's probabilities."""
    state = serving(request)

    def read() -> list[dict]:
        image = decode_frame(data, state.config.max_frame_bytes)
        with state.photo_lock:  # one landmarker, one photo at a time
            readings = state.photos.process(image)
        return [face_dict(r, stream=False) for r in readings]

    return PhotoResult(faces=await run_in_threadpool(read))


async def stream(websocket: WebSocket) -> None:
    """One stream of frames: see docs/serve.md and emoblend.serve.protocol."""
    state: Serving = websocket.app.state.serving
    await websocket.accept()
    if not token_matches(state.config.token, websocket.headers, websocket.query_params):
        await websocket.close(CLOSE_POLICY, "missing or wrong token")
        return
    if len(state.streams) >= state.config.max_streams:
        await websocket.close(CLOSE_TRY_AGAIN, f"server busy: it serves at most "
                                               f"{state.config.max_streams} streams; try later")
        return
    session = StreamSession(websocket, state.stream_options(), state.config.max_frame_bytes,
                            state.hello())
    state.streams.add(session)
    try:
        await session.run()
    finally:
        state.streams.discard(session)


# ---- the application --------------------------------------------------------------------


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(state: Serving) -> FastAPI:
    """The application over opened models (see :meth:`Serving.open`); it closes them at the end."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.serving = state
        try:
            yield
        finally:
            await asyncio.gather(*(s.close(CLOSE_GOING_AWAY, "server shutting down")
                                   for s in list(state.streams)))
            state.close()

    app = FastAPI(title="emoblend", version=__version__, lifespan=lifespan,
                  description="Emotion readings of faces in photos and video streams.")
    app.include_router(public)
    app.include_router(api)
    app.add_api_websocket_route("/v1/stream", stream)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "; ".join(e.get("msg", "") for e in exc.errors()))

    @app.exception_handler(FrameTooLarge)
    async def too_large(request: Request, exc: FrameTooLarge) -> JSONResponse:
        return _error(413, str(exc))

    @app.exception_handler(EmoblendError)
    async def bad_input(request: Request, exc: EmoblendError) -> JSONResponse:
        return _error(400, str(exc))  # FrameUnreadable and any other one-line user error

    return app
