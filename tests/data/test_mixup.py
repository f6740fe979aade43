"""Mixup, CutMix, label smoothing and the mixup cooldown helper."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import data as D


def images(b=8, seed=0):
    return np.random.default_rng(seed).standard_normal((b, 3, 6, 6)).astype(np.float32)


@given(st.integers(0, 9), st.floats(0, 0.9))
def test_one_hot_smoothing(label, s):
    t = D.one_hot(np.array([label]), 10, s)[0]
    assert t.dtype == np.float32
    np.testing.assert_allclose(t.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(t[label], 1 - s + s / 10, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.delete(t, label), s / 10, rtol=1e-6, atol=1e-7)


@given(st.integers(0, 2**31), st.sampled_from([0.2, 1.0]), st.sampled_from([0.0, 0.1]),
       st.sampled_from(["permute", "flip"]))
def test_mixup_is_a_convex_combination(seed, alpha, smoothing, pairing):
    x, y = images(), np.random.default_rng(seed).integers(0, 10, 8)
    out, t = D.Mixup(mixup_alpha=alpha, num_classes=10, label_smoothing=smoothing, pairing=pairing)(
        x, y, np.random.default_rng(seed))
    assert out.dtype == np.float32 and out.shape == x.shape and t.dtype == np.float32 and t.shape == (8, 10)
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-5)
    # recover lambda and the partners from the same draws
    rng = np.random.default_rng(seed)
    lam = rng.beta(alpha, alpha)
    partner = rng.permutation(8) if pairing == "permute" else np.arange(8)[::-1]
    np.testing.assert_allclose(out, lam * x + (1 - lam) * x[partner], rtol=1e-5, atol=1e-5)
    ref = D.one_hot(y, 10, smoothing)
    np.testing.assert_allclose(t, lam * ref + (1 - lam) * ref[partner], rtol=1e-5, atol=1e-6)


@given(st.integers(0, 2**31))
def test_cutmix_pastes_a_box_and_weights_by_area(seed):
    x, y = images(seed=seed), np.arange(8)
    out, t = D.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=10)(x, y, np.random.default_rng(seed))
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-5)
    rng = np.random.default_rng(seed)  # replay the draws: lambda, box centre, partners
    lam = rng.beta(1.0, 1.0)
    top, bottom, left, right = D.cutmix_box(6, 6, lam, rng)
    partner = rng.permutation(8)
    expected = x.copy()
    expected[:, :, top:bottom, left:right] = x[partner, :, top:bottom, left:right]
    np.testing.assert_array_equal(out, expected)
    area = (bottom - top) * (right - left) / 36
    np.testing.assert_allclose(t, (1 - area) * np.eye(10)[y] + area * np.eye(10)[y[partner]], atol=1e-6)


def test_cutmix_box_area():
    rng = np.random.default_rng(0)
    for lam in (0.0, 0.3, 0.75, 1.0):
        top, bottom, left, right = D.cutmix_box(32, 32, lam, rng)
        assert 0 <= top <= bottom <= 32 and 0 <= left <= right <= 32
        assert (bottom - top) * (right - left) <= (1 - lam) * 1024 + 1e-9


def test_both_on_switches_between_them():
    m = D.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, num_classes=10, switch_prob=0.5)
    x, y = images(), np.arange(8)
    kinds = set()
    for s in range(40):
        out, _ = m(x, y, np.random.default_rng(s))
        # cutmix leaves some pixels of every image exactly unchanged; mixup (lam < 1) changes them all
        kinds.add(bool(np.all(out == x, axis=(0, 1)).any()))
    assert kinds == {True, False}


def test_without_mixing_keeps_smoothing_only():
    m = D.Mixup(mixup_alpha=0.2, num_classes=10, label_smoothing=0.1).without_mixing()
    x, y = images(), np.arange(8)
    out, t = m(x, y, np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    np.testing.assert_allclose(t, D.one_hot(y, 10, 0.1))


def test_mixup_active():
    on = [D.mixup_active(e, 10, 3) for e in range(10)]
    assert on == [True] * 7 + [False] * 3
    assert all(D.mixup_active(e, 5, 0) for e in range(5))
    with pytest.raises(ValueError, match="off_last must be in"):
        D.mixup_active(0, 5, 6)
    with pytest.raises(ValueError, match="epoch must be in"):
        D.mixup_active(5, 5, 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="must be >= 0"):
        D.Mixup(mixup_alpha=-1)
    with pytest.raises(ValueError, match="pairing must be one of"):
        D.Mixup(pairing="shift")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        D.one_hot(np.array([10]), 10)
    with pytest.raises(ValueError, match="expected images"):
        D.Mixup()(images(), np.arange(3), np.random.default_rng(0))
