"""conv2d / conv1d: float64 gradchecks, PyTorch parity (forward and every gradient), chunking, errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from minisnn import Tensor, gradcheck
from minisnn import functional as F
from minisnn.ops import conv as conv_ops

from ..conftest import tol

torch = pytest.importorskip("torch")

dtypes = st.sampled_from([np.float64, np.float32])


def run_both(ours, theirs, arrays, dtype, seed=0):
    """Forward + backward of ours (minisnn) and theirs (torch) on the same data; compare everything."""
    rtol, atol = tol(dtype)
    mine = [None if a is None else Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    ref = [None if a is None else torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out, expected = ours(*mine), theirs(*ref)
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol)
    cot = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    out.backward(cot)
    expected.backward(torch.from_numpy(cot))
    for i, (m, t) in enumerate(zip(mine, ref)):
        if m is None:
            continue
        assert m.grad.dtype == dtype and m.grad.shape == m.shape
        np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


@st.composite
def conv2d_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    n, c, o = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31)),
                chunk_bytes=draw(st.sampled_from([1, 300, 1 << 30])),
                per_image_pixels=draw(st.sampled_from([1, 1 << 30])))


@given(case=conv2d_cases(), dtype=dtypes)
def test_conv2d_matches_torch(case, dtype):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    wt = rng.standard_normal((case["o"], case["c"]) + case["k"])
    b = rng.standard_normal(case["o"]) if case["bias"] else None
    old = conv_ops.CHUNK_BYTES, conv_ops.PER_IMAGE_PIXELS
    conv_ops.CHUNK_BYTES = case["chunk_bytes"]  # 1 → one image per chunk; 300 → uneven chunks; huge → one chunk
    conv_ops.PER_IMAGE_PIXELS = case["per_image_pixels"]  # 1×1 weight gradient: per image (1) or per chunk
    try:
        run_both(
            lambda x, w, b: F.conv2d(x, w, b, stride=case["stride"], padding=case["padding"]),
            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, stride=case["stride"], padding=case["padding"]),
            [x, wt, b], dtype, seed=case["seed"],
        )
    finally:
        conv_ops.CHUNK_BYTES, conv_ops.PER_IMAGE_PIXELS = old


@given(
    n=st.integers(1, 3), c=st.integers(1, 4), o=st.integers(1, 4), length=st.integers(1, 12),
    k=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2), bias=st.booleans(),
    seed=st.integers(0, 2**31), dtype=dtypes,
)
def test_conv1d_matches_torch(n, c, o, length, k, stride, padding, bias, seed, dtype):
    if length + 2 * padding < k:
        length = k
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, length)), rng.standard_normal((o, c, k))
    b = rng.standard_normal(o) if bias else None
    run_both(
        lambda x, w, b: F.conv1d(x, w, b, stride=stride, padding=padding),
        lambda x, w, b: torch.nn.functional.conv1d(x, w, b, stride=stride, padding=padding),
        [x, wt, b], dtype, seed=seed,
    )


@pytest.mark.parametrize(
    "k, stride, padding, bias",
    [((3, 3), 1, 1, True), ((3, 2), (2, 1), (1, 0), False), ((1, 1), 1, 0, True), ((1, 1), 2, 0, False),
     ((1, 1), 1, 1, True), ((2, 3), 3, 2, True)],
)
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])
def test_conv2d_gradcheck(k, stride, padding, bias, chunk_bytes, monkeypatch):
    monkeypatch.setattr(conv_ops, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_ops, "PER_IMAGE_PIXELS", 1 if chunk_bytes == 1 else 1 << 30)  # both 1×1 dW forms
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 4))
    w = rng.standard_normal((3, 2) + k)
    inputs = [x, w] + ([rng.standard_normal(3)] if bias else [])
    gradcheck(lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride=stride, padding=padding), inputs)


@pytest.mark.parametrize("k, stride, padding", [(1, 1, 0), (3, 1, 1), (2, 2, 1), (3, 2, 0)])
def test_conv1d_gradcheck(k, stride, padding):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 7)), rng.standard_normal((2, 3, k)), rng.standard_normal(2)
    gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=stride, padding=padding), [x, w, b])


@pytest.mark.parametrize("backend", ["reference", "jit"])
@settings(deadline=None, max_examples=25)
@given(m=st.integers(1, 3), c=st.integers(1, 5), h=st.integers(1, 8), w=st.integers(1, 8), kh=st.integers(1, 4),
       kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2))
def test_im2col_col2im_are_adjoint(backend, m, c, h, w, kh, kw, sh, sw, ph, pw):
    """<im2col(x), d> == <x, col2im(d)> for every x, d (col2im is the transpose of im2col); jit == reference."""
    import importlib
    reference = importlib.import_module("minisnn.kernels.reference.conv")
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    assume(ho >= 1 and wo >= 1)
    impl = importlib.import_module(f"minisnn.kernels.{backend}.conv")
    rng = np.random.default_rng(m * 1000 + c * 100 + h * 10 + w)
    x = rng.standard_normal((m, h, w, c))
    cols = impl.im2col_rows(x, kh, kw, sh, sw, ph, pw, np.empty((m * ho * wo, kh * kw * c)))
    d = rng.standard_normal(cols.shape)
    back = impl.col2im_rows(d, kh, kw, sh, sw, ph, pw, np.full_like(x, np.nan))
    assert np.isclose(np.sum(cols * d), np.sum(x * back), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(cols, reference.im2col_rows(x, kh, kw, sh, sw, ph, pw, np.empty_like(cols)))
    np.testing.assert_allclose(back, reference.col2im_rows(d, kh, kw, sh, sw, ph, pw, np.empty_like(x)),
                               rtol=1e-12, atol=1e-12)
    # one entry by its definition: row (n, i, j), column (p, q, channel)
    n, i, j, p, q, ch = m - 1, ho - 1, wo - 1, kh - 1, kw - 1, c - 1
    r, col = i * sh + p - ph, j * sw + q - pw
    expected = x[n, r, col, ch] if 0 <= r < h and 0 <= col < w else 0.0
    assert cols[(n * ho + i) * wo + j, (p * kw + q) * c + ch] == expected


@pytest.mark.parametrize("backend", ["reference", "jit"])
@settings(deadline=None, max_examples=25)
@given(m=st.integers(1, 3), a=st.integers(1, 150), b=st.integers(1, 70), dtype=st.sampled_from([np.float32, np.float64]))
def test_swap_last_axes_is_the_transpose(backend, m, a, b, dtype):
    """out[n, j, i] == x[n, i, j] for shapes that are not multiples of the tile, into a slice of a bigger array."""
    import importlib
    impl = importlib.import_module(f"minisnn.kernels.{backend}.conv")
    x = np.random.default_rng(a * 100 + b).standard_normal((m, a, b)).astype(dtype)
    big = np.full((m + 1, b, a), np.nan, dtype=dtype)
    out = impl.swap_last_axes(x, big[1:])
    assert out is not None and np.shares_memory(out, big)
    np.testing.assert_array_equal(big[1:], x.transpose(0, 2, 1))
    assert np.isnan(big[0]).all()


@pytest.mark.parametrize("k, padding", [(3, 1), (1, 0)])
def test_conv_keeps_float32(k, padding):
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 4, 6, 6)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((5, 4, k, k)).astype(np.float32), requires_grad=True)
    b = Tensor(np.zeros(5, np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=padding)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_conv_backward_skips_unneeded_gradients():
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((1, 2, 4, 4)))  # no grad: only the weight gradient is computed
    w = Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y.backward(np.ones(y.shape))
    assert x.grad is None and w.grad.shape == (3, 2, 3, 3)
    wt = torch.tensor(w.data, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x.data), wt, padding=1).sum().backward()
    np.testing.assert_allclose(w.grad, wt.grad.numpy(), rtol=1e-12)


# ------------------------------------------------------------------------------ bad input

def one_line(info) -> str:
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_conv2d_channel_mismatch():
    with pytest.raises(ValueError) as info:
        F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 2, 3, 3)))
    msg = one_line(info)
    assert "3 channels" in msg and "expects 2" in msg


@pytest.mark.parametrize("shape", [(3, 5, 5), (1, 1, 3, 5, 5)])
def test_conv2d_wrong_rank(shape):
    with pytest.raises(ValueError) as info:
        F.conv2d(np.ones(shape), np.ones((4, 3, 3, 3)))
    assert "[N, C, H, W]" in one_line(info)


def test_conv1d_wrong_rank_and_channels():
    with pytest.raises(ValueError, match=r"\[N, C, L\]"):
        F.conv1d(np.ones((2, 3, 4, 5)), np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="4 channels but the weight expects 3"):
        F.conv1d(np.ones((2, 4, 5)), np.ones((2, 3, 1)))


def test_conv2d_kernel_larger_than_input():
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)))


def test_conv2d_dtype_mismatch():
    with pytest.raises(TypeError, match="float32 differs from weight dtype float64"):
        F.conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 3, 3)))


def test_conv2d_bad_stride():
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), stride=0)
