"""Augmentation geometry: flips mirror, rotations turn about the centre by the named angle."""

from __future__ import annotations

import numpy as np
import pytest

from emoblend.data.augment import (
    MAX_ROTATION,
    apply_augmentation,
    draw_augmentation,
    parse_augmentation,
    rotate,
)


def _marker_image(x: int, y: int) -> np.ndarray:
    """A dark 48×48 image with a bright 2×2 marker whose centre is (x + 0.5, y + 0.5)."""
    image = np.zeros((48, 48), dtype=np.uint8)
    image[y : y + 2, x : x + 2] = 255
    return image


def _peak(image: np.ndarray, near: tuple[float, float], radius: float = 5.0) -> np.ndarray:
    """Intensity-weighted centre (x, y) of the bright pixels within ``radius`` of ``near``."""
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    window = (xs - near[0]) ** 2 + (ys - near[1]) ** 2 <= radius**2
    weights = image.astype(float) * window
    assert weights.sum() > 0, "the marker is not near where it should be"
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def test_flip_mirrors_every_row(fer2013_sample):
    import pandas as pd

    pixels = pd.read_csv(fer2013_sample)["pixels"].iloc[0]
    image = np.array(pixels.split(), dtype=np.uint8).reshape(48, 48)
    flipped = apply_augmentation(image, "flip")
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    np.testing.assert_array_equal(apply_augmentation(flipped, "flip"), image)
    assert flipped.flags.c_contiguous


@pytest.mark.parametrize("angle", [30.0, -30.0, 90.0, -12.5, 36.0])
def test_rotation_moves_a_marker_about_the_centre(angle):
    # Marker 11 px right of the centre (23.5, 23.5). Counter-clockwise as seen on screen
    # (y grows downwards): x' = cx + dx·cos θ, y' = cy − dx·sin θ.
    image = _marker_image(34, 23)
    theta = np.radians(angle)
    expected = (23.5 + 11 * np.cos(theta), 23.5 - 11 * np.sin(theta))

    turned = rotate(image, angle)

    np.testing.assert_allclose(_peak(turned, expected), expected, atol=0.35)
    assert turned[23:25, 34:36].max() < 128  # nothing left where the marker was


def test_flip_then_rotation_in_one_name():
    image = _marker_image(34, 23)  # after the flip the marker sits 11 px left of the centre
    theta = np.radians(20.0)
    expected = (23.5 - 11 * np.cos(theta), 23.5 + 11 * np.sin(theta))
    out = apply_augmentation(image, "flip+rot+20.0")
    np.testing.assert_allclose(_peak(out, expected), expected, atol=0.35)


def test_names_round_trip_and_bad_names_are_refused():
    assert parse_augmentation("none") == (False, 0.0)
    assert parse_augmentation("flip") == (True, 0.0)
    assert parse_augmentation("rot+12.5") == (False, 12.5)
    assert parse_augmentation("flip+rot-30.1") == (True, -30.1)
    for bad in ["", "flip+", "rot5", "rot+", "spin+3.0", "flip+flip"]:
        with pytest.raises(ValueError):
            parse_augmentation(bad)


def test_draws_are_bounded_seeded_and_per_image():
    names = [draw_augmentation(7, image_id, 1) for image_id in range(3000)]
    angles = [parse_augmentation(n)[1] for n in names if "rot" in n]
    assert all(-MAX_ROTATION <= a <= MAX_ROTATION for a in angles)
    assert min(angles) < -30 and max(angles) > 30  # the whole range is used
    kinds = {n.split("rot")[0].rstrip("+") or "rot" for n in names}
    assert kinds == {"flip", "rot"} and any(n.startswith("flip+rot") for n in names)
    # Same (seed, image_id, copy) -> same draw, whatever else was drawn before.
    assert [draw_augmentation(7, i, 1) for i in reversed(range(3000))] == names[::-1]
    assert names != [draw_augmentation(8, i, 1) for i in range(3000)]
    # A second copy of an image is drawn independently of its first.
    assert sum(draw_augmentation(7, i, 1) != draw_augmentation(7, i, 2) for i in range(100)) > 90


def test_named_augmentation_is_reproducible(fer2013_sample):
    import pandas as pd

    pixels = pd.read_csv(fer2013_sample)["pixels"].iloc[3]
    image = np.array(pixels.split(), dtype=np.uint8).reshape(48, 48)
    name = draw_augmentation(0, 3, 1)
    first = apply_augmentation(image, name)
    np.testing.assert_array_equal(first, apply_augmentation(image.copy(), name))
    assert first.shape == image.shape and first.dtype == np.uint8
    assert not np.array_equal(first, image)
