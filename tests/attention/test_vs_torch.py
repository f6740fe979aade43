"""Forward and backward against PyTorch autograd: float64 tight, float32 within float32 rounding."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings, strategies as st  # noqa: E402

from minisnn import Tensor  # noqa: E402
from minisnn.attention import head_column_sum, head_token_mask, ssa  # noqa: E402

from ..conftest import tol  # noqa: E402
from .conftest import dtypes, kinds, lead_shapes, make_array, seeds  # noqa: E402


def compare(ours, theirs, arrays, dtype, seed):
    """Same inputs and cotangent through minisnn and torch; outputs and all input gradients agree."""
    rtol, atol = tol(dtype)
    mine = [Tensor(x, requires_grad=True) for x in arrays]
    ref = [torch.tensor(x, requires_grad=True) for x in arrays]
    out = ours(*mine)
    expected = theirs(*ref)
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    scale = max(1.0, float(np.abs(expected.detach().numpy()).max(initial=0)))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol * scale)
    cot = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    out.backward(cot)
    expected.backward(torch.tensor(cot))
    for m, r in zip(mine, ref):
        want = r.grad.numpy()
        assert m.grad.dtype == dtype
        np.testing.assert_allclose(m.grad, want, rtol=rtol, atol=atol * max(1.0, float(np.abs(want).max(initial=0))))


def torch_ssa(q, k, v, scale):
    return (q @ k.transpose(-1, -2)) @ v * scale  # the Spikformer bracketing


@settings(max_examples=15)
@given(lead_shapes, st.integers(1, 70), st.integers(1, 70), st.integers(1, 20), st.integers(1, 20),
       dtypes, kinds, seeds)
def test_ssa_vs_torch(lead, nq, nk, d, dv, dtype, kind, seed):
    rng = np.random.default_rng(seed)
    q = make_array(rng, lead + (nq, d), dtype, kind)
    k = make_array(rng, lead + (nk, d), dtype, kind)
    v = make_array(rng, lead + (nk, dv), dtype, kind)
    compare(lambda q, k, v: ssa(q, k, v, scale=0.125), lambda q, k, v: torch_ssa(q, k, v, 0.125),
            [q, k, v], dtype, seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("heads, n, d", [(12, 64, 32), (8, 64, 48)])
def test_ssa_vs_torch_model_sizes(backend, dtype, heads, n, d):
    """Spikformer (12 heads × 32) and MSViT/QKFormer stage 3 (8 × 48) at N = 64, T·B = 2."""
    rng = np.random.default_rng(heads)
    q, k, v = (make_array(rng, (2, heads, n, d), dtype, "spikes") for _ in range(3))
    compare(lambda q, k, v: ssa(q, k, v), lambda q, k, v: torch_ssa(q, k, v, 0.125), [q, k, v], dtype, 0)


def torch_column_sum(x, heads):
    c, n = x.shape[-2:]
    return x.reshape(x.shape[:-2] + (heads, c // heads, n)).sum(-2)


def torch_token_mask(a, k, heads):
    c, n = k.shape[-2:]
    y = a.unsqueeze(-2) * k.reshape(k.shape[:-2] + (heads, c // heads, n))
    return y.reshape(k.shape)


@settings(max_examples=15)
@given(lead_shapes, st.integers(1, 4), st.integers(1, 6), st.integers(1, 40), dtypes, kinds, seeds)
def test_column_sum_and_mask_vs_torch(lead, heads, d, n, dtype, kind, seed):
    rng = np.random.default_rng(seed)
    x = make_array(rng, lead + (heads * d, n), dtype, kind)
    a = make_array(rng, lead + (heads, n), dtype, kind)
    compare(lambda x: head_column_sum(x, heads), lambda x: torch_column_sum(x, heads), [x], dtype, seed)
    compare(lambda a, x: head_token_mask(a, x, heads), lambda a, x: torch_token_mask(a, x, heads),
            [a, x], dtype, seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mssa_core_vs_torch(backend, dtype):
    """MSViT stage-2 shapes (small batch): mask(K, Σq + Σp) with a smooth stand-in for the neuron."""
    rng = np.random.default_rng(7)
    heads, c, n = 8, 192, 256
    q, p, k = (make_array(rng, (2, c, n), dtype, "spikes") for _ in range(3))

    def ours(q, p, k):
        return head_token_mask((head_column_sum(q, heads) + head_column_sum(p, heads)).tanh(), k, heads)

    def theirs(q, p, k):
        return torch_token_mask((torch_column_sum(q, heads) + torch_column_sum(p, heads)).tanh(), k, heads)

    compare(ours, theirs, [q, p, k], dtype, 1)
