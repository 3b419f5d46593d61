"""ROS 2 bags and the live Foxglove view, as a robot team uses them: real clips through the real
model, bags read back with rosbags' own reader, a real Foxglove server joined by a real client."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, run_cli

from emoblend.ros.expression import (
    ExpressionError,
    expression_constants,
    expression_for,
    expression_map,
)

SEVEN = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013's seven labels, as a seven-class model's sidecar names them."""

HRI_TOPIC_TYPES = {
    "/humans/faces/tracked": "hri_msgs/msg/IdsList",
    "/humans/faces/face_0/roi": "hri_msgs/msg/NormalizedRegionOfInterest2D",
    "/humans/faces/face_0/expression": "hri_msgs/msg/Expression",
}


@pytest.fixture(scope="module")
def rosbags():
    return pytest.importorskip(
        "rosbags", reason='rosbags is not installed: pip install "emoblend[ros]"')


@pytest.fixture(scope="module")
def ros_extra(rosbags):
    """The whole [ros] extra: rosbags, foxglove-sdk and websockets (also the tests' client)."""
    for module in ("foxglove", "websockets"):
        pytest.importorskip(module, reason=f'{module} missing: pip install "emoblend[ros]"')


def _read_bag(path: Path) -> dict[str, list]:
    """Every message of a bag by topic, as (log time ns, message, connection, raw CDR)."""
    from rosbags.highlevel import AnyReader

    topics: dict[str, list] = {}
    with AnyReader([path]) as reader:  # no typestore given: the bag's own definitions are used
        for connection, t, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            topics.setdefault(connection.topic, []).append((t, message, connection, bytes(raw)))
    return topics


@pytest.fixture(scope="module")
def video_bag(rosbags, media, tmp_path_factory):
    """`emoblend video single_face.mp4 --bag --bag-images --timeline`, run once."""
    out = tmp_path_factory.mktemp("video_bag")
    proc = run_cli("video", media / "single_face.mp4", "--bag", out / "bag", "--bag-images",
                   "--timeline", out / "timeline.csv")
    assert proc.returncode == 0, proc.stderr
    assert "ROS 2 bag written to" in proc.stdout
    return out / "bag", pd.read_csv(out / "timeline.csv")


def test_video_bag_reads_back_with_rosbags_in_rep155_topics(video_bag):
    bag, timeline = video_bag
    assert sorted(p.name for p in bag.iterdir()) == ["bag.mcap", "metadata.yaml"]
    topics = _read_bag(bag)
    types = {topic: messages[0][2].msgtype for topic, messages in topics.items()}
    assert types == {**HRI_TOPIC_TYPES,
                     "/camera/image_raw/compressed": "sensor_msgs/msg/CompressedImage"}
    frames = timeline["frame"].nunique()
    assert frames == 72 and set(timeline["face_id"]) == {0}
    assert len(topics["/humans/faces/tracked"]) == len(topics["/camera/image_raw/compressed"]) == 72
    face = timeline[timeline["face_id"] == 0]
    for leaf in ("roi", "expression"):
        messages = topics[f"/humans/faces/face_0/{leaf}"]
        assert len(messages) == len(face)  # one per frame the face was read in
        stamps = [t for t, *_ in messages]
        assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
        assert stamps == [int(ms) * 1_000_000 for ms in face["time_ms"]]  # the container's times
        headers = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec
                   for _, m, *_ in messages]
        assert headers == stamps

    expressions = [m for _, m, *_ in topics["/humans/faces/face_0/expression"]]
    last_third = expressions[-len(expressions) // 3:]
    assert {m.expression for m in last_third} == {expressions[0].HAPPY}  # the message's constant
    assert {m.expression for m in expressions} <= set(expression_constants().values())
    assert [m.expression for m in expressions] == [expression_for(s) for s in face["stable_label"]]
    assert all(math.isnan(m.valence) and math.isnan(m.arousal) for m in expressions)
    assert all(0.0 < m.confidence <= 1.0 for m in expressions)

    rois = [m for _, m, *_ in topics["/humans/faces/face_0/roi"]]
    for roi, row in zip(rois, face.itertuples(), strict=True):
        assert roi.xmin == pytest.approx(row.x / 640, abs=1e-6)
        assert roi.ymax == pytest.approx((row.y + row.h) / 360, abs=1e-6)
    ids = [list(m.ids) for _, m, *_ in topics["/humans/faces/tracked"]]
    assert ids == [["face_0"]] * 72

    _, image, *_ = topics["/camera/image_raw/compressed"][40]
    decoded = cv2.imdecode(np.asarray(image.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (360, 640, 3) and "jpeg" in image.format


def test_cdr_round_trips_through_rosbags_and_the_schemas_are_the_shipped_ones(video_bag):
    from rosbags.typesys import Stores, get_typestore

    from emoblend.ros.bag import typestore

    bag, _ = video_bag
    topics = _read_bag(bag)
    store = typestore()
    for topic, messages in topics.items():
        _, _, connection, raw = messages[len(messages) // 2]
        message = store.deserialize_cdr(raw, connection.msgtype)
        assert bytes(store.serialize_cdr(message, connection.msgtype)) == raw, topic
        # the definition stored in the bag is what the shipped .msg files generate
        assert connection.msgdef.data == store.generate_msgdef(connection.msgtype,
                                                               ros_version=2)[0]
        assert connection.digest == store.hash_rihs01(connection.msgtype)
    jazzy = get_typestore(Stores.ROS2_JAZZY)
    assert store.hash_rihs01("sensor_msgs/msg/CompressedImage") == jazzy.hash_rihs01(
        "sensor_msgs/msg/CompressedImage")
    # RIHS01 of hri_msgs 2.0.0's published Expression.msg (humble-devel), computed by rosbags
    # from the published file when ros/msgs was written: our restated file has the same schema.
    assert store.hash_rihs01("hri_msgs/msg/Expression") == (
        "RIHS01_411b88e0604397d44775d8ec6a4bc69398fb0dfbfe864c33a40fa99ee85f1b00")


FOXGLOVE_READER = Path(__file__).parent / "foxglove_reader"


def test_foxglove_s_own_readers_decode_the_bag(video_bag):
    """The Foxglove app's MCAP and ROS 2 libraries (npm: @mcap/core, @foxglove/rosmsg,
    @foxglove/rosmsg2-serialization, run by Node) parse the bag's schemas and decode every
    message to what rosbags reads."""
    import shutil

    node = shutil.which("node")
    if node is None or not (FOXGLOVE_READER / "node_modules").is_dir():
        pytest.skip("needs Node.js and `npm ci --prefix tests/foxglove_reader` (.ci/run does it)")
    bag, _ = video_bag
    proc = subprocess.run([node, FOXGLOVE_READER / "read_bag.mjs", bag / "bag.mcap"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    topics = _read_bag(bag)
    assert {t: (v["schema"], v["count"]) for t, v in seen["topics"].items()} == {
        t: (m[0][2].msgtype, len(m)) for t, m in topics.items()}
    assert {v["encoding"] for v in seen["topics"].values()} == {"ros2msg"}
    ours = topics["/humans/faces/face_0/expression"]
    assert [(e["expression"], int(e["stamp_ns"])) for e in seen["expressions"]] == [
        (m.expression, t) for t, m, *_ in ours]
    assert [e["confidence"] for e in seen["expressions"]] == pytest.approx(
        [m.confidence for _, m, *_ in ours])


def test_three_and_seven_class_labels_map_to_the_messages_constants():
    constants = expression_constants()
    assert constants["NEUTRAL"] == "neutral" and len(constants) == 25
    seven = expression_map(SEVEN)
    assert seven == {"angry": "angry", "disgust": "disgusted", "fear": "scared",
                     "happy": "happy", "sad": "sad", "surprise": "surprised",
                     "neutral": "neutral"}
    assert set(seven.values()) <= set(constants.values())
    assert len(set(seven.values())) == 7  # no two emotions collapse into one constant

    from emoblend.classify.classifier import load_classifier

    three = expression_map(load_classifier().info.classes)  # the shipped model's own labels
    assert three == {"happy": "happy", "unknown": "neutral", "sad": "sad"}
    with pytest.raises(ExpressionError, match="contempt"):
        expression_map([*SEVEN, "contempt"])


def test_bagwriter_takes_seven_class_readings_from_a_robot_program(rosbags, media, tmp_path):
    """A robot program feeding BagWriter itself: readings of the real clip, their probabilities
    spread over a seven-class model's labels (unknown's share over the five others)."""
    from emoblend import EmotionEstimator, EstimatorOptions
    from emoblend.io.video import VideoSource
    from emoblend.ros import BagWriter

    weights = {"angry": 0.1, "disgust": 0.1, "fear": 0.1, "surprise": 0.1, "neutral": 0.6}
    written = []
    with (EmotionEstimator.create_from_options(EstimatorOptions()) as estimator,
          BagWriter(tmp_path / "seven") as bag):
        for frame in VideoSource(media / "single_face.mp4"):
            readings = []
            for r in estimator.process(frame.image, frame.timestamp_ms):
                p = {label: r.probabilities.get(label, 0.0) for label in SEVEN}
                for label, share in weights.items():
                    p[label] = r.probabilities["unknown"] * share
                stable = r.stable_label if r.stable_label in p else max(p, key=p.get)
                readings.append(replace(r, probabilities=p, stable_label=stable))
            bag.write(readings, timestamp_ms=frame.timestamp_ms, image_size=(640, 360))
            written += readings
    messages = [m for _, m, *_ in _read_bag(tmp_path / "seven")["/humans/faces/face_0/expression"]]
    assert [m.expression for m in messages] == [expression_for(r.stable_label) for r in written]
    assert {m.expression for m in messages} <= set(expression_map(SEVEN).values())
    assert {m.expression for m in messages[-len(messages) // 3:]} == {"happy"}
    assert [m.confidence for m in messages] == pytest.approx([r.confidence for r in written])


def test_a_failed_or_killed_run_leaves_no_bag(rosbags, media, tmp_path):
    data = (media / "WolfgangLanger_Pexels.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"  # decodes 143 of its 472 frames
    truncated.write_bytes(data[: len(data) // 3])
    proc = run_cli("video", truncated, "--bag", tmp_path / "cut_bag")
    assert_user_error(proc, "truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated.mp4"]

    killed = subprocess.Popen(
        [sys.executable, "-m", "emoblend", "video", str(media / "WolfgangLanger_Pexels.mp4"),
         "--bag", str(tmp_path / "killed_bag"), "--bag-images"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and killed.poll() is None:
            partial = list(tmp_path.glob(".killed_bag.*.tmp/killed_bag/killed_bag.mcap"))
            if partial and partial[0].stat().st_size > 200_000:  # frames are being written
                break
            time.sleep(0.05)
        assert killed.poll() is None, "the run ended before it could be killed"
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.kill()
        killed.wait()
    assert not (tmp_path / "killed_bag").exists()  # only the hidden temporary folder remains


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _looped_clip(media: Path, path: Path, loops: int) -> Path:
    """single_face.mp4 played ``loops`` times in a row, so a live session lasts a while."""
    frames = []
    capture = cv2.VideoCapture(str(media / "single_face.mp4"))
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return path


async def _foxglove_client(url: str, want: int, timeout: float) -> dict:
    """Join as Foxglove does: subprotocol, serverInfo, advertise, subscribe, binary messageData;
    protobuf channels decoded from the FileDescriptorSet the server advertises."""
    import websockets
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    deadline = time.monotonic() + timeout
    while True:
        try:
            ws = await websockets.connect(url, subprotocols=["foxglove.sdk.v1"], max_size=None)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    got: dict = {"serverInfo": None, "channels": {}, "messages": {}}
    decoders, subscriptions = {}, {}
    async with ws:
        assert ws.subprotocol == "foxglove.sdk.v1"
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic())
            except (TimeoutError, asyncio.TimeoutError, websockets.ConnectionClosed):
                break
            if isinstance(data, str):
                message = json.loads(data)
                if message["op"] == "serverInfo":
                    got["serverInfo"] = message
                elif message["op"] == "advertise":
                    subscribe = []
                    for channel in message["channels"]:
                        got["channels"][channel["topic"]] = channel
                        sub_id = len(subscriptions) + 1
                        subscriptions[sub_id] = channel["topic"]
                        subscribe.append({"id": sub_id, "channelId": channel["id"]})
                        if channel["encoding"] == "protobuf":
                            files = descriptor_pb2.FileDescriptorSet.FromString(
                                base64.b64decode(channel["schema"]))
                            pool = descriptor_pool.DescriptorPool()
                            for file in files.file:
                                pool.Add(file)
                            cls = message_factory.GetMessageClass(
                                pool.FindMessageTypeByName(channel["schemaName"]))
                            decoders[sub_id] = cls.FromString
                        else:
                            decoders[sub_id] = json.loads
                    await ws.send(json.dumps({"op": "subscribe", "subscriptions": subscribe}))
                continue
            assert data[0] == 1  # messageData: opcode, subscription id, log time, payload
            sub_id = int.from_bytes(data[1:5], "little")
            log_time = int.from_bytes(data[5:13], "little")
            decoded = decoders[sub_id](bytes(data[13:]))
            got["messages"].setdefault(subscriptions[sub_id], []).append((log_time, decoded))
            annotated = [m for _, m in got["messages"].get("/camera/annotations", []) if m.points]
            if len(annotated) >= want and len(got["messages"]) == 3:
                break
    return got


def test_live_serves_foxglove_to_a_real_client_and_records_a_wall_clock_bag(
        ros_extra, media, tmp_path):
    clip = _looped_clip(media, tmp_path / "looped.mp4", loops=4)
    port, timeline, bag = _free_port(), tmp_path / "live.jsonl", tmp_path / "live_bag"
    started_ns = time.time_ns()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emoblend", "live", "--camera", str(clip), "--no-window",
         "--foxglove", f"127.0.0.1:{port}", "--timeline", str(timeline), "--bag", str(bag)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        got = asyncio.run(_foxglove_client(f"ws://127.0.0.1:{port}", want=20, timeout=90))
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert f"Foxglove live view on ws://127.0.0.1:{port}" in stdout

    assert got["serverInfo"]["name"] == "emoblend"
    channels = got["channels"]
    assert {t: c["schemaName"] for t, c in channels.items()} == {
        "/camera/image_raw/compressed": "foxglove.CompressedImage",
        "/camera/annotations": "foxglove.ImageAnnotations",
        "/emoblend/readings": channels["/emoblend/readings"]["schemaName"],
    }
    assert channels["/emoblend/readings"]["encoding"] == "json"

    # one face per frame (--num-faces 1); its id may change if the machine stalls over a second
    rows = {r["frame"]: r for r in map(json.loads, timeline.read_text().splitlines())}
    annotations = [(t, m) for t, m in got["messages"]["/camera/annotations"] if m.points]
    assert len(annotations) >= 20
    for _, m in annotations:
        row = rows[int({kv.key: kv.value for kv in m.metadata}["frame"])]
        x, y, w, h = row["x"], row["y"], row["w"], row["h"]
        assert [(p.x, p.y) for p in m.points[0].points] == [
            (x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        assert m.texts[0].text.startswith(f"#{row['face_id']} {row['stable_label']} ")

    images = got["messages"]["/camera/image_raw/compressed"]
    assert images, "no image reached the subscribed client"
    stamps = {t for t, _ in annotations}
    assert any(t in stamps for t, _ in images)  # images and boxes share their frames' stamps
    picture = cv2.imdecode(np.frombuffer(images[-1][1].data, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (360, 640, 3) and images[-1][1].format == "jpeg"

    from emoblend.classify.classifier import load_classifier

    for _, reading in got["messages"]["/emoblend/readings"]:
        for face in reading["faces"]:
            row = rows[reading["frame"]]
            assert face["face_id"] == row["face_id"]
            assert face["box"] == [row["x"], row["y"], row["w"], row["h"]]
            assert list(face["probabilities"]) == list(load_classifier().info.classes)
            assert face["stable_label"] == row["stable_label"]

    # the bag of the same session: wall-clock stamps, spaced as the frames were
    recorded = _read_bag(bag)
    stamps = sorted(t for topic, messages in recorded.items() if topic.endswith("/expression")
                    for t, *_ in messages)
    times = [rows[frame]["time_ms"] for frame in sorted(rows)]
    assert len(stamps) == len(times) == len(recorded["/humans/faces/tracked"]) == 4 * 72
    assert started_ns < stamps[0] < stamps[-1] < time.time_ns()
    assert [s - stamps[0] for s in stamps] == [(t - times[0]) * 1_000_000 for t in times]


def test_live_foxglove_with_a_token_lets_in_only_clients_that_give_it(
        ros_extra, media, tmp_path):
    """The rule of `emoblend serve`: with --token, a client without it or with a wrong one is
    refused (HTTP 401 before the WebSocket opens); one with it gets the live channels."""
    import websockets

    clip = _looped_clip(media, tmp_path / "looped.mp4", loops=3)
    port, token = _free_port(), "s3cret-robot-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emoblend", "live", "--camera", str(clip), "--no-window",
         "--foxglove", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "EMOBLEND_TOKEN": token},
    )

    async def refused(url: str) -> int:
        deadline = time.monotonic() + 90
        while True:
            try:
                async with websockets.connect(url, subprotocols=["foxglove.sdk.v1"]):
                    return 101
            except websockets.InvalidStatus as error:
                return error.response.status_code
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    try:
        assert asyncio.run(refused(f"ws://127.0.0.1:{port}")) == 401
        assert asyncio.run(refused(f"ws://127.0.0.1:{port}/?token=wrong")) == 401
        got = asyncio.run(_foxglove_client(f"ws://127.0.0.1:{port}/?token={token}", want=5,
                                           timeout=90))
        _, stderr = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert got["serverInfo"]["name"] == "emoblend"
    assert sum(1 for _, m in got["messages"]["/camera/annotations"] if m.points) >= 5


def test_the_foxglove_layout_file_is_the_one_the_code_makes(ros_extra):
    from emoblend.classify.classifier import load_classifier
    from emoblend.ros.foxglove_live import ANNOTATIONS_TOPIC, IMAGE_TOPIC, layout, layout_json

    shipped = Path(__file__).resolve().parents[1] / "docs" / "foxglove-layout.json"
    assert shipped.read_text() == layout_json(load_classifier().info.classes)
    panels = layout(SEVEN)["configById"]
    assert panels["Image!emoblend"]["imageMode"]["imageTopic"] == IMAGE_TOPIC
    assert panels["Image!emoblend"]["imageMode"]["annotations"] == {
        ANNOTATIONS_TOPIC: {"visible": True}}
    assert [p["label"] for p in panels["Plot!emoblend"]["paths"]][:7] == list(SEVEN)


def test_live_foxglove_beyond_loopback_needs_a_token_and_a_busy_port_is_one_line(
        ros_extra, media):
    proc = run_cli("live", "--camera", media / "single_face.mp4", "--no-window",
                   "--foxglove", "0.0.0.0:8765")
    assert_user_error(proc, "--token")
    assert_user_error(run_cli("live", "--foxglove", "localhost:http"), "[HOST:]PORT")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = run_cli("live", "--camera", media / "single_face.mp4", "--no-window",
                       "--foxglove", str(busy.getsockname()[1]))
    assert_user_error(proc, "cannot serve Foxglove", "--foxglove PORT")


def test_without_the_extra_a_one_line_error_names_the_install(media, tmp_path):
    """rosbags and foxglove-sdk made unimportable in a real process, as where they are absent."""
    block = ("import sys; sys.modules['rosbags'] = sys.modules['foxglove'] = None; "
             "sys.argv[0] = 'emoblend'; from emoblend.cli import main; main()")
    for args in (["video", media / "single_face.mp4", "--bag", tmp_path / "bag"],
                 ["live", "--camera", media / "single_face.mp4", "--no-window",
                  "--foxglove", "8765"]):
        proc = subprocess.run([sys.executable, "-c", block, *map(str, args)],
                              capture_output=True, text=True, timeout=120)
        assert_user_error(proc, 'pip install "emoblend[ros]"')
    assert list(tmp_path.iterdir()) == []
