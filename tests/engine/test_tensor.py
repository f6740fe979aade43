"""Tensor basics: construction and dtype policy, backward bookkeeping, no_grad, detach, retain_grad."""
from __future__ import annotations

import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisnn
from minisnn import Tensor, no_grad, enable_grad, is_grad_enabled
from minisnn import functional as F

from .strategies import FLOAT_DTYPES, float_arrays, shapes


# ------------------------------------------------------------------------------ construction

def test_python_data_becomes_float32():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor(3).dtype == np.float32
    assert Tensor([[1, 2], [3, 4]]).dtype == np.float32
    assert Tensor([True, False]).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8, np.bool_])
def test_numpy_arrays_keep_their_dtype(dtype):
    arr = np.zeros((2, 3), dtype=dtype)
    t = Tensor(arr)
    assert t.dtype == dtype and t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2


def test_explicit_dtype_converts():
    t = Tensor([1, 2, 3], dtype=np.float64)
    assert t.dtype == np.float64
    assert Tensor(np.arange(3), dtype=np.float32).dtype == np.float32


def test_numpy_scalar_keeps_dtype():
    assert Tensor(np.float64(2.0)).dtype == np.float64


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_python_scalars_take_the_tensor_dtype(dtype):
    x = Tensor(np.ones(3, dtype=dtype), requires_grad=True)
    for y in (x + 1, 1 + x, x - 2.5, 2.5 - x, x * 3, 3 * x, x / 2, 2 / x, x ** 2, 2 ** x, -x,
              F.maximum(x, 0.5), F.where(np.array([True, False, True]), x, 0.0)):
        assert y.dtype == dtype


def test_float32_and_float64_mix_upcasts_like_numpy():
    a = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones(2, dtype=np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


@given(x=float_arrays(shape=(3, 4)), dtype=st.sampled_from(FLOAT_DTYPES))
def test_float_dtype_is_preserved_end_to_end(x, dtype):
    t = Tensor(x.astype(dtype), requires_grad=True)
    y = F.softmax(F.tanh(t @ t.T) * 0.5 + 1.0, axis=-1).mean(axis=0).sum()
    assert y.dtype == dtype
    y.backward()
    assert t.grad.dtype == dtype and t.grad.shape == t.shape


def test_numpy_array_operand_defers_to_tensor():
    x = Tensor(np.ones(2), requires_grad=True)
    y = np.array([2.0, 3.0]) * x + np.array([1.0, 1.0])
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])


def test_comparisons_give_plain_boolean_arrays():
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    assert isinstance(x > 1.5, np.ndarray)
    np.testing.assert_array_equal(x >= 2.0, [False, True, True])
    np.testing.assert_array_equal(x < Tensor(np.array([2.0, 2.0, 2.0])), [True, False, False])


@pytest.mark.parametrize("name", sorted(F.TENSOR_METHODS))
def test_operators_are_the_functional_table(name):
    """Every differentiable operator/method of Tensor is the entry of `F.TENSOR_METHODS` (bound once)."""
    assert Tensor.__dict__[name] is F.TENSOR_METHODS[name]


def test_reflected_operators_keep_the_operand_order():
    x = Tensor(np.array([2.0, 4.0]))
    for got, want in [(10 - x, [8.0, 6.0]), (8 / x, [4.0, 2.0]), (2 ** x, [4.0, 16.0]), (1 + x, [3.0, 5.0]),
                      (3 * x, [6.0, 12.0]), (np.array([[1.0, 1.0]]) @ x, [6.0]), (x - 1, [1.0, 3.0])]:
        assert isinstance(got, Tensor)
        np.testing.assert_array_equal(got.data, want)
    m = Tensor(np.arange(6.0).reshape(2, 3))
    assert m.reshape(3, 2).shape == m.reshape((3, 2)).shape == (3, 2)
    assert m.permute(1, 0).shape == m.T.shape == (3, 2)
    assert m[:, None].expand(2, 4, 3).shape == (2, 4, 3)


def test_item_numpy_repr():
    t = Tensor(np.array([[2.5]]), requires_grad=True)
    assert t.item() == 2.5
    assert t.numpy() is t.data
    assert "requires_grad=True" in repr(t) and "float64" in repr(t)


# ----------------------------------------------------------------------------------- backward

def test_scalar_backward_defaults_to_one():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_backward_on_non_scalar_needs_gradient():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="non-scalar"):
        (x * 2).backward()
    y = x * 2
    y.backward(np.full((2, 2), 0.5))
    np.testing.assert_array_equal(x.grad, np.ones((2, 2)))


def test_one_element_non_scalar_backward():
    x = Tensor(np.array([[3.0]]), requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [[6.0]])


def test_backward_on_leaf_itself():
    x = Tensor(np.array(2.0), requires_grad=True)
    x.backward()
    assert x.grad == 1.0


def test_gradients_accumulate_until_zeroed():
    x = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_leaf_grad_is_not_aliased_to_upstream_gradient():
    x = Tensor(np.zeros(3), requires_grad=True)
    g = np.ones(3)
    y = x + 0.0
    y.backward(g)
    x.grad[0] = 42.0
    np.testing.assert_array_equal(g, np.ones(3))


def test_graph_can_be_backpropagated_twice_when_retained():
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = (x ** 3).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [24.0])


def test_backward_releases_what_the_nodes_saved():
    """After a backward the graph holds no saved array (a loss kept past its step keeps nothing alive);
    a second backward says how to keep them."""
    x = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    h = x * x                      # Mul saves both operands: x.data and the same array again
    cube = h * x
    saved = weakref.ref(h.data)
    y = cube.sum()
    del h, cube
    assert saved() is not None     # held by the nodes' ctx
    y.backward()
    np.testing.assert_allclose(x.grad, 3 * x.data ** 2)
    assert saved() is None
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        y.backward()


def test_diamond_graph():
    # y = a*b + a*c with b = 2a, c = a^2: dy/da = 4a + 3a^2
    a = Tensor(np.array([1.0, 2.0, -0.5]), requires_grad=True)
    b = a * 2.0
    c = a * a
    y = (a * b + a * c).sum()
    y.backward()
    np.testing.assert_allclose(a.grad, 4 * a.data + 3 * a.data ** 2)


def test_shared_subexpression_used_many_times():
    x = Tensor(np.array([0.3, -0.7]), requires_grad=True)
    h = F.tanh(x)
    y = h
    for _ in range(10):
        y = y + h * h
    y.sum().backward()
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad, (1 + 20 * t) * (1 - t ** 2))


def test_long_chain_does_not_recurse():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0])


@given(depth=st.integers(1, 6), width=st.integers(1, 4), seed=st.integers(0, 1000))
def test_random_dag_gradient_matches_forward_mode(depth, width, seed):
    """A random DAG of adds and multiplies: reverse mode equals a forward-mode derivative."""
    rng = np.random.default_rng(seed)
    x0 = 0.7
    x = Tensor(np.array(x0), requires_grad=True)
    nodes = [(x, x0, 1.0)]  # (tensor, value, d value / d x)
    for _ in range(depth):
        for _ in range(width):
            (a, va, da), (b, vb, db) = (nodes[i] for i in rng.integers(0, len(nodes), size=2))
            if rng.random() < 0.5:
                nodes.append((a + b, va + vb, da + db))
            else:
                nodes.append((a * b, va * vb, da * vb + va * db))
    out, value, deriv = nodes[-1]
    np.testing.assert_allclose(out.item(), value)
    if out is x:
        return
    out.backward()
    np.testing.assert_allclose(x.grad, deriv, rtol=1e-12)


def test_inputs_without_requires_grad_get_no_gradient():
    x = Tensor(np.ones(2), requires_grad=True)
    c = Tensor(np.ones(2))
    (x * c).sum().backward()
    assert c.grad is None and not c.requires_grad


def test_output_requires_grad_only_when_an_input_does():
    a = Tensor(np.ones(2))
    assert not (a * 2).requires_grad and (a * 2).is_leaf
    b = Tensor(np.ones(2), requires_grad=True)
    assert (a * b).requires_grad and not (a * b).is_leaf


# ------------------------------------------------------------------------ no_grad / detach / retain

def test_no_grad_records_nothing_and_restores():
    x = Tensor(np.ones(2), requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
        with enable_grad():
            z = x * 2
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad


def test_no_grad_restores_after_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()


def test_detach_cuts_the_graph_but_shares_data():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * d).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, d.data)  # d treated as a constant
    e = x.detach()
    assert np.shares_memory(e.data, x.data)


def test_retain_grad_on_intermediate():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    other = x * 5
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data)
    np.testing.assert_array_equal(x.grad, 18 * x.data + 5)
    assert other.grad is None


class _Double(minisnn.Function):
    """y = 2a; dy/da = 2 (saves nothing)."""

    @staticmethod
    def forward(ctx, a):
        return 2 * a

    @staticmethod
    def backward(ctx, g):
        return 2 * g


def test_graph_keeps_only_what_functions_saved():
    """An intermediate no Function saved is freed once the caller drops it; the gradient still flows
    through its node, and one read by two operations still sums both paths."""
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    h = _Double.apply(x)
    h_data = weakref.ref(h.data)
    y = _Double.apply(h) + _Double.apply(h)   # h read twice: one edge, two paths
    del h
    assert h_data() is None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [8.0, 8.0])


def test_retain_grad_on_an_intermediate_the_graph_no_longer_holds():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = _Double.apply(x).retain_grad()
    y = _Double.apply(h).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(h.grad, [2.0, 2.0])
    h_ref = weakref.ref(h)
    del h
    assert h_ref() is None
    y.backward()                                   # the edge outlives its Tensor: nothing to fill, no error
    np.testing.assert_array_equal(x.grad, [8.0, 8.0])


def test_requires_grad_flag():
    t = Tensor(np.ones(2)).requires_grad_()
    assert t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad


@given(shape=shapes(min_dims=1), dtype=st.sampled_from(FLOAT_DTYPES))
def test_astype_roundtrip_gradient(shape, dtype):
    x = Tensor(np.ones(shape, dtype=dtype), requires_grad=True)
    other = np.float64 if dtype == np.float32 else np.float32
    y = x.astype(other)
    assert y.dtype == other
    (y * 2).sum().backward()
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad, np.full(shape, 2.0))


def test_package_exports():
    assert minisnn.Tensor is Tensor
    assert minisnn.F is F
    assert callable(minisnn.gradcheck)
