"""EmotionEstimator and the video reader on the real clips in ../shared/media.

Assertions are about behaviour that holds for any decent classifier (a smile is read happy,
a face keeps its id, no face gives no reading), never about particular probabilities.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emoblend import EmotionEstimator, EstimatorOptions, load_classifier
from emoblend.errors import EmoblendError, VideoError
from emoblend.io.images import read_image
from emoblend.io.video import VideoSource
from emoblend.labels import CLASSES
from emoblend.realtime.pipeline import run_stream

# frames that OpenCV decodes from each clip (no_face.mp4's header declares 98 but holds 95)
CLIPS = {
    "WolfgangLanger_Pexels.mp4": (472, 23.976),
    "single_face.mp4": (72, 30.0),
    "face_noface.mov": (169, 26.398),
    "noface_face.mov": (169, 26.495),
    "no_face.mp4": (95, 23.672),
}


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()  # shared by every estimator here: loading once keeps tests fast


def video_run(path, classifier, **options):
    options = EstimatorOptions(classifier=classifier, **options)
    with EmotionEstimator.create_from_options(options) as estimator:
        return run_stream(VideoSource(path), estimator)


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_frame_counts_and_timestamps(media, name):
    frames, fps = CLIPS[name]
    source = VideoSource(media / name)
    assert source.fps == pytest.approx(fps, abs=1e-3)
    stamps = [(f.index, f.timestamp_ms, f.image.shape) for f in source]
    assert len(stamps) == frames == source.frames_read
    indices, times, shapes = zip(*stamps, strict=True)
    assert list(indices) == list(range(frames))
    # timestamps from index and rate: strictly increasing, one frame interval apart
    assert times[0] == 0
    assert np.allclose(np.diff(times), 1000.0 / fps, atol=1.0)
    assert times[-1] == pytest.approx((frames - 1) * 1000.0 / fps, abs=1.0)
    assert len(set(shapes)) == 1 and shapes[0][2] == 3


def test_no_face_clip_gives_no_readings(media, classifier):
    summary = video_run(media / "no_face.mp4", classifier)
    assert summary.frames == 95
    assert summary.frames_with_face == 0 and summary.rows == []


@pytest.fixture(scope="module")
def single_face(media, classifier):
    return video_run(media / "single_face.mp4", classifier)


def test_single_face_keeps_one_id_and_its_smile_is_read_happy(single_face):
    summary = single_face
    assert summary.frames == summary.frames_with_face == 72
    assert summary.face_ids == [0]
    stable = summary.labels(0, "stable_label")
    raw = summary.labels(0, "label")
    # neutral at first, smiling in the last third: the steady reading is happy all through
    # that third and did not start there (in the last two frames the smile is fading, and
    # the per-frame label may already leave happy)
    third = len(stable) // 3
    assert stable[-third:] == ["happy"] * third
    assert raw[-third:].count("happy") >= 0.8 * third
    assert "happy" not in raw[:10]
    assert all(0.0 <= r["p_happy"] <= 1.0 for r in summary.rows)
    sums = [r["p_happy"] + r["p_unknown"] + r["p_sad"] for r in summary.rows]
    assert np.allclose(sums, 1.0, atol=1e-4)


def test_wolfgang_langer_keeps_one_id_and_a_steadier_label(media, classifier):
    summary = video_run(media / "WolfgangLanger_Pexels.mp4", classifier)
    assert summary.frames == 472
    # one woman, head moving: the tracker never loses her
    assert summary.face_ids == [0]
    assert summary.frames_with_face >= 0.95 * summary.frames
    # "downcast at first, smiling later": the last seconds are read happy
    assert summary.labels(0)[-24:] == ["happy"] * 24
    # the stabilizer switches less often than the per-frame label
    assert summary.switches("stable_label") < summary.switches("label")


@pytest.mark.parametrize(
    ("name", "face_first"), [("face_noface.mov", True), ("noface_face.mov", False)]
)
def test_faces_come_and_go(media, classifier, name, face_first):
    summary = video_run(media / name, classifier)
    assert summary.frames == 169
    with_face = np.zeros(summary.frames, bool)
    for row in summary.rows:
        with_face[row["frame"]] = True
    half = summary.frames // 2
    first, second = with_face[:half].mean(), with_face[half:].mean()
    present, absent = (first, second) if face_first else (second, first)
    assert present >= 0.8 and absent <= 0.1, (first, second)
    # the real face keeps one id over its whole appearance
    main_id = max(summary.face_ids, key=lambda i: len(summary.labels(i, "label")))
    main_frames = [r["frame"] for r in summary.rows if r["face_id"] == main_id]
    assert len(main_frames) >= 60
    assert main_frames == list(range(main_frames[0], main_frames[-1] + 1))


def test_image_mode_reads_each_face_and_colour_order_is_honoured(media, classifier):
    rgb = read_image(media / "multi_face.jpg")
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    opts = dict(classifier=classifier, running_mode="image", num_faces=6)
    with EmotionEstimator.create_from_options(EstimatorOptions(color="rgb", **opts)) as est:
        from_rgb = est.process(rgb)
    with EmotionEstimator.create_from_options(EstimatorOptions(color="bgr", **opts)) as est:
        from_bgr = est.process(bgr)
    assert len(from_rgb) >= 2
    assert [r.face_id for r in from_rgb] == list(range(len(from_rgb)))
    # IMAGE mode is deterministic: the same pixels in either channel order give the same reading
    for a, b in zip(from_rgb, from_bgr, strict=True):
        assert a.box == b.box
        assert np.allclose(a.probability_array, b.probability_array, atol=1e-6)
        assert a.stable_label == a.raw_label and a.timestamp_ms is None
        assert a.raw_label == CLASSES[int(np.argmax(a.probability_array))]
    # boxes are largest first
    areas = [r.box[2] * r.box[3] for r in from_rgb]
    assert areas == sorted(areas, reverse=True)


def test_happy_photo_is_read_happy(media, classifier):
    """A posed open-mouth smile (0-f15-hao-ph.jpg: "happy, open mouth")."""
    options = EstimatorOptions(classifier=classifier, running_mode="image", color="rgb")
    with EmotionEstimator.create_from_options(options) as estimator:
        (reading,) = estimator.process(read_image(media / "0-f15-hao-ph.jpg"))
    assert reading.raw_label == "happy"


def test_video_mode_needs_increasing_timestamps_and_reset_restarts(media, classifier):
    image = cv2.imread(str(media / "single_face.jpg"))
    with EmotionEstimator.create_from_options(EstimatorOptions(classifier=classifier)) as est:
        with pytest.raises(EmoblendError, match="timestamp_ms"):
            est.process(image)
        first = est.process(image, 0)
        est.process(image, 40)
        with pytest.raises(EmoblendError, match="increasing"):
            est.process(image, 40)
        est.reset()
        again = est.process(image, 0)  # a new stream may start at 0 again
    assert len(first) == len(again) == 1
    assert first[0].face_id == again[0].face_id == 0
    assert first[0].stable_label == "unknown"  # warm-up: one frame is not enough evidence


def test_bad_options_are_refused(classifier):
    with pytest.raises(EmoblendError, match="running_mode"):
        EmotionEstimator(EstimatorOptions(classifier=classifier, running_mode="live"))
    with pytest.raises(EmoblendError, match="color"):
        EmotionEstimator(EstimatorOptions(classifier=classifier, color="hsv"))


def test_bad_videos_raise_video_error(tmp_path, media):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(VideoError, match="cannot open"):
        VideoSource(text)
    with pytest.raises(VideoError, match="not found"):
        VideoSource(tmp_path / "missing.mp4")
    data = (media / "WolfgangLanger_Pexels.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match="truncated"):
        for _ in VideoSource(truncated):
            pass


def test_several_faces_keep_their_own_ids(media, classifier):
    """multi_face.jpg filmed by an unsteady camera: each id stays on one face.

    MediaPipe finds the small faces of this photo only in some frames, so faces come and go;
    an id must never jump from one face to another, and a face seen again soon keeps its id.
    """
    from emoblend.realtime.demo import render_still_clip

    photo = cv2.imread(str(media / "multi_face.jpg"))
    options = EstimatorOptions(classifier=classifier, num_faces=8)
    tracks: dict[int, list[tuple[int, int]]] = {}
    counts = []
    with EmotionEstimator.create_from_options(options) as estimator:
        for frame in render_still_clip(photo, seconds=2, fps=15, max_shift_px=15, seed=3):
            readings = estimator.process(frame.image, frame.timestamp_ms)
            counts.append(len(readings))
            for r in readings:
                tracks.setdefault(r.face_id, []).append((r.box[0] + r.box[2] / 2,
                                                         r.box[1] + r.box[3] / 2))
    assert max(counts) >= 3
    # no more ids than faces (a face re-found within the timeout keeps its id)
    assert len(tracks) == max(counts), {i: len(c) for i, c in tracks.items()}
    # each id stays on one face: it moves no more than the camera, and ids are far apart
    means = []
    for face_id, centres in tracks.items():
        spread = np.ptp(np.array(centres), axis=0).max()
        assert spread <= 40, (face_id, spread)
        means.append(np.mean(centres, axis=0))
    gaps = [np.hypot(*(a - b)) for i, a in enumerate(means) for b in means[i + 1:]]
    assert min(gaps) >= 60
