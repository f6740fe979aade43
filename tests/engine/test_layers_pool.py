"""max_pool2d: PyTorch parity incl. ties, padding as −∞ and overlapping windows; gradcheck; errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, gradcheck, no_grad
from minisnn import functional as F

from ..conftest import tol

torch = pytest.importorskip("torch")


def compare(x, kernel, stride, padding, dtype, seed=0):
    """Our forward and input gradient against torch.nn.functional.max_pool2d (exact: no arithmetic)."""
    x = x.astype(dtype)
    mine = Tensor(x, requires_grad=True)
    ref = torch.tensor(x, requires_grad=True)
    y = F.max_pool2d(mine, kernel, stride, padding)
    expected = torch.nn.functional.max_pool2d(ref, kernel, stride, padding)
    assert y.dtype == dtype and y.shape == tuple(expected.shape)
    np.testing.assert_array_equal(y.data, expected.detach().numpy())
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    y.backward(g)
    expected.backward(torch.from_numpy(g))
    rtol, atol = tol(dtype)  # overlapping windows add gradients, so the order of additions may differ
    np.testing.assert_allclose(mine.grad, ref.grad.numpy(), rtol=rtol, atol=atol)
    assert mine.grad.dtype == dtype


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    seed = draw(st.integers(0, 2**31))
    # small integer values produce many ties inside a window
    ties = draw(st.booleans())
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(np.float64) if ties else rng.standard_normal(shape)
    return x, (kh, kw), stride, (ph, pw), seed


@given(case=pool_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_max_pool2d_matches_torch(case, dtype):
    x, kernel, stride, padding, seed = case
    compare(x, kernel, stride, padding, dtype, seed)


def test_max_pool2d_k3_s2_p1_model_config():
    """The patch-embedding pooling of MSViT/QKFormer: kernel 3, stride 2, padding 1, 8×8 → 4×4."""
    rng = np.random.default_rng(0)
    compare(rng.standard_normal((2, 3, 8, 8)), 3, 2, 1, np.float32)
    compare(rng.integers(0, 2, size=(2, 3, 8, 8)).astype(np.float64), 3, 2, 1, np.float64)  # binary spikes: ties


@given(case=pool_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_max_pool2d_without_a_graph_matches_torch(case, dtype):
    """Under no_grad (and for an input that needs no gradient) the forward keeps no positions
    (`kernels.max_pool2d_values`); its values are still PyTorch's."""
    x, kernel, stride, padding, _ = case
    x = x.astype(dtype)
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel, stride, padding).numpy()
    with no_grad():
        np.testing.assert_array_equal(F.max_pool2d(Tensor(x, requires_grad=True), kernel, stride, padding).data,
                                      expected)
    np.testing.assert_array_equal(F.max_pool2d(x, kernel, stride, padding).data, expected)


def test_max_pool2d_ties_choose_first_in_window():
    x = np.ones((1, 1, 2, 2))
    t = Tensor(x, requires_grad=True)
    F.max_pool2d(t, 2).backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(t.grad[0, 0], [[1, 0], [0, 0]])


def test_max_pool2d_padding_is_minus_infinity():
    x = -np.ones((1, 1, 3, 3))  # all negative: zero padding would win, −∞ padding does not
    y = F.max_pool2d(x, 3, 1, 1)
    np.testing.assert_array_equal(y.data, -np.ones((1, 1, 3, 3)))


def test_max_pool2d_nan_propagates_like_torch():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    compare(x, 2, 2, 0, np.float64)


def test_max_pool2d_gradcheck():
    # distinct values with gaps ≫ eps, so no finite difference crosses a change of the argmax
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6).astype(np.float64) * 0.1
    gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1), [x])
    gradcheck(lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 0)), [x])


@pytest.mark.parametrize(
    "shape, kernel, stride, padding, match",
    [((1, 3, 4), 2, None, 0, r"\[N, C, H, W\]"), ((1, 1, 4, 4), 3, 1, 2, "half the kernel"),
     ((1, 1, 2, 2), 3, 1, 0, "does not fit"), ((1, 1, 4, 4), 2, 0, 0, "must be >= 1")],
)
def test_max_pool2d_bad_input(shape, kernel, stride, padding, match):
    with pytest.raises(ValueError, match=match) as info:
        F.max_pool2d(np.ones(shape), kernel, stride, padding)
    assert "\n" not in str(info.value)
