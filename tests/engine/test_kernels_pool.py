"""max_pool2d kernels: Numba == NumPy reference (values and winning positions exactly), incl. ties, NaN, −∞."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.kernels.jit import pool as jit
from minisnn.kernels.reference import pool as ref

from .strategies import seeds


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * ph), 12))
    w = draw(st.integers(max(1, kw - 2 * pw), 12))
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 4)), h, w)   # up to 20 planes: the jit forward scans 16 at a time
    return shape, (kh, kw, sh, sw, ph, pw)


def values(rng, shape, dtype, kind):
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-2, 3, size=shape).astype(dtype)  # many ties inside a window
    if kind == "specials":
        x[x == 2] = np.nan
        x[x == -2] = -np.inf
    return x


@given(pool_cases(), st.sampled_from([np.float32, np.float64]), st.sampled_from(["normal", "ties", "specials"]),
       seeds)
def test_forward_and_backward_match_reference(case, dtype, kind, seed):
    shape, geometry = case
    rng = np.random.default_rng(seed)
    x = values(rng, shape, dtype, kind)
    y, index = jit.max_pool2d_forward(x, *geometry)
    y_ref, index_ref = ref.max_pool2d_forward(x, *geometry)
    assert y.dtype == dtype and index.dtype == index_ref.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref)  # NaN == NaN here
    np.testing.assert_array_equal(index, index_ref)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = jit.max_pool2d_backward(g, index, *shape[2:])
    assert dx.dtype == dtype and dx.shape == shape
    # overlapping windows add up to ⌈k/s⌉² gradients per input: only the order of those additions differs
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(dx, ref.max_pool2d_backward(g, index_ref, *shape[2:]), rtol=rtol, atol=rtol)


@given(pool_cases(), st.sampled_from([np.float32, np.float64]), st.sampled_from(["normal", "ties", "specials"]),
       seeds)
def test_values_without_positions_match_reference(case, dtype, kind, seed):
    """The no-graph forward's values equal the forward's, NaN and −∞ included, in both backends."""
    shape, geometry = case
    x = values(np.random.default_rng(seed), shape, dtype, kind)
    y_ref = ref.max_pool2d_forward(x, *geometry)[0]
    for mod in (jit, ref):
        y = mod.max_pool2d_values(x, *geometry)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, y_ref)  # NaN == NaN here


def test_positions_follow_pytorch_rule():
    """First maximum in row-major order wins a tie; a window holding NaN reports its last NaN;
    a window of −∞ reports its first in-bounds position."""
    x = np.array([[[[1.0, 3.0, 3.0],
                    [3.0, np.nan, 0.0],
                    [np.nan, 2.0, 1.0]]]])
    ties = np.array([[[[1.0, 3.0, 3.0],
                       [3.0, 0.0, 0.0],
                       [0.0, 2.0, 3.0]]]])
    for mod in (jit, ref):
        _, index = mod.max_pool2d_forward(x, 2, 2, 1, 1, 0, 0)
        np.testing.assert_array_equal(index[0, 0], [[4, 4], [6, 4]])
        _, index = mod.max_pool2d_forward(ties, 2, 2, 1, 1, 0, 0)
        np.testing.assert_array_equal(index[0, 0], [[1, 1], [3, 8]])
        _, index = mod.max_pool2d_forward(np.full((1, 1, 3, 3), -np.inf), 3, 3, 2, 2, 1, 1)
        np.testing.assert_array_equal(index[0, 0], [[0, 1], [3, 4]])


def test_model_configuration_large():
    """kernel 3, stride 2, padding 1 on 32×32 planes (the patch-embedding pooling), binary spikes."""
    rng = np.random.default_rng(0)
    x = (rng.random((2, 16, 32, 32)) < 0.2).astype(np.float32)
    y, index = jit.max_pool2d_forward(x, 3, 3, 2, 2, 1, 1)
    y_ref, index_ref = ref.max_pool2d_forward(x, 3, 3, 2, 2, 1, 1)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(index, index_ref)


torch = pytest.importorskip("torch")


@given(pool_cases(), seeds)
def test_positions_equal_torch_indices(case, seed):
    shape, (kh, kw, sh, sw, ph, pw) = case
    x = values(np.random.default_rng(seed), shape, np.float64, "specials")
    _, index = jit.max_pool2d_forward(x, kh, kw, sh, sw, ph, pw)
    _, expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), (kh, kw), (sh, sw), (ph, pw),
                                                 return_indices=True)
    np.testing.assert_array_equal(index, expected.numpy())
