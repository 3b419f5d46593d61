"""The page at / in a real browser: Debian's Chromium, driven by Playwright, with a fake camera
that plays single_face.mp4 (as YUV4MPEG2, looped), against a real `emoblend serve`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import pytest
from serve_support import Server, need_serve_extra

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "page-token-9d1"


def write_y4m(clip: Path, out: Path) -> Path:
    """A YUV4MPEG2 4:2:0 copy of ``clip``: the format Chromium's fake camera plays."""
    capture = cv2.VideoCapture(str(clip))
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = round(capture.get(cv2.CAP_PROP_FPS))
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        while (frame := capture.read()[1]) is not None:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()
    return out


def wait_for_status(page, text: str) -> None:  # noqa: ANN001 - a Playwright page
    """Until the page's status line says ``text``."""
    page.wait_for_function(
        "text => document.getElementById('status').textContent.includes(text)", arg=text,
        timeout=60_000)


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture()
def launch(tmp_path):
    """launch(*chromium_args) -> a page in a fresh headless Chromium profile."""
    need_serve_extra()
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is missing: pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        contexts = []

        def start(*args: str):  # noqa: ANN202 - a Playwright page
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / f"profile{len(contexts)}"), executable_path=str(CHROMIUM),
                headless=True, viewport={"width": 720, "height": 760},
                args=[*BROWSER_ARGS, *args])
            contexts.append(context)
            return context.pages[0] if context.pages else context.new_page()

        try:
            yield start
        finally:
            for context in contexts:
                context.close()


@pytest.fixture()
def browser_page(launch, media, tmp_path):
    """A page whose camera plays single_face.mp4 (looped), permission granted."""
    camera = write_y4m(media / "single_face.mp4", tmp_path / "camera.y4m")
    return launch("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={camera}")


def test_the_page_reads_the_camera_happy_and_says_when_the_server_is_lost(browser_page, tmp_path):
    page = browser_page
    with Server(tmp_path, "--token", TOKEN) as server:
        page.goto(f"{server.url}/?token={TOKEN}")
        # happy, on the camera clip's second loop or later (so the chart has some history).
        # The reply that meets the condition is the one checked: a reply read later may
        # already belong to the clip's neutral restart, its stable label still held happy.
        last = page.wait_for_function(
            "() => { const last = window.emoblendLast;"
            " return last && last.frame > 90 && last.faces.length > 0"
            " && last.faces[0].stable_label === 'happy'"
            " && last.faces[0].raw_label === 'happy' ? last : null; }",
            timeout=120_000).json_value()
        page.wait_for_timeout(150)  # the overlay is drawn on the next animation frame
        face = last["faces"][0]
        assert face["probabilities"]["happy"] > 0.5
        assert "fps" in page.inner_text("#stats")
        shot = tmp_path / "serve-page.png"
        page.screenshot(path=str(shot))
        assert cv2.imread(str(shot)).shape[1] == 720
        if os.environ.get("EMOBLEND_SCREENSHOT"):
            shutil.copy(shot, os.environ["EMOBLEND_SCREENSHOT"])
        server.stop()
        wait_for_status(page, "Lost the server")


def test_the_page_says_the_token_is_wrong(browser_page, tmp_path):
    page = browser_page
    with Server(tmp_path, "--token", TOKEN) as server:
        page.goto(f"{server.url}/?token=not-{TOKEN}")
        wait_for_status(page, "Wrong or missing token")
        assert page.evaluate("window.emoblendLast") is None


def test_the_page_says_when_the_camera_is_refused_or_missing(launch, tmp_path):
    with Server(tmp_path) as server:
        refused = launch("--use-fake-device-for-media-stream")  # nobody grants permission
        refused.goto(server.url + "/")
        wait_for_status(refused, "Camera permission denied")
        missing = launch("--use-fake-ui-for-media-stream")  # granted, but no camera at all
        missing.goto(server.url + "/")
        wait_for_status(missing, "No camera found")
