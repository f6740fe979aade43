"""Every op, forward and backward, against PyTorch (float64 tight, float32 with dtype-aware tolerance).

Each case runs the same function on minisnn Tensors and on torch tensors, pulls
the same random cotangent back through both, and compares the output and every
input gradient, including the un-broadcasting of gradients to input shapes.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import assume, given, strategies as st  # noqa: E402

from minisnn import Tensor  # noqa: E402
from minisnn import functional as F  # noqa: E402

from .strategies import (broadcastable_pair, distinct_arrays, float_arrays, index_cases, layouts,  # noqa: E402
                         matmul_shapes, probability_rows, seeds, shapes)

from ..conftest import tol  # noqa: E402

dtypes = st.sampled_from([np.float64, np.float32])


def check_against_torch(ours, theirs, arrays, dtype, seed=0, rtol=None, atol=None):
    """Run ours(*Tensors) and theirs(*torch tensors); compare outputs and gradients."""
    r, a = tol(dtype)
    rtol = r if rtol is None else rtol
    atol = a if atol is None else atol
    arrays = [np.asarray(x, dtype=dtype) if np.asarray(x).dtype.kind == "f" else np.asarray(x) for x in arrays]
    mine = [Tensor(x, requires_grad=True) for x in arrays]
    ref = [torch.tensor(np.array(x, order="C"), requires_grad=True) for x in arrays]
    out = ours(*mine)
    expected = theirs(*ref)
    assert out.dtype == dtype, f"output dtype {out.dtype}, expected {np.dtype(dtype)}"
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol)
    cot = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    out.backward(cot)
    expected.backward(torch.from_numpy(cot))
    for i, (m, t) in enumerate(zip(mine, ref)):
        assert m.grad is not None, f"no gradient for input {i}"
        assert m.grad.shape == m.shape and m.grad.dtype == dtype, f"input {i}: grad {m.grad.shape} {m.grad.dtype}"
        np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


# ----------------------------------------------------------------------------- element-wise

BINARY = {
    "add": (F.add, torch.add),
    "sub": (F.sub, torch.sub),
    "mul": (F.mul, torch.mul),
    "div": (F.div, torch.div),
    "pow": (F.pow, torch.pow),
    "maximum": (F.maximum, torch.maximum),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data(), pair=broadcastable_pair(), dtype=dtypes)
def test_binary(name, data, pair, dtype):
    positive = name in ("div", "pow")
    a = data.draw(float_arrays(pair[0], low=0.3 if name == "pow" else -2.0, high=2.0))
    b = data.draw(float_arrays(pair[1], low=0.5 if positive else -2.0, high=2.0))
    if name == "maximum":
        assume(np.min(np.abs(a - b), initial=1.0) > 1e-3)
    a = data.draw(layouts(a))
    ours, theirs = BINARY[name]
    check_against_torch(ours, theirs, [a, b], dtype)


def test_maximum_ties_split_like_torch():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 5.0, 3.0])
    check_against_torch(F.maximum, torch.maximum, [a, b], np.float64)


@given(data=st.data(), dtype=dtypes, p=st.sampled_from([2.0, 3.0, 0.5, -1.0, -2.5, 0.0]))
def test_pow_scalar(data, dtype, p):
    x = data.draw(float_arrays(low=0.3, high=2.0))
    check_against_torch(lambda t: t ** p, lambda t: t ** p, [x], dtype)


def test_pow_zero_exponent_at_zero_base_has_zero_gradient():
    x = np.array([0.0, 1.0, 2.0])
    check_against_torch(lambda t: t ** 0.0, lambda t: t ** 0.0, [x], np.float64)
    e = np.zeros(3)
    check_against_torch(F.pow, torch.pow, [x, e], np.float64)


@given(data=st.data(), dtype=dtypes)
def test_operators_with_python_scalars_keep_dtype(data, dtype):
    x = data.draw(float_arrays(low=0.5, high=2.0))
    f = lambda t: (2 - t) * 3 + 1 / t - t / 4 + 2.0 ** t + abs(-t)  # noqa: E731
    check_against_torch(f, f, [x], dtype)


UNARY = {
    "neg": (F.neg, torch.neg, -2.0, 2.0, 0.0),
    "exp": (F.exp, torch.exp, -3.0, 3.0, 0.0),
    "log": (F.log, torch.log, 0.1, 3.0, 0.0),
    "sqrt": (F.sqrt, torch.sqrt, 0.1, 3.0, 0.0),
    "tanh": (F.tanh, torch.tanh, -3.0, 3.0, 0.0),
    "sigmoid": (F.sigmoid, torch.sigmoid, -6.0, 6.0, 0.0),
    "relu": (F.relu, torch.relu, -2.0, 2.0, 1e-3),
    "gelu": (F.gelu, torch.nn.functional.gelu, -4.0, 4.0, 0.0),
    "abs": (F.abs, torch.abs, -2.0, 2.0, 1e-3),
    "nan_to_num": (F.nan_to_num, torch.nan_to_num, -2.0, 2.0, 0.0),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data(), dtype=dtypes)
def test_unary(name, data, dtype):
    ours, theirs, low, high, away = UNARY[name]
    x = data.draw(layouts(data.draw(float_arrays(low=low, high=high, away_from_zero=away))))
    check_against_torch(ours, theirs, [x], dtype)


@pytest.mark.parametrize("name", ["relu", "abs"])
def test_kinks_at_zero_like_torch(name):
    ours, theirs = UNARY[name][:2]
    check_against_torch(ours, theirs, [np.array([-1.0, 0.0, 1.0])], np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_to_num_non_finite_like_torch(dtype):
    x = np.array([1.0, np.nan, np.inf, -np.inf, -3.0])
    check_against_torch(lambda t: F.nan_to_num(t, nan=0.5, posinf=7.0, neginf=-7.0),
                        lambda t: torch.nan_to_num(t, nan=0.5, posinf=7.0, neginf=-7.0), [x], dtype)
    check_against_torch(F.nan_to_num, torch.nan_to_num, [x], dtype)


@given(data=st.data(), pair=broadcastable_pair(), dtype=dtypes)
def test_where(data, pair, dtype):
    a = data.draw(float_arrays(pair[0]))
    b = data.draw(float_arrays(pair[1]))
    cond = np.asarray(np.random.default_rng(data.draw(seeds)).random(np.broadcast_shapes(*pair)) > 0.5)
    check_against_torch(lambda x, y: F.where(cond, x, y), lambda x, y: torch.where(torch.from_numpy(cond), x, y),
                        [a, b], dtype)


# ------------------------------------------------------------------------------------ matmul

@given(data=st.data(), dtype=dtypes)
def test_matmul(data, dtype):
    sa, sb = data.draw(matmul_shapes())
    a = data.draw(layouts(data.draw(float_arrays(sa))))
    b = data.draw(layouts(data.draw(float_arrays(sb))))
    check_against_torch(F.matmul, torch.matmul, [a, b], dtype)


# -------------------------------------------------------------------------------- reductions

@pytest.mark.parametrize("name", ["sum", "mean", "amax", "var", "var_unbiased"])
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), keepdims=st.booleans(), dtype=dtypes)
def test_reductions(name, data, shape, keepdims, dtype):
    ndim = len(shape)
    axis = tuple(data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                                    unique_by=lambda a: a % ndim)))
    if name == "amax":
        x = data.draw(distinct_arrays(shape))
        ours = lambda t: F.max(t, axis=axis, keepdims=keepdims)  # noqa: E731
        theirs = lambda t: torch.amax(t, dim=axis, keepdim=keepdims)  # noqa: E731
    elif name.startswith("var"):
        unbiased = name == "var_unbiased"
        assume(np.prod([shape[a] for a in axis]) > unbiased)
        x = data.draw(float_arrays(shape))
        ours = lambda t: F.var(t, axis=axis, keepdims=keepdims, unbiased=unbiased)  # noqa: E731
        theirs = lambda t: torch.var(t, dim=axis, keepdim=keepdims, correction=int(unbiased))  # noqa: E731
    else:
        x = data.draw(float_arrays(shape))
        ours = lambda t: getattr(F, name)(t, axis=axis, keepdims=keepdims)  # noqa: E731
        theirs = lambda t: getattr(torch, name)(t, dim=axis, keepdim=keepdims)  # noqa: E731
    check_against_torch(ours, theirs, [data.draw(layouts(x))], dtype)


@given(data=st.data(), dtype=dtypes)
def test_full_reductions(data, dtype):
    x = data.draw(float_arrays(data.draw(shapes(min_dims=1))))
    check_against_torch(lambda t: t.sum(), torch.sum, [x], dtype)
    check_against_torch(lambda t: t.mean(), torch.mean, [x], dtype)


def test_max_ties_shared_like_torch_amax():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    check_against_torch(lambda t: F.max(t, axis=1), lambda t: torch.amax(t, dim=1), [x], np.float64)
    check_against_torch(lambda t: F.max(t), torch.max, [x], np.float64)


# ------------------------------------------------------------------------------------ shapes

@given(data=st.data(), shape=shapes(min_dims=1, max_dims=4), dtype=dtypes)
def test_reshape_permute_transpose(data, shape, dtype):
    x = data.draw(layouts(data.draw(float_arrays(shape))))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    check_against_torch(lambda t: t.reshape(-1, 1), lambda t: t.reshape(-1, 1), [x], dtype)
    check_against_torch(lambda t: t.permute(perm), lambda t: t.permute(perm), [x], dtype)
    check_against_torch(lambda t: t.transpose(0, -1), lambda t: t.transpose(0, -1), [x], dtype)
    check_against_torch(lambda t: t.flatten(), lambda t: t.flatten(), [x], dtype)


@given(data=st.data(), pair=broadcastable_pair(), dtype=dtypes)
def test_broadcast_to(data, pair, dtype):
    target = np.broadcast_shapes(*pair)
    x = data.draw(float_arrays(pair[0]))
    check_against_torch(lambda t: F.broadcast_to(t, target), lambda t: torch.broadcast_to(t, target), [x], dtype)
    check_against_torch(lambda t: t.expand(target), lambda t: t.expand(target), [x], dtype)


@given(data=st.data(), dtype=dtypes)
def test_getitem(data, dtype):
    shape, index = data.draw(index_cases())
    x = data.draw(float_arrays(shape))
    if isinstance(index, tuple):
        tindex = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)
    else:
        tindex = torch.from_numpy(index) if isinstance(index, np.ndarray) else index
    if isinstance(index, slice) and index.step == -1:
        check_against_torch(lambda t: t[index], lambda t: torch.flip(t, dims=(0,)), [x], dtype)
    else:
        check_against_torch(lambda t: t[index], lambda t: t[tindex], [x], dtype)


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), dtype=dtypes)
def test_concatenate_stack_pad(data, shape, dtype):
    a = data.draw(float_arrays(shape))
    b = data.draw(float_arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_against_torch(lambda x, y: F.concatenate([x, y, x], axis=axis),
                        lambda x, y: torch.cat([x, y, x], dim=axis), [a, b], dtype)
    check_against_torch(lambda x, y: F.stack([y, x], axis=axis), lambda x, y: torch.stack([y, x], dim=axis),
                        [a, b], dtype)
    widths = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape]
    torch_pad = [w for pair in reversed(widths) for w in pair]  # torch lists the last axis first
    check_against_torch(lambda x: F.pad(x, widths, value=0.25),
                        lambda x: torch.nn.functional.pad(x, torch_pad, value=0.25), [a], dtype)


# --------------------------------------------------------------------------- softmax and loss

@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), dtype=dtypes)
def test_softmax_log_softmax(data, shape, dtype):
    x = data.draw(float_arrays(shape, low=-30.0, high=30.0))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_against_torch(lambda t: F.softmax(t, axis=axis), lambda t: torch.softmax(t, dim=axis), [x], dtype)
    check_against_torch(lambda t: F.log_softmax(t, axis=axis), lambda t: torch.log_softmax(t, dim=axis), [x], dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data(), rows=st.integers(1, 6), classes=st.integers(2, 10),
       smoothing=st.sampled_from([0.0, 0.1, 0.3]), soft=st.booleans(), dtype=dtypes)
def test_cross_entropy(reduction, data, rows, classes, smoothing, soft, dtype):
    logits = data.draw(float_arrays((rows, classes), low=-5.0, high=5.0))
    rng = np.random.default_rng(data.draw(seeds))
    target = probability_rows(rng, rows, classes, dtype) if soft else rng.integers(0, classes, size=rows)
    check_against_torch(
        lambda t: F.cross_entropy(t, target, label_smoothing=smoothing, reduction=reduction),
        lambda t: torch.nn.functional.cross_entropy(t, torch.from_numpy(target), label_smoothing=smoothing,
                                                    reduction=reduction),
        [logits], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_extreme_logits_stay_finite(dtype):
    x = np.array([[1000.0, -1000.0, 0.0], [-1e4, -1e4, -1e4]])
    check_against_torch(lambda t: F.softmax(t, axis=1), lambda t: torch.softmax(t, dim=1), [x], dtype)
    check_against_torch(lambda t: F.cross_entropy(t, np.array([1, 2])),
                        lambda t: torch.nn.functional.cross_entropy(t, torch.tensor([1, 2])), [x], dtype)
