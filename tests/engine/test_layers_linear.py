"""linear and dropout: PyTorch parity on any-rank inputs, float64 gradchecks, dropout statistics, errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, gradcheck, nn
from minisnn import functional as F

from ..conftest import tol

torch = pytest.importorskip("torch")


@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=3), n_in=st.integers(1, 6), n_out=st.integers(1, 6),
    bias=st.booleans(), dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**31),
    transposed=st.booleans(),
)
def test_linear_matches_torch(lead, n_in, n_out, bias, dtype, seed, transposed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(lead) + (n_in,)).astype(dtype)
    if transposed and x.ndim >= 2:  # a non-contiguous input (e.g. [B, C, N] viewed as [B, N, C])
        x = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, -1, -2)), -1, -2)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype) if bias else None
    check_linear_against_torch(x, w, b, rng)


def check_linear_against_torch(x, w, b, rng):
    """F.linear(x, w, b) and its three gradients equal torch.nn.functional.linear's (b may be None)."""
    dtype = x.dtype
    rtol, atol = tol(dtype)
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    tb = Tensor(b, requires_grad=True) if b is not None else None
    rx, rw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    rb = torch.tensor(b, requires_grad=True) if b is not None else None
    y, expected = F.linear(tx, tw, tb), torch.nn.functional.linear(rx, rw, rb)
    assert y.dtype == dtype and y.shape == tuple(expected.shape)
    np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=rtol, atol=atol)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(tx.grad, rx.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(tw.grad, rw.grad.numpy(), rtol=rtol, atol=atol)
    if b is not None:
        np.testing.assert_allclose(tb.grad, rb.grad.numpy(), rtol=rtol, atol=atol)
    assert tx.grad.dtype == tw.grad.dtype == dtype
    assert tw.grad.flags.c_contiguous


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 2, 3)])
def test_linear_gradcheck(shape):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((4, 3)), rng.standard_normal(4)
    gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])
    gradcheck(lambda x, w: F.linear(x, w), [x, w])


def test_linear_bad_input():
    with pytest.raises(ValueError, match="does not end in in_features=3") as info:
        F.linear(np.ones((2, 4)), np.ones((5, 3)))
    assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="dtype"):
        F.linear(np.ones((2, 3), np.float32), np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        F.linear(np.ones((2, 3)), np.ones((5, 3)), np.ones(4))


# ------------------------------------------------------------------------------------ dropout

@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_statistics_and_gradient(p, dtype):
    x = Tensor(np.ones((200, 500), dtype=dtype), requires_grad=True)
    y = F.dropout(x, p, training=True, rng=np.random.default_rng(0))
    assert y.dtype == dtype
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], 1.0 / (1.0 - p), rtol=1e-6)  # survivors are scaled
    assert abs(kept.mean() - (1 - p)) < 0.01  # ~4 standard deviations of the keep rate
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    y.backward(g)
    np.testing.assert_allclose(x.grad, g * y.data, rtol=1e-6)  # same mask and scale in backward


def test_dropout_is_identity_in_eval_and_for_p0():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    layer = nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x.data)
    assert np.all(F.dropout(x, 1.0).data == 0)


def test_dropout_is_reproducible():
    x = np.ones((8, 8))
    a = F.dropout(x, 0.3, rng=np.random.default_rng(5)).data
    b = F.dropout(x, 0.3, rng=np.random.default_rng(5)).data
    np.testing.assert_array_equal(a, b)
    nn.init.manual_seed(7)
    c = nn.Dropout(0.3)(x).data
    nn.init.manual_seed(7)
    d = nn.Dropout(0.3)(x).data
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(a, F.dropout(x, 0.3, rng=np.random.default_rng(6)).data)  # the seed matters


def test_dropout_bad_p():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.dropout(np.ones(3), 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(-0.1)
