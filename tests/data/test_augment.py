"""Crop, flip and normalisation over uint8 batches."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import data as D
from minisnn.data import augment as A


def batch(seed: int, b: int = 6, h: int = 8, w: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, 3, h, w), dtype=np.uint8)


def test_normalisation_constants():
    assert D.NORMALIZATIONS["dysvit"] == ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert D.NORMALIZATIONS["upstream"] == ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


@pytest.mark.parametrize("name", ["dysvit", "upstream"])
def test_normalize_matches_formula(name):
    x = batch(0)
    y = D.Normalize(name)(x)
    mean, std = (np.array(v).reshape(1, 3, 1, 1) for v in D.NORMALIZATIONS[name])
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, (x / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    px = np.array([[[[0.4914 * 255]], [[0.4822 * 255]], [[0.4465 * 255]]]])  # the mean colour maps to 0
    np.testing.assert_allclose(A.normalize(np.rint(px).astype(np.uint8), name), 0, atol=0.01)


def test_normalize_custom_stats_and_errors():
    x = batch(1)
    np.testing.assert_allclose(D.Normalize(((0, 0, 0), (1, 1, 1)))(x), x / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="normalization must be one of dysvit, upstream"):
        D.Normalize("imagenet")
    with pytest.raises(ValueError, match="std must be > 0"):
        D.Normalize(((0, 0, 0), (1, 0, 1)))
    with pytest.raises(ValueError, match=r"uint8 image batch \[B, 3, H, W\]"):
        D.Normalize()(x.astype(np.float32))


@given(st.integers(0, 2**31))
def test_flip_twice_is_identity(seed):
    x = batch(seed)
    np.testing.assert_array_equal(D.hflip(D.hflip(x)), x)
    assert D.hflip(x)[0, 1, 2, 0] == x[0, 1, 2, -1]
    once = D.random_flip(x, np.random.default_rng(seed))
    np.testing.assert_array_equal(D.random_flip(once, np.random.default_rng(seed)), x)
    for i in range(len(x)):  # each image is either untouched or mirrored
        assert np.array_equal(once[i], x[i]) or np.array_equal(once[i], x[i, ..., ::-1])


def test_flip_probability_is_half():
    x = np.arange(4, dtype=np.uint8).reshape(1, 1, 1, 4).repeat(4000, 0).repeat(3, 1)
    out = D.random_flip(x, np.random.default_rng(0))
    frac = np.mean(out[:, 0, 0, 0] == 3)
    assert 0.46 < frac < 0.54


def test_crop_with_zero_padding_is_identity():
    x = batch(2)
    np.testing.assert_array_equal(D.random_crop(x, np.random.default_rng(0), padding=0), x)
    t = D.RandomCropFlip(padding=0, flip=False, normalization="dysvit")
    np.testing.assert_array_equal(t(x, np.random.default_rng(0)), D.Normalize("dysvit")(x))


@given(st.integers(1, 4), st.sampled_from(["zero", "reflect"]), st.integers(0, 2**31))
def test_crop_is_a_window_of_the_padded_image(padding, mode, seed):
    x = batch(seed)
    padded = A.pad_batch(x, padding, mode)
    out = D.random_crop(x, np.random.default_rng(seed), padding, mode)
    assert out.shape == x.shape and out.dtype == np.uint8
    h, w = x.shape[2:]
    for i in range(len(x)):
        hits = [(t, l) for t in range(2 * padding + 1) for l in range(2 * padding + 1)
                if np.array_equal(out[i], padded[i, :, t:t + h, l:l + w])]
        assert hits, "crop is not a window of the padded image"


def test_crop_offsets_cover_the_range():
    x = np.zeros((2000, 3, 4, 4), np.uint8)
    x[:, :, 0, 0] = 255  # a marker in the top-left corner
    out = D.random_crop(x, np.random.default_rng(0), padding=1)
    where = [tuple(np.argwhere(o[0] == 255)[0]) if (o[0] == 255).any() else None for o in out]
    seen = {p for p in where if p is not None}
    assert seen == {(0, 0), (0, 1), (1, 0), (1, 1)}  # marker shifted by 0 or +1 (offsets 0..2)
    assert where.count(None) > 0  # offset 2 in a direction moves it out of view


def test_zero_padding_is_black_and_reflect_mirrors():
    x = np.full((1, 3, 4, 4), 200, np.uint8)
    x[0, :, :, 1] = 100
    z = A.pad_batch(x, 2, "zero")
    assert z.shape == (1, 3, 8, 8) and z[0, :, 0].max() == 0 and z[0, :, :, :2].max() == 0
    r = A.pad_batch(x, 1, "reflect")
    np.testing.assert_array_equal(r[0, :, 1:-1, 0], x[0, :, :, 1])  # mirror without repeating the edge


def test_train_transform_shapes_determinism_and_aliases():
    x = batch(3, b=5, h=32, w=32)
    t = D.TrainTransform(padding=4, flip=True, normalization="upstream")
    assert isinstance(t, D.RandomCropFlip) and D.EvalTransform is D.Normalize
    a, b = t(x, np.random.default_rng(7)), t(x, np.random.default_rng(7))
    assert a.dtype == np.float32 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, t(x, np.random.default_rng(8)))
    assert t(x).shape == x.shape  # works without an rng (not reproducible)
    with pytest.raises(ValueError, match="padding must be a non-negative integer"):
        D.RandomCropFlip(padding=-1)
    with pytest.raises(ValueError, match="pad_mode must be one of zero, reflect"):
        D.RandomCropFlip(pad_mode="edge")
    with pytest.raises(ValueError, match="reflect padding 32 must be smaller"):
        D.RandomCropFlip(padding=32, pad_mode="reflect")(x)
