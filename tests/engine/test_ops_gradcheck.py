"""Every differentiable op: analytic backward == float64 central differences.

Inputs are drawn by hypothesis (shapes, broadcasting, memory layouts) and kept
away from the points where an op is not differentiable (0 for abs/relu, ties
for max/maximum, non-positive bases for log/sqrt/pow).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from minisnn import Tensor, gradcheck
from minisnn import functional as F

from .strategies import (broadcastable_pair, distinct_arrays, float_arrays, index_cases, layouts, matmul_shapes,
                         probability_rows, seeds, shapes)

# --------------------------------------------------------------------------- element-wise, binary

BINARY = {
    "add": F.add,
    "sub": F.sub,
    "mul": F.mul,
    "div": F.div,
    "operators": lambda a, b: (a * 2.0 - b) / (1.5 + 0 * b) + a * b - (-a),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data(), pair=broadcastable_pair())
def test_binary_broadcasting(name, data, pair):
    sa, sb = pair
    a = data.draw(float_arrays(sa))
    low, high = (0.5, 2.0) if name == "div" else (-2.0, 2.0)
    b = data.draw(float_arrays(sb, low=low, high=high))
    a = data.draw(layouts(a))
    assert gradcheck(BINARY[name], [a, b])


@given(data=st.data(), pair=broadcastable_pair())
def test_maximum_away_from_ties(data, pair):
    a = data.draw(float_arrays(pair[0]))
    b = data.draw(float_arrays(pair[1]))
    assume(np.min(np.abs(a - b), initial=1.0) > 1e-3)
    assert gradcheck(F.maximum, [a, b])


@given(data=st.data(), pair=broadcastable_pair())
def test_where_routes_gradient(data, pair):
    a = data.draw(float_arrays(pair[0]))
    b = data.draw(float_arrays(pair[1]))
    out_shape = np.broadcast_shapes(a.shape, b.shape)
    cond = np.random.default_rng(data.draw(seeds)).random(out_shape) > 0.5
    assert gradcheck(lambda x, y: F.where(cond, x, y), [a, b])


@given(data=st.data(), pair=broadcastable_pair())
def test_pow_tensor_exponent(data, pair):
    base = data.draw(float_arrays(pair[0], low=0.3, high=2.0))
    exponent = data.draw(float_arrays(pair[1], low=-2.0, high=2.0))
    assert gradcheck(F.pow, [base, exponent])
    assert gradcheck(lambda x, e: x ** e, [base, exponent])


@given(x=float_arrays(low=0.3, high=2.0), p=st.sampled_from([2, 3, -1, 0.5, -1.5, 2.7]))
def test_pow_scalar_exponent(x, p):
    assert gradcheck(lambda t: t ** p, [x])


@given(x=float_arrays(low=-2.0, high=2.0), p=st.sampled_from([1, 2, 3]))
def test_pow_integer_exponent_negative_base(x, p):
    assert gradcheck(lambda t: F.pow(t, p), [x])


@given(e=float_arrays(low=-1.5, high=1.5))
def test_scalar_base_tensor_exponent(e):
    assert gradcheck(lambda t: 2.5 ** t, [e])


# --------------------------------------------------------------------------- element-wise, unary

UNARY = {
    # name: (function, low, high, away_from_zero)
    "neg": (F.neg, -2.0, 2.0, 0.0),
    "exp": (F.exp, -2.0, 2.0, 0.0),
    "log": (F.log, 0.2, 3.0, 0.0),
    "sqrt": (F.sqrt, 0.2, 3.0, 0.0),
    "tanh": (F.tanh, -3.0, 3.0, 0.0),
    "sigmoid": (F.sigmoid, -4.0, 4.0, 0.0),
    "relu": (F.relu, -2.0, 2.0, 1e-3),
    "gelu": (F.gelu, -3.0, 3.0, 0.0),
    "abs": (F.abs, -2.0, 2.0, 1e-3),
    "nan_to_num": (F.nan_to_num, -2.0, 2.0, 0.0),
    "methods": (lambda t: t.exp().tanh() + t.sigmoid() * t.abs().sqrt() + t.relu(), -2.0, 2.0, 1e-3),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary(name, data):
    fn, low, high, away = UNARY[name]
    x = data.draw(float_arrays(low=low, high=high, away_from_zero=away))
    x = data.draw(layouts(x))
    assert gradcheck(fn, [x])


def test_nan_to_num_blocks_gradient_of_non_finite():
    x = Tensor(np.array([1.0, np.nan, np.inf, -np.inf, -2.0]), requires_grad=True)
    y = F.nan_to_num(x, nan=0.0, posinf=10.0, neginf=-10.0)
    np.testing.assert_array_equal(y.data, [1.0, 0.0, 10.0, -10.0, -2.0])
    y.backward(np.arange(1.0, 6.0))
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 0.0, 0.0, 5.0])


def test_cast_gradient_returns_to_input_dtype():
    x = np.random.default_rng(0).standard_normal((3, 2))
    assert gradcheck(lambda t: F.cast(F.cast(t, np.float32), np.float64) * 1.0, [x], atol=1e-2, rtol=1e-2)
    t = Tensor(x.astype(np.float32), requires_grad=True)
    F.cast(t, np.float64).sum().backward()
    assert t.grad.dtype == np.float32


# ------------------------------------------------------------------------------------- matmul

@given(data=st.data(), pair=matmul_shapes())
def test_matmul(data, pair):
    a = data.draw(layouts(data.draw(float_arrays(pair[0]))))
    b = data.draw(layouts(data.draw(float_arrays(pair[1]))))
    assert gradcheck(F.matmul, [a, b])
    assert gradcheck(lambda x, y: x @ y, [a, b])


# ---------------------------------------------------------------------------------- reductions

@st.composite
def axes_for(draw, ndim):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    if ndim == 0:
        return draw(st.sampled_from([None, ()]))
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none":
        return None
    if choice == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


@pytest.mark.parametrize("name", ["sum", "mean", "var", "var_unbiased", "max"])
@given(data=st.data(), shape=shapes(max_dims=3), keepdims=st.booleans())
def test_reductions(name, data, shape, keepdims):
    axis = data.draw(axes_for(len(shape)))
    if name == "max":
        x = data.draw(distinct_arrays(shape))
        fn = lambda t: F.max(t, axis=axis, keepdims=keepdims)  # noqa: E731
    elif name.startswith("var"):
        unbiased = name == "var_unbiased"
        axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
        n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
        assume(n - unbiased > 0)
        x = data.draw(float_arrays(shape))
        fn = lambda t: F.var(t, axis=axis, keepdims=keepdims, unbiased=unbiased)  # noqa: E731
    else:
        x = data.draw(float_arrays(shape))
        fn = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    x = data.draw(layouts(x))
    assert gradcheck(fn, [x])


def test_max_splits_gradient_between_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    F.max(x, axis=1).backward(np.array([1.0, 3.0]))
    np.testing.assert_allclose(x.grad, [[0.0, 0.5, 0.5], [1.0, 1.0, 1.0]])


# ------------------------------------------------------------------------------------- shapes

@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3))
def test_reshape_flatten_permute_transpose(data, shape):
    x = data.draw(layouts(data.draw(float_arrays(shape))))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    assert gradcheck(lambda t: F.reshape(t, (-1,)) * np.arange(t.size), [x])
    assert gradcheck(lambda t: t.reshape(shape[::-1]) * 1.5, [x])
    assert gradcheck(lambda t: F.permute(t, perm) * np.arange(t.size).reshape(t.permute(perm).shape), [x])
    assert gradcheck(lambda t: t.transpose(0, -1).flatten() ** 2, [x])
    assert gradcheck(lambda t: t.T ** 3, [x])


@given(data=st.data(), pair=broadcastable_pair(min_dims=0))
def test_broadcast_to_expand(data, pair):
    target = np.broadcast_shapes(*pair)
    x = data.draw(float_arrays(pair[0]))
    weights = np.arange(1.0, 1.0 + np.prod(target, dtype=np.int64)).reshape(target)
    assert gradcheck(lambda t: F.broadcast_to(t, target) * weights, [x])
    assert gradcheck(lambda t: t.expand(target) * weights, [x])


@given(data=st.data(), case=index_cases())
def test_getitem(data, case):
    shape, index = case
    x = data.draw(float_arrays(shape))
    assert gradcheck(lambda t: t[index] * 1.0, [x])


def test_getitem_repeated_indices_accumulate():
    x = Tensor(np.zeros(4), requires_grad=True)
    x[np.array([0, 2, 2, 2, 3, 0])].backward(np.ones(6))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 3.0, 1.0])


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), n=st.integers(1, 3))
def test_concatenate_and_stack(data, shape, n):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = [data.draw(st.integers(1, 3)) for _ in range(n)]
    parts = []
    for s in sizes:
        part_shape = list(shape)
        part_shape[axis] = s
        parts.append(data.draw(float_arrays(tuple(part_shape))))
    assert gradcheck(lambda *ts: F.concatenate(ts, axis=axis) ** 2, parts)
    same = [data.draw(float_arrays(shape)) for _ in range(n)]
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    assert gradcheck(lambda *ts: F.stack(ts, axis=new_axis) ** 2, same)


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), value=st.sampled_from([0.0, -1.5]))
def test_pad(data, shape, value):
    x = data.draw(float_arrays(shape))
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape)
    assert gradcheck(lambda t: F.pad(t, widths, value=value) ** 2, [x])


# -------------------------------------------------------------------------- softmax and losses

@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3))
def test_softmax_and_log_softmax(data, shape):
    x = data.draw(float_arrays(shape, low=-4.0, high=4.0))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert gradcheck(lambda t: F.softmax(t, axis=axis), [x])
    assert gradcheck(lambda t: F.log_softmax(t, axis=axis), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data(), rows=st.integers(1, 4), classes=st.integers(2, 5),
       smoothing=st.sampled_from([0.0, 0.1, 0.5]), soft=st.booleans())
def test_cross_entropy(reduction, data, rows, classes, smoothing, soft):
    logits = data.draw(float_arrays((rows, classes), low=-3.0, high=3.0))
    rng = np.random.default_rng(data.draw(seeds))
    target = probability_rows(rng, rows, classes) if soft else rng.integers(0, classes, size=rows)
    assert gradcheck(lambda t: F.cross_entropy(t, target, label_smoothing=smoothing, reduction=reduction), [logits])


def test_cross_entropy_soft_targets_not_summing_to_one():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((3, 4))
    target = rng.uniform(0, 2, size=(3, 4))
    assert gradcheck(lambda t: F.cross_entropy(t, target), [logits])


# ------------------------------------------------------------------------------ compositions

@given(data=st.data())
def test_composed_graph_with_shared_subexpressions(data):
    x = data.draw(float_arrays((3, 4)))
    w = data.draw(float_arrays((4, 2)))

    def fn(a, b):
        h = F.tanh(a @ b)
        s = F.softmax(h * h - h, axis=0)
        return (s * h).sum(axis=1) + F.mean(h, axis=1) * F.var(a, axis=1)

    assert gradcheck(fn, [x, w])
