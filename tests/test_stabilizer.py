"""The stabilizer on real per-frame probabilities, recorded from single_face.mp4 in this test.

The clip is a man who looks neutral for about half a second and then smiles. Its frames give
two pools of real classifier outputs, with their real frame-to-frame jitter: "before the smile"
and "during the smile". Streams drawn from one pool are a face that does not change; a stream
that switches pools is a face that does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from emoblend import EmotionEstimator, EstimatorOptions, StabilizerOptions
from emoblend.errors import EmoblendError
from emoblend.io.video import VideoSource
from emoblend.labels import CLASSES
from emoblend.realtime.stabilizer import Stabilizer, count_switches

HAPPY = CLASSES.index("happy")


@pytest.fixture(scope="module")
def pools(media):
    """Per-frame probabilities before the smile and during it (real classifier outputs)."""
    probs, times = [], []
    with EmotionEstimator.create_from_options(EstimatorOptions()) as estimator:
        for frame in VideoSource(media / "single_face.mp4"):
            (reading,) = estimator.process(frame.image, frame.timestamp_ms)
            probs.append(reading.probability_array)
            times.append(frame.timestamp_ms)
    probs, times = np.array(probs), np.array(times)
    raw_happy = probs.argmax(axis=1) == HAPPY
    onset = int(np.argmax(raw_happy))  # first frame read happy
    end = len(probs) - int(np.argmax(raw_happy[::-1]))  # after the last (the smile fades)
    assert 0 < onset < end - 20, "the clip should start neutral and end smiling"
    before = probs[: max(1, onset - 3)]
    during = probs[onset + 3 : end]
    return before, during


def stream(pool: np.ndarray, seconds: float, fps: float, rng: np.random.Generator) -> np.ndarray:
    """A stream of frames drawn at random from a pool of real per-frame outputs."""
    return pool[rng.integers(0, len(pool), int(round(seconds * fps)))]


def run(stabilizer: Stabilizer, probs: np.ndarray, fps: float, start_ms: float = 0.0):
    times = start_ms + np.arange(len(probs)) * 1000.0 / fps
    labels = [stabilizer.update(p, t)[0] for p, t in zip(probs, times, strict=True)]
    return np.array(labels), times


@pytest.mark.parametrize("which", ["before", "during"])
def test_a_face_that_does_not_change_keeps_its_label(pools, which):
    before, during = pools
    pool = before if which == "before" else during
    rng = np.random.default_rng(1)
    probs = stream(pool, seconds=30, fps=30, rng=rng)
    stabilizer = Stabilizer()
    labels, times = run(stabilizer, probs, fps=30)
    settled = labels[times >= StabilizerOptions().warmup_ms]
    assert count_switches(settled) == 0
    assert settled[0] == int(np.argmax(pool.mean(axis=0)))
    if which == "during":
        assert settled[0] == HAPPY


@pytest.mark.parametrize("fps", [10, 30, 60])
def test_a_sustained_change_switches_within_the_documented_latency(pools, fps):
    """Documented: after a step to a class that leads the current one by L > margin per frame,
    the label follows within tau_ms * ln((1 + L) / (L - margin)) plus one frame (1.32 tau_ms
    for L = 0.5); here L is the real smile's mean lead under the default model."""
    before, during = pools
    old = int(np.argmax(before.mean(axis=0)))
    lead = float((during[:, HAPPY] - during[:, old]).mean())
    opts = StabilizerOptions()
    assert old != HAPPY and lead > opts.margin, "the smile should be read happy by a lead"
    rng = np.random.default_rng(2)
    first, second = stream(before, 3, fps, rng), stream(during, 3, fps, rng)
    labels, times = run(Stabilizer(opts), np.concatenate([first, second]), fps=fps)
    step_ms = len(first) * 1000.0 / fps
    settled = times >= opts.warmup_ms
    assert count_switches(labels[settled]) == 1
    assert labels[-1] == HAPPY
    switch_ms = times[np.argmax(labels == HAPPY)]
    latency = switch_ms - step_ms
    bound = opts.tau_ms * math.log((1 + lead) / (lead - opts.margin)) + 1000.0 / fps
    assert 0 <= latency <= bound, (latency, bound, lead)


def test_smoothing_is_frame_rate_independent(pools):
    before, during = pools
    latencies = {}
    for fps in (12, 48):
        probs = np.concatenate([np.repeat(before.mean(0)[None], 2 * fps, 0),
                                np.repeat(during.mean(0)[None], 2 * fps, 0)])
        labels, times = run(Stabilizer(), probs, fps=fps)
        latencies[fps] = times[np.argmax(labels == HAPPY)] - 2000.0
    # the same step is followed at the same stream time, to within one frame at 12 fps
    assert abs(latencies[12] - latencies[48]) <= 1000.0 / 12


def test_warm_up_reads_unknown_then_the_face(pools):
    _, during = pools
    opts = StabilizerOptions(warmup_ms=200)
    labels, times = run(Stabilizer(opts), during[:20], fps=30)
    assert set(labels[times < 200]) == {CLASSES.index("unknown")}
    assert labels[-1] == HAPPY


def test_dwell_time_holds_a_new_label(pools):
    """A short burst of the other class right after a switch does not flip the label back."""
    before, during = pools
    opts = StabilizerOptions(min_dwell_ms=1000, tau_ms=50, warmup_ms=0)
    fps = 30
    probs = np.concatenate([np.repeat(during[:1], 30, 0), np.repeat(before[:1], 30, 0),
                            np.repeat(during[:1], 10, 0)])
    labels, times = run(Stabilizer(opts), probs, fps=fps)
    switched_at = times[np.argmax(labels != labels[0])]
    # after the switch the label is held for at least min_dwell_ms
    held = labels[(times >= switched_at) & (times < switched_at + opts.min_dwell_ms)]
    assert len(set(held)) == 1


def test_a_long_gap_restarts_the_filter(pools):
    before, during = pools
    stabilizer = Stabilizer(StabilizerOptions(warmup_ms=0))
    run(stabilizer, stream(before, 2, 30, np.random.default_rng(4)), fps=30)
    # the face comes back after 5 s smiling: old evidence is dropped, not averaged in
    label, _ = stabilizer.update(during[0], 7000.0)
    assert label == HAPPY


def test_bad_settings_and_timestamps_are_refused():
    with pytest.raises(EmoblendError, match="tau_ms"):
        StabilizerOptions(tau_ms=-1)
    with pytest.raises(EmoblendError, match="margin"):
        StabilizerOptions(margin=1.5)
    stabilizer = Stabilizer()
    stabilizer.update(np.array([0.2, 0.5, 0.3]), 100.0)
    with pytest.raises(EmoblendError, match="not after"):
        stabilizer.update(np.array([0.2, 0.5, 0.3]), 100.0)
