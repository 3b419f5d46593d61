"""Reading FER2013: validation with one-line errors, labels, splits and the Training caps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, run_cli

from emoblend.data.fer2013 import TRAIN_CAPS, load_fer2013, select_rows
from emoblend.errors import DatasetError
from emoblend.labels import FER_EMOTIONS


@pytest.fixture(scope="module")
def full(fer2013_csv):
    return load_fer2013(fer2013_csv)


def test_loads_the_real_csv_with_labels_and_splits(fer2013_sample):
    raw = pd.read_csv(fer2013_sample)
    data = load_fer2013(fer2013_sample)
    assert len(data) == len(raw) == 180
    np.testing.assert_array_equal(data.image_id, np.arange(180))
    np.testing.assert_array_equal(data.emotion, raw["emotion"])
    assert list(data.split) == list(
        raw["Usage"].map({"Training": "train", "PublicTest": "val", "PrivateTest": "test"})
    )
    # Pixels are the CSV's row-major 48×48 grey values.
    np.testing.assert_array_equal(
        data.pixels[17].ravel(), np.array(raw["pixels"][17].split(), dtype=int)
    )
    frame = data.frame()
    label_of = {"happy": "happy", "sad": "sad"}
    expected = [label_of.get(FER_EMOTIONS[code], "unknown") for code in raw["emotion"]]
    assert list(frame["label"]) == expected


def test_caps_on_the_full_training_split(full):
    rows = select_rows(full, seed=0)
    kept = full.frame().iloc[rows]
    train = kept[kept["split"] == "train"]
    counts = train.groupby("emotion").size()
    for code, name in enumerate(FER_EMOTIONS):
        available = int(np.sum((full.split == "train") & (full.emotion == code)))
        cap = TRAIN_CAPS[name]
        assert counts[code] == (available if cap is None else min(cap, available)), name
    assert counts[FER_EMOTIONS.index("disgust")] == 436  # all of them
    # Validation and test keep every row.
    for split in ("val", "test"):
        assert (kept["split"] == split).sum() == (full.split == split).sum()
    assert np.all(np.diff(rows) > 0)


def test_caps_are_seeded(full):
    same = select_rows(full, seed=3)
    np.testing.assert_array_equal(same, select_rows(full, seed=3))
    other = select_rows(full, seed=4)
    assert len(other) == len(same) and not np.array_equal(other, same)
    # A class under its cap is kept whole whatever the seed.
    disgust = np.flatnonzero((full.split == "train") & (full.emotion == 1))
    assert set(disgust) <= set(same) and set(disgust) <= set(other)


def test_limit_takes_the_first_rows_of_each_split(full):
    rows = select_rows(full, limit=50, caps={name: None for name in FER_EMOTIONS})
    frame = full.frame().iloc[rows]
    for split in ("train", "val", "test"):
        first = np.flatnonzero(full.split == split)[:50]
        np.testing.assert_array_equal(frame.loc[frame["split"] == split, "image_id"], first)


def test_small_caps_through_a_parameter(fer2013_sample):
    data = load_fer2013(fer2013_sample)
    caps = {name: 2 for name in FER_EMOTIONS} | {"disgust": None}
    frame = data.frame().iloc[select_rows(data, caps=caps, seed=1)]
    train = frame[frame["split"] == "train"].groupby("emotion").size()
    available = pd.Series(data.emotion[data.split == "train"]).value_counts()
    for code, n in available.items():
        assert train[code] == (n if FER_EMOTIONS[code] == "disgust" else min(2, n))


def _write_variant(src, dest, edit) -> None:
    edit(pd.read_csv(src, dtype=str)).to_csv(dest, index=False)


def _set(column: str, row: int, value):
    """An edit that replaces one cell; ``value`` maps the old cell text to the new."""

    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[row, column] = value(frame.loc[row, column])
        return frame

    return edit


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda r: r.drop(columns=["Usage"]), ["lacks column(s) Usage"]),
        (lambda r: r.rename(columns={"pixels": "pix"}), ["lacks column(s) pixels"]),
        (_set("pixels", 7, lambda _: "1 2 3"), ["row 7 (line 9)", "3 values", "2,304"]),
        (_set("pixels", 9, lambda p: p + " 17"), ["row 9", "2,305 values"]),
        (_set("pixels", 4, lambda p: "256 " + p.split(" ", 1)[1]), ["row 4", "value 256"]),
        (_set("pixels", 5, lambda p: "x " + p.split(" ", 1)[1]), ["row 5", "non-number 'x'"]),
        (_set("Usage", 11, lambda _: "Testing"), ["row 11", "Usage 'Testing'", "PrivateTest"]),
        (_set("emotion", 2, lambda _: "7"), ["row 2", "emotion '7'", "0-6"]),
    ],
    ids=[
        "no-usage", "no-pixels", "short-pixels", "long-pixels", "pixel-256", "pixel-text",
        "bad-usage", "bad-emotion",
    ],
)  # fmt: skip
def test_bad_csv_rows_are_named(fer2013_sample, tmp_path, edit, fragments):
    bad = tmp_path / "bad.csv"
    _write_variant(fer2013_sample, bad, edit)
    with pytest.raises(DatasetError) as info:
        load_fer2013(bad)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("case", ["wrong-columns", "short-pixels"])
def test_bad_csv_from_the_cli_writes_nothing(fer2013_sample, face_model, tmp_path, case):
    bad = tmp_path / "bad.csv"
    if case == "wrong-columns":
        _write_variant(fer2013_sample, bad, lambda r: r.drop(columns=["emotion"]))
        fragments = ["lacks column(s) emotion", "emotion,pixels,Usage"]
    else:
        _write_variant(fer2013_sample, bad, _set("pixels", 100, lambda _: "0 " * 2303))
        fragments = ["row 100 (line 102)", "2,303 values"]
    out = tmp_path / "out"
    proc = run_cli("dataset", "build", "--fer2013", bad, "--out", out, "--face-model", face_model)
    assert_user_error(proc, *fragments)
    assert not out.exists()


def test_missing_or_unreadable_csv(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_fer2013(tmp_path / "nope.csv")
    garbage = tmp_path / "garbage.csv.gz"
    garbage.write_bytes(b"\x00\x01 not gzip")
    with pytest.raises(DatasetError, match="cannot read"):
        load_fer2013(garbage)
