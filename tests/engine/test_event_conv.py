"""Event-driven convolution: Numba == NumPy reference == PyTorch's float64 convolution; conv2d's event path."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, gradcheck
from minisnn import functional as F
from minisnn.kernels.jit import events as jit
from minisnn.kernels.reference import events as ref
from minisnn.ops import conv as conv_ops

from ..conftest import on_one_and_all_threads
from .strategies import seeds
from .test_kernels_events import sparse

torch = pytest.importorskip("torch")


def torch_conv64(x, w, b, padding, stride=1):
    """PyTorch's float64 convolution of float64 copies of the operands."""
    tb = None if b is None else torch.from_numpy(np.asarray(b, np.float64))
    return torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64)),
                                      tb, stride=stride, padding=padding).numpy()


def events_of(x):
    """The events of x [N, C, H, W] seen as rows [N·C·H, W] (every nonzero)."""
    x2 = x.reshape(-1, x.shape[-1])
    indptr = ref.event_row_pointers(x2, x2.size)
    return (indptr, *ref.gather_events(x2, indptr))


@pytest.mark.parametrize("out_dtype", [np.float32, np.float64])
@given(seed=seeds, n=st.integers(1, 3), c=st.integers(1, 5), o=st.integers(1, 9), h=st.integers(1, 9),
       w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4), ph=st.integers(0, 2), pw=st.integers(0, 2),
       density=st.sampled_from([0.0, 0.1, 0.4, 1.0]), binary=st.booleans())
def test_jit_matches_reference_and_torch(out_dtype, seed, n, c, o, h, w, kh, kw, ph, pw, density, binary):
    """Any kernel size and padding (outputs over the padding included), empty to full inputs, spikes or real
    values: both kernels give the float64 convolution rounded once into out's dtype (to its last bit)."""
    if h + 2 * ph < kh or w + 2 * pw < kw:
        return
    rng = np.random.default_rng(seed)
    x = sparse(rng, (n, c, h, w), density, out_dtype, binary)
    wt = rng.standard_normal((o, c, kh, kw))
    bias = rng.standard_normal(o)
    w_taps = np.ascontiguousarray(wt.transpose(2, 3, 1, 0))
    ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
    exact = torch_conv64(x, wt, bias, (ph, pw))
    rtol = 1e-6 if out_dtype == np.float32 else 1e-12         # float32: one rounding, the sum order aside
    for backend in (ref, jit):
        for out in (np.full((n, o, ho, wo), np.nan, dtype=out_dtype),                  # channels first or last
                    np.full((n, ho, wo, o), np.nan, dtype=out_dtype).transpose(0, 3, 1, 2)):
            got = backend.event_conv2d(*events_of(x), w_taps, bias, ph, pw, out)
            assert got is out and got.dtype == out_dtype
            np.testing.assert_allclose(got, exact, rtol=rtol, atol=rtol, err_msg=backend.__name__)


def test_the_float32_result_is_the_float64_sum_rounded_once():
    """A spike layer in float32: each output within one float32 rounding of the exact (float64) result."""
    rng = np.random.default_rng(7)
    x = sparse(rng, (4, 24, 12, 12), 0.08, np.float32, True)
    wt = rng.standard_normal((32, 24, 3, 3)).astype(np.float32)
    y = F.conv2d(x, wt, padding=1).data
    assert conv_ops.input_events(x.reshape(-1, 12), conv_ops.EVENT_DENSITY) is not None
    exact = torch_conv64(x, wt, None, 1)
    assert y.dtype == np.float32
    half_ulp = 0.5 * np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(y - exact) <= half_ulp)


def test_results_do_not_depend_on_the_thread_count():
    """Each output row is summed by one thread, events in a fixed order."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    x = sparse(rng, (6, 16, 10, 10), 0.2, np.float32, True)
    w_taps = rng.standard_normal((3, 3, 16, 24))
    out = np.empty((6, 24, 10, 10), np.float32)
    results = on_one_and_all_threads(lambda: jit.event_conv2d(*events_of(x), w_taps, np.zeros(24), 1, 1, out).copy())
    np.testing.assert_array_equal(results[0], results[1])


def test_sparse_stride_one_input_takes_the_event_path_and_others_do_not(monkeypatch):
    calls = []
    monkeypatch.setattr(conv_ops, "_event_forward", lambda *a: calls.append(a) or np.zeros((1, 1, 1, 1)))
    rng = np.random.default_rng(1)
    spikes = sparse(rng, (2, 8, 6, 6), 0.05, np.float32, True)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    conv_ops.conv2d_forward(spikes, w, None, (1, 1), (1, 1))
    assert len(calls) == 1
    conv_ops.conv2d_forward(spikes, w, None, (2, 2), (1, 1))                      # strided: dense
    conv_ops.conv2d_forward(spikes, w[:, :, :1, :1].copy(), None, (1, 1), (0, 0))  # 1×1: its GEMMs
    conv_ops.conv2d_forward(rng.standard_normal((2, 8, 6, 6)).astype(np.float32), w, None, (1, 1), (1, 1))
    assert len(calls) == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k, padding", [(3, 1), (3, 0), (5, 2), (2, 1)])
def test_event_conv2d_matches_torch_with_gradients(dtype, k, padding):
    """Forward (event path) and the three gradients (the dense backward) against PyTorch."""
    rng = np.random.default_rng(k + padding)
    x = sparse(rng, (3, 6, 9, 8), 0.08, dtype, True)
    w = rng.standard_normal((5, 6, k, k)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    assert conv_ops.input_events(x.reshape(-1, 8), conv_ops.EVENT_DENSITY) is not None
    mine = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.conv2d(*mine, padding=padding)
    expected = torch.nn.functional.conv2d(*theirs, padding=padding)
    tight = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tight, atol=tight)
    g = rng.standard_normal(out.shape).astype(dtype)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    for mine_grad, their in zip(mine, theirs):
        np.testing.assert_allclose(mine_grad.grad, their.grad.numpy(), rtol=tight, atol=tight * 10)


def test_event_conv1d_and_a_folded_batch_norm():
    """conv1d reaches the event path through its [N, C, 1, L] view; an affine map is applied in float64."""
    rng = np.random.default_rng(2)
    x = sparse(rng, (4, 7, 30), 0.08, np.float32, True)
    assert conv_ops.input_events(x.reshape(-1, 30), conv_ops.EVENT_DENSITY) is not None
    w = rng.standard_normal((5, 7, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    y = F.conv1d(x, w, b, padding=1).data
    expected = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1)
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-5, atol=1e-5)
    scale, shift = rng.uniform(0.5, 2.0, 5), rng.standard_normal(5)
    x4 = x[:, :, None, :]
    y_affine = F.conv2d(x4, w[:, :, None, :], b, padding=(0, 1), affine=(scale, shift)).data
    exact = torch_conv64(x4, w[:, :, None, :], b, (0, 1)) * scale[:, None, None] + shift[:, None, None]
    np.testing.assert_allclose(y_affine, exact, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_event_conv2d_gradcheck(binary):
    """float64 finite differences for w and b through the event path (y is linear in them)."""
    rng = np.random.default_rng(4)
    x = sparse(rng, (2, 3, 6, 7), 0.08, np.float64, binary)
    assert conv_ops.input_events(x.reshape(-1, 7), conv_ops.EVENT_DENSITY) is not None
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gradcheck(lambda w, b: F.conv2d(x, w, b, padding=1), [w, b])
