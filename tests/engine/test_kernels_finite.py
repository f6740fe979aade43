"""Finiteness kernel: Numba == NumPy reference on any placement of NaN / ±inf; the guard it serves."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor
from minisnn import functional as F
from minisnn.kernels.jit import finite as jit
from minisnn.kernels.reference import finite as ref

from .strategies import seeds



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, size=st.sampled_from([0, 1, 7, 16, 17, 1000, 40_000]),
       bad=st.sampled_from([None, np.nan, np.inf, -np.inf]), where=st.floats(0.0, 1.0), strided=st.booleans())
def test_all_finite_jit_matches_reference(dtype, seed, size, bad, where, strided):
    """One non-finite value anywhere (first, last, in the vectorised body or its tail) or none;
    contiguous or strided input."""
    x = np.random.default_rng(seed).standard_normal(2 * size if strided else size).astype(dtype)
    x = x[::2] if strided else x
    if bad is not None and size:
        x[min(size - 1, int(where * size))] = bad
    want = bad is None or size == 0
    assert ref.all_finite(x) is want
    assert jit.all_finite(x) is want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_on_extremes_and_shapes(dtype):
    info = np.finfo(dtype)
    for x in (np.array([info.max, -info.max, info.tiny, info.smallest_subnormal, -0.0], dtype),
              np.zeros((3, 0, 2), dtype), np.array(1.5, dtype), np.ones((4, 5), dtype).T):
        assert ref.all_finite(x) and jit.all_finite(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_to_num_of_finite_input_is_a_view_with_identity_gradient(dtype):
    x = Tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(dtype), requires_grad=True)
    y = F.nan_to_num(x, nan=0.0, posinf=1e4, neginf=-1e4)
    assert y.dtype == dtype and np.shares_memory(y.data, x.data)
    np.testing.assert_array_equal(y.data, x.data)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, g)


def test_nan_to_num_of_other_dtypes_is_unchanged():
    assert np.array_equal(F.nan_to_num(np.arange(4)).data, np.arange(4))
    half = np.array([1.0, np.inf, np.nan], np.float16)
    np.testing.assert_array_equal(F.nan_to_num(half, posinf=2.0).data, np.array([1.0, 2.0, 0.0], np.float16))
