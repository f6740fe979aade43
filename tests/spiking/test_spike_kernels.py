"""The kernels of spike(): the fused forward (spikes and NaN count) and the per-row surrogate kernels,
Numba against the NumPy reference and against the general (broadcast) surrogate kernels."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.kernels.jit import spike as jit
from minisnn.kernels.jit import surrogate as jit_sg
from minisnn.kernels.reference import spike as ref
from minisnn.kernels.reference import surrogate as ref_sg
from minisnn.kernels.reference.surrogate import SIGMOID

from ..conftest import on_one_and_all_threads

KINDS = sorted(ref_sg.KIND_NAMES)
seeds = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, shape=st.sampled_from([(), (0,), (5,), (3, 7), (2, 3, 17), (50, 40)]),
       threshold=st.sampled_from([0.0, 0.5, 1.0, -0.25]), n_nan=st.integers(0, 3), strided=st.booleans())
def test_spike_forward_jit_matches_reference(dtype, seed, shape, threshold, n_nan, strided):
    """Bit-identical spikes (values on the threshold included: H(0) = 1) and the same NaN count."""
    rng = np.random.default_rng(seed)
    u = rng.normal(threshold, 1.0, shape).astype(dtype)
    u.reshape(-1)[rng.integers(0, u.size, 4) if u.size else []] = dtype(threshold)  # exactly on θ
    if u.size and n_nan:
        u.reshape(-1)[rng.choice(u.size, min(n_nan, u.size), replace=False)] = np.nan
    if strided and u.ndim:
        u = np.repeat(u, 2, axis=-1)[..., ::2]
    (rs, rn), (js, jn) = (m.spike_forward(u, threshold) for m in (ref, jit))
    assert js.dtype == rs.dtype == dtype and js.shape == rs.shape == u.shape
    np.testing.assert_array_equal(js, rs)
    assert jn == rn == int(np.isnan(u).sum())
    assert set(np.unique(js)) <= {0.0, 1.0}
    np.testing.assert_array_equal(js, (u >= dtype(threshold)).astype(dtype))


def _row_case(seed, dtype, rows, channels):
    rng = np.random.default_rng(seed)
    u = rng.normal(1.0, 2.0, (rows, channels)).astype(dtype)
    alpha = rng.uniform(0.5, 8, rows).astype(dtype)
    g = rng.normal(size=u.shape).astype(dtype)
    return u, alpha, g


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, rows=st.integers(0, 9), channels=st.integers(0, 40), threshold=st.floats(-1, 2),
       need_alpha=st.booleans())
def test_row_kernels_jit_matches_reference(kind, dtype, seed, rows, channels, threshold, need_alpha):
    """One slope per row: the Numba kernels against the NumPy ones.  The slope sums differ only by
    the order of the float64 additions (8 lanes in the Numba kernel, pairwise in NumPy), so they agree
    to a few ulp of Σ|terms| in float64."""
    u, alpha, g = _row_case(seed, dtype, rows, channels)
    rtol, atol = (2e-6, 1e-6) if dtype == np.float32 else (1e-13, 1e-15)
    r, j = (m.surrogate_primitive_rows(u, threshold, alpha, kind) for m in (ref, jit))
    assert j.dtype == r.dtype == dtype and j.shape == r.shape == u.shape
    np.testing.assert_allclose(j, r, rtol=rtol, atol=atol)
    (rg, ra), (jg, ja) = (m.spike_backward_rows(g, u, threshold, alpha, kind, need_alpha) for m in (ref, jit))
    assert jg.dtype == rg.dtype == ja.dtype == ra.dtype == dtype
    np.testing.assert_allclose(jg, rg, rtol=rtol, atol=atol)
    assert ja.shape == ra.shape == ((rows,) if need_alpha else (0,))
    if need_alpha:
        terms = np.abs(g * ref_sg.surrogate_d_alpha(u - dtype(threshold), alpha[:, None], kind)).sum(axis=1)
        assert np.all(np.abs(ja - ra) <= rtol * np.abs(ra) + atol * (1.0 + terms)), (ja, ra)


@pytest.mark.parametrize("module", [(ref, ref_sg), (jit, jit_sg)], ids=["reference", "jit"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernels_equal_the_broadcast_kernels(module, kind, dtype):
    """The per-row kernels give the general kernels' numbers for a slope broadcast along each row:
    the same bits for p and dL/du; for dL/dα the row sums of the element-wise terms in float64."""
    rows_module, general = module
    u, alpha, g = _row_case(7, dtype, 6, 37)
    x = u - dtype(1.0)
    full = np.ascontiguousarray(np.broadcast_to(alpha[:, None], u.shape))
    np.testing.assert_array_equal(rows_module.surrogate_primitive_rows(u, 1.0, alpha, kind),
                                  general.surrogate_primitive(x, full, kind))
    gu, ga = rows_module.spike_backward_rows(g, u, 1.0, alpha, kind, True)
    gx, terms = general.spike_backward(g, x, full, kind, True)
    np.testing.assert_array_equal(gu, gx)
    exact = terms.astype(np.float64).sum(axis=1)
    bound = 4 * np.finfo(dtype).eps * (1 + np.abs(terms).sum(axis=1))
    assert np.all(np.abs(ga - exact) <= bound), (ga, exact)


def test_row_slope_sums_do_not_depend_on_the_thread_count():
    u, alpha, g = _row_case(3, np.float32, 300, 333)  # above SERIAL_BELOW: the parallel driver
    assert u.size >= jit.SERIAL_BELOW
    results = on_one_and_all_threads(lambda: jit.spike_backward_rows(g, u, 1.0, alpha, SIGMOID, True))
    for gu, ga in results[1:]:
        np.testing.assert_array_equal(gu, results[0][0])
        np.testing.assert_array_equal(ga, results[0][1])
