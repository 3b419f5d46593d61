"""`emoblend serve` end to end: a real server process on a loopback port, real WebSocket and
HTTP clients, the real face model, real clips and photos from ../shared/media."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, run_cli
from serve_support import Server, free_port, http, need_serve_extra

need_serve_extra()

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from emoblend.classify.classifier import DEFAULT_MODEL  # noqa: E402
from emoblend.serve.protocol import CLIENT_CLOCK, pack_frame  # noqa: E402

TOKEN = "test-token-5f2c"
MAX_FRAME_BYTES = 300_000
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(media, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    with Server(folder, "--token", TOKEN, "--max-streams", "4",
                "--max-frame-bytes", str(MAX_FRAME_BYTES)) as running:
        yield running


def jpeg_frames(path: Path, quality: int = 90) -> list[bytes]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (image := capture.read()[1]) is not None:
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    capture.release()
    return frames


def open_stream(server: Server, token: str | None = TOKEN):
    """A real WebSocket stream; returns (connection, the server's greeting)."""
    url = server.ws_url + (f"?token={token}" if token is not None else "")
    ws = connect(url, max_size=None, compression=None, open_timeout=30).__enter__()
    return ws, json.loads(ws.recv(timeout=60))


def reply_to(ws) -> dict:  # noqa: ANN001
    return json.loads(ws.recv(timeout=60))


# ---- the command line ----------------------------------------------------------------------


def test_listening_beyond_loopback_without_a_token_is_refused():
    proc = run_cli("serve", "--host", "0.0.0.0", "--port", "0", timeout=120)
    assert_user_error(proc, "--token", "0.0.0.0")


def test_a_taken_port_is_one_line(server):
    proc = run_cli("serve", "--port", str(server.port), timeout=120)
    assert_user_error(proc, f"127.0.0.1:{server.port}", "--port")


def test_video_to_no_server_is_one_line_and_writes_nothing(media, tmp_path):
    proc = run_cli("video", media / "single_face.mp4", "--server",
                   f"ws://127.0.0.1:{free_port()}", "--timeline", tmp_path / "t.csv")
    assert_user_error(proc, "cannot reach the server")
    assert not (tmp_path / "t.csv").exists()


def test_sigterm_and_ctrl_c_shut_down_cleanly_with_a_stream_open(media, tmp_path):
    frame = jpeg_frames(media / "single_face.mp4")[0]
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Server(tmp_path) as server:
            ws, hello = open_stream(server, token=None)
            ws.send(frame)
            assert "faces" in reply_to(ws)
            start = time.monotonic()
            code = server.stop(sig)
            assert time.monotonic() - start < 15
            # uvicorn hands the signal on once shut down, and the CLI's stop_on_signals exits
            # with the shell's status for it, as every command does: 143 SIGTERM, 130 Ctrl-C
            assert code == 128 + sig, code
            assert "Traceback" not in server.errors(), server.errors()
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert "page at http://127.0.0.1:" in server.stdout.read_text()


# ---- HTTP: health, models, photos, the token ---------------------------------------------


def test_health_is_open_and_every_other_route_needs_the_token(server):
    status, health = http(server.url + "/healthz")
    assert status == 200 and health["status"] == "ok" and health["model"] == DEFAULT_MODEL
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, body = http(server.url + "/v1/models", headers=headers)
        assert status == 401 and "token" in body["error"]
    status, body = http(server.url + "/v1/models?token=wrong")
    assert status == 401
    status, models = http(server.url + "/v1/models", headers=AUTH)
    assert status == 200
    assert http(server.url + f"/v1/models?token={TOKEN}")[0] == 200
    serving = [m for m in models if m["serving"]]
    assert [m["name"] for m in serving] == [health["model"]]
    assert {"blend-mlp", "landmark-mlp", "paper-lstm"} <= {m["name"] for m in models}
    assert all(m["sidecar"]["classes"] for m in models)


def test_photo_reads_like_the_local_estimator(server, media):
    from emoblend import EmotionEstimator, EstimatorOptions
    from emoblend.io.images import read_image

    photo = media / "single_face.jpg"
    status, raw = http(server.url + "/v1/images", photo.read_bytes(), AUTH)
    assert status == 200 and len(raw["faces"]) == 1
    boundary = "emoblendtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{photo.name}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() \
        + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    status, multipart = http(server.url + "/v1/images", body,
                             {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and multipart == raw
    with EmotionEstimator(EstimatorOptions(running_mode="image", color="rgb")) as local:
        (expected,) = local.process(read_image(photo))
    face = raw["faces"][0]
    assert list(face["probabilities"]) == list(local.classifier.info.classes)
    assert face["label"] == expected.raw_label
    assert face["box"] == list(expected.box)
    for label, p in expected.probabilities.items():
        assert face["probabilities"][label] == pytest.approx(p, abs=1e-5)
    status, none = http(server.url + "/v1/images",
                        (media / "free-mountain-vector-01.jpg").read_bytes(), AUTH)
    assert status == 200 and none == {"faces": []}


def test_bad_photos_get_400_and_413_with_a_message(server, media):
    status, body = http(server.url + "/v1/images", b"this is not an image", AUTH)
    assert status == 400 and "cannot decode" in body["error"]
    big = (media / "Image_with_alpha.png").read_bytes()
    assert len(big) > MAX_FRAME_BYTES
    status, body = http(server.url + "/v1/images", big, AUTH)
    assert status == 413 and "bytes" in body["error"]
    wide = cv2.imencode(".png", np.zeros((8, 5000, 3), np.uint8))[1].tobytes()
    assert len(wide) < MAX_FRAME_BYTES
    status, body = http(server.url + "/v1/images", wide, AUTH)
    assert status == 413 and "5000x8" in body["error"] and "4096" in body["error"]
    status, body = http(server.url + "/v1/images", (media / "single_face.jpg").read_bytes())
    assert status == 401


# ---- the stream ----------------------------------------------------------------------------


def test_a_streamed_clip_reads_happy_at_the_end(server, media):
    frames = jpeg_frames(media / "single_face.mp4")
    ws, hello = open_stream(server)
    with ws:
        assert hello["server"]["model"] == DEFAULT_MODEL
        replies = []
        for frame in frames:  # one in flight: the next frame goes after the reply
            ws.send(frame)
            replies.append(reply_to(ws))
    assert [r["frame"] for r in replies] == list(range(len(frames)))
    assert all(r["dropped"] == 0 for r in replies)
    stamps = [r["timestamp_ms"] for r in replies]
    assert stamps == sorted(set(stamps))
    assert all(len(r["faces"]) == 1 for r in replies)
    face = replies[-1]["faces"][0]
    assert list(face["probabilities"]) == hello["server"]["classes"]
    assert set(face) == {"face_id", "box", "probabilities", "raw_label", "stable_label",
                         "confidence"}
    last_third = replies[-len(replies) // 3:]
    assert {r["faces"][0]["stable_label"] for r in last_third} == {"happy"}


def test_bad_frames_get_an_error_and_the_stream_goes_on(server, media):
    good = jpeg_frames(media / "single_face.mp4")[:3]
    ws, _ = open_stream(server)
    with ws:
        ws.send(json.dumps(CLIENT_CLOCK))
        ws.send(pack_frame(1000, good[0]))
        assert reply_to(ws)["timestamp_ms"] == 1000
        ws.send(pack_frame(1033, b"\x89PNG but not really an image"))
        assert "cannot decode" in reply_to(ws)["error"]
        ws.send(pack_frame(1066, np.random.default_rng(0).bytes(MAX_FRAME_BYTES + 1)))
        assert "--max-frame-bytes" in reply_to(ws)["error"]
        ws.send(pack_frame(1100, cv2.imencode(".png", np.zeros((4097, 16, 3), np.uint8))[1]
                           .tobytes()))
        assert "4096" in reply_to(ws)["error"]
        ws.send(pack_frame(500, good[1]))
        assert "not after" in reply_to(ws)["error"]
        ws.send(pack_frame(1133, good[2]))
        reply = reply_to(ws)
        assert reply["timestamp_ms"] == 1133 and len(reply["faces"]) == 1
        assert reply["frame"] == 5


def test_the_token_guards_the_stream(server):
    for token in (None, "wrong"):
        with (connect(server.ws_url + (f"?token={token}" if token else ""), open_timeout=30)
              as ws, pytest.raises(ConnectionClosed) as closed):
            ws.recv(timeout=30)
        assert closed.value.rcvd.code == 1008
    with connect(server.ws_url, additional_headers=AUTH, open_timeout=30) as ws:
        assert "server" in json.loads(ws.recv(timeout=60))


def test_four_streams_run_health_stays_quick_and_a_fifth_is_turned_away(server, media):
    frames = jpeg_frames(media / "WolfgangLanger_Pexels.mp4")[::4]
    stop = threading.Event()
    counts = [0] * 4
    opened = []

    def pump(i: int) -> None:
        ws, _ = open_stream(server)
        opened.append(i)
        with ws:
            while not stop.is_set():
                ws.send(frames[counts[i] % len(frames)])
                reply_to(ws)
                counts[i] += 1

    threads = [threading.Thread(target=pump, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    try:
        server.wait_streams(4)
        while min(counts) < 3:  # every stream is busy reading frames
            time.sleep(0.05)
        timings = []
        for _ in range(20):
            start = time.perf_counter()
            health = server.health()
            timings.append(time.perf_counter() - start)
            assert health["streams"] == 4
            time.sleep(0.05)
        with (connect(server.ws_url + f"?token={TOKEN}", open_timeout=30) as ws,
              pytest.raises(ConnectionClosed) as closed):
            ws.recv(timeout=30)
        assert closed.value.rcvd.code == 1013 and "4 streams" in closed.value.rcvd.reason
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert min(counts) > 5, counts
    assert float(np.median(timings)) < 0.1, timings
    server.wait_streams(0)


def test_a_client_killed_mid_stream_frees_its_stream(server, media):
    script = (
        "import sys, cv2\n"
        "from websockets.sync.client import connect\n"
        "ws = connect(sys.argv[1], open_timeout=30).__enter__(); ws.recv(timeout=60)\n"
        "capture = cv2.VideoCapture(sys.argv[2])\n"
        "frames = [cv2.imencode('.jpg', f)[1].tobytes() for ok, f in iter(capture.read, "
        "(False, None))]\n"
        "while True:\n"
        "    for f in frames:\n"
        "        ws.send(f); ws.send(f)  # two at a time: the server has one waiting\n"
        "        ws.recv(timeout=60)\n"
    )
    client = subprocess.Popen([sys.executable, "-c", script, server.ws_url + f"?token={TOKEN}",
                               str(media / "single_face.mp4")])
    try:
        server.wait_streams(1, timeout=60)
        time.sleep(1.0)
    finally:
        client.kill()
        client.wait()
    server.wait_streams(0)
    ws, _ = open_stream(server)
    with ws:
        ws.send(jpeg_frames(media / "single_face.mp4")[-1])
        assert reply_to(ws)["faces"][0]["stable_label"] is not None


# ---- the remote client: the same outputs as a local run ----------------------------------


def test_remote_video_writes_what_a_local_run_writes(server, media, tmp_path):
    clip = media / "single_face.mp4"
    local = run_cli("video", clip, "--timeline", tmp_path / "local.csv")
    assert local.returncode == 0, local.stderr
    remote = run_cli("video", clip, "--server", f"ws://127.0.0.1:{server.port}",
                     "--token", TOKEN, "--timeline", tmp_path / "remote.csv",
                     "-o", tmp_path / "remote.mp4", "--plot", tmp_path / "remote.png")
    assert remote.returncode == 0, remote.stderr
    a = pd.read_csv(tmp_path / "local.csv")
    b = pd.read_csv(tmp_path / "remote.csv")
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 72
    assert (a["stable_label"] == b["stable_label"]).mean() >= 0.98
    assert (a[["frame", "time_ms", "face_id"]] == b[["frame", "time_ms", "face_id"]]).all().all()
    assert cv2.VideoCapture(str(tmp_path / "remote.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 72
    assert (tmp_path / "remote.png").stat().st_size > 10_000
    wrong = run_cli("video", clip, "--server", f"ws://127.0.0.1:{server.port}",
                    "--token", "wrong", "--timeline", tmp_path / "wrong.csv")
    assert_user_error(wrong, "token")
    assert not (tmp_path / "wrong.csv").exists()


def test_remote_estimator_at_jpeg_95_matches_local_on_a_clip_where_a_face_appears(
        server, media, tmp_path):
    from emoblend import EstimatorOptions
    from emoblend.realtime.pipeline import process_video
    from emoblend.serve.client import RemoteEstimator

    clip = media / "noface_face.mov"
    local = process_video(clip, EstimatorOptions())
    remote = process_video(clip, make_estimator=lambda: RemoteEstimator(
        server.ws_url, token=TOKEN, encoding="jpeg", jpeg_quality=95))
    a, b = pd.DataFrame(local.rows), pd.DataFrame(remote.rows)
    assert len(a) > 30 and len(b) > 30  # one face at most per frame (--num-faces 1)
    merged = a.merge(b, on="frame", how="outer", suffixes=("_l", "_r"))
    assert (merged["stable_label_l"] == merged["stable_label_r"]).mean() >= 0.98


def test_remote_estimator_reconnects_to_a_restarted_server_and_raises_server_errors(
        media, tmp_path):
    from emoblend.serve.client import RemoteEstimator, ServerError

    capture = cv2.VideoCapture(str(media / "single_face.mp4"))
    frames = [capture.read()[1] for _ in range(3)]
    capture.release()
    noise = np.random.default_rng(1).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    with Server(tmp_path, "--max-frame-bytes", str(MAX_FRAME_BYTES)) as first:
        estimator = RemoteEstimator(f"ws://127.0.0.1:{first.port}")
        assert len(estimator.process(frames[0], 0)) == 1
        with pytest.raises(ServerError, match="max-frame-bytes"):
            estimator.process(noise, 33)  # PNG of noise: about 700 KB
        assert estimator.classes == tuple(estimator.server["classes"])
    with Server(tmp_path, port=first.port):
        assert len(estimator.process(frames[1], 66)) == 1  # the old connection is gone
        assert estimator.reconnects == 1
        assert len(estimator.process(frames[2], 100)) == 1
    estimator.close()
