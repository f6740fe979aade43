"""BatchNorm (train/eval, running statistics) and LayerNorm against PyTorch; float64 gradchecks; errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, gradcheck, nn
from minisnn import functional as F

from ..conftest import tol

torch = pytest.importorskip("torch")

dtypes = st.sampled_from([np.float64, np.float32])
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def bn_shapes():
    """[N, C], [N, C, L] or [N, C, H, W] with at least 2 values per channel."""
    return st.one_of(
        st.tuples(st.integers(2, 6), st.integers(1, 4)),
        st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(2, 6)),
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(2, 4)),
    )


def torch_bn(shape, dtype):
    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    return cls(shape[1]).to(TORCH_DTYPE[dtype])


def our_bn(shape, dtype):
    cls = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    return cls(shape[1], dtype=dtype)


def randomise_affine(ours, theirs, rng):
    """Non-trivial γ, β (identical in both modules)."""
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, ours.num_features)))
        theirs.bias.copy_(torch.tensor(rng.standard_normal(ours.num_features)))
    ours.weight.data[...] = theirs.weight.detach().numpy()
    ours.bias.data[...] = theirs.bias.detach().numpy()


def step_both(ours, theirs, x, dtype, seed):
    """One forward/backward in both; compare output, input grad and γ/β grads."""
    rtol, atol = tol(dtype)
    mine, ref = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours.zero_grad()
    theirs.zero_grad()
    y, expected = ours(mine), theirs(ref)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    y.backward(g)
    expected.backward(torch.from_numpy(g))
    # the float32 input gradient subtracts two O(1) sums: allow a few ulps of them
    grad_atol = atol if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(mine.grad, ref.grad.numpy(), rtol=rtol, atol=grad_atol, err_msg="dx")
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=rtol, atol=grad_atol, err_msg="dγ")
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=rtol, atol=grad_atol, err_msg="dβ")
    assert mine.grad.dtype == ours.weight.grad.dtype == dtype


@given(shape=bn_shapes(), dtype=dtypes, seed=st.integers(0, 2**31), shift=st.sampled_from([0.0, 3.0]))
def test_batchnorm_train_steps_then_eval_match_torch(shape, dtype, seed, shift):
    rng = np.random.default_rng(seed)
    ours, theirs = our_bn(shape, dtype), torch_bn(shape, dtype)
    randomise_affine(ours, theirs, rng)
    rtol, atol = tol(dtype)
    for step in range(3):
        x = (rng.standard_normal(shape) * rng.uniform(0.5, 2.0) + shift).astype(dtype)
        step_both(ours, theirs, x, dtype, seed + step)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=rtol, atol=atol)
        assert ours.num_batches_tracked.dtype == np.int64 and ours.num_batches_tracked.shape == ()
        assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == step + 1
    ours.eval()
    theirs.eval()
    x = (rng.standard_normal(shape) + shift).astype(dtype)
    step_both(ours, theirs, x, dtype, seed + 10)
    assert int(ours.num_batches_tracked) == 3  # eval does not count batches
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=rtol, atol=atol)


def test_batchnorm_large_batch_float32_statistics():
    """A [64, 8, 32, 32] float32 batch with a large offset: statistics stay accurate (float64 accumulation)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 8, 32, 32)) * 0.1 + 50.0).astype(np.float32)
    ours, theirs = nn.BatchNorm2d(8), torch.nn.BatchNorm2d(8)
    y = ours(x)
    expected = theirs(torch.tensor(x))
    np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-4)


def test_batchnorm_momentum_none_is_cumulative_average():
    rng = np.random.default_rng(1)
    ours = nn.BatchNorm1d(3, momentum=None, dtype=np.float64)
    theirs = torch.nn.BatchNorm1d(3, momentum=None).double()
    for _ in range(4):
        x = rng.standard_normal((5, 3, 4)) * 2 + 1
        ours(x)
        theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)


def test_batchnorm_without_affine_or_tracking():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 5))
    ours = nn.BatchNorm1d(3, affine=False, track_running_stats=False, dtype=np.float64).eval()
    theirs = torch.nn.BatchNorm1d(3, affine=False, track_running_stats=False).double().eval()
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), (2, 2, 3, 3)])
def test_batch_norm_gradcheck(training, shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 2 + 1
    w, b = rng.uniform(0.5, 1.5, shape[1]), rng.standard_normal(shape[1])
    rm, rv = rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1])

    def fn(x, w, b):
        # copies: the running statistics must not drift while gradcheck re-evaluates fn
        return F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training)

    gradcheck(fn, [x, w, b])


def test_batch_norm_functional_updates_running_stats_in_place():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 2, 3))
    rm, rv = np.zeros(2), np.ones(2)
    F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2), ddof=1)
    np.testing.assert_allclose(rm, 0.5 * mean, rtol=1e-12)
    np.testing.assert_allclose(rv, 0.5 + 0.5 * var, rtol=1e-12)


# ---------------------------------------------------------------------------------- LayerNorm

@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=2), norm=st.lists(st.integers(1, 5), min_size=1, max_size=2),
    affine=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**31),
)
def test_layer_norm_matches_torch(lead, norm, affine, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + tuple(norm)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    ours = nn.LayerNorm(tuple(norm), elementwise_affine=affine, dtype=dtype)
    theirs = torch.nn.LayerNorm(tuple(norm), elementwise_affine=affine).to(TORCH_DTYPE[dtype])
    if affine:
        w, b = rng.uniform(0.5, 1.5, norm).astype(dtype), rng.standard_normal(norm).astype(dtype)
        ours.weight.data[...], ours.bias.data[...] = w, b
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
    rtol, atol = tol(dtype)
    grad_atol = atol if dtype == np.float64 else 1e-4
    mine, ref = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, expected = ours(mine), theirs(ref)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=rtol, atol=atol)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(mine.grad, ref.grad.numpy(), rtol=rtol, atol=grad_atol)
    if affine:
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=rtol, atol=grad_atol)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=rtol, atol=grad_atol)


@pytest.mark.parametrize("norm_shape", [(4,), (3, 4)])
def test_layer_norm_gradcheck(norm_shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2,) + norm_shape)
    w, b = rng.uniform(0.5, 1.5, norm_shape), rng.standard_normal(norm_shape)
    gradcheck(lambda x, w, b: F.layer_norm(x, norm_shape, w, b), [x, w, b])
    gradcheck(lambda x: F.layer_norm(x, norm_shape), [x])


# ------------------------------------------------------------------------------ bad input

def test_batchnorm_wrong_rank_and_channels():
    with pytest.raises(ValueError, match="expected 4-d") as info:
        nn.BatchNorm2d(3)(np.ones((2, 3, 4), np.float32))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="expected 2-d"):
        nn.BatchNorm1d(3)(np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="has 4 channels .* expected 3"):
        nn.BatchNorm1d(3)(np.ones((2, 4), np.float32))


def test_batchnorm_single_value_per_channel_in_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.ones((1, 3), np.float32))
    nn.BatchNorm1d(3).eval()(np.ones((1, 3), np.float32))  # fine in eval mode


def test_layer_norm_shape_mismatch():
    with pytest.raises(ValueError, match="does not end in normalized_shape"):
        nn.LayerNorm(5)(np.ones((2, 4), np.float32))
