"""`gradcheck` itself: accepts correct backwards, rejects wrong ones with a precise message."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Function, GradcheckError, Tensor, gradcheck
from minisnn.autograd import unbroadcast

from .strategies import broadcastable_pair, float_arrays, layouts


class Cube(Function):
    """y = x³; dy/dx = 3x² (correct)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


class CubeWrongAtOneElement(Function):
    """Correct except that element [1, 2] of the gradient is off by 0.5."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        grad = 3 * x * x * g
        grad[1, 2] += 0.5
        return grad


class MulWithDoubledSecondGrad(Function):
    """y = a·b whose gradient for b is doubled (deliberately wrong)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return unbroadcast(g * b, a.shape), unbroadcast(2 * g * a, b.shape)


class ScaledMul(Function):
    """y = a·b; correct backward for both inputs, with broadcasting."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape)


@given(data=st.data())
def test_passes_on_correct_function(data):
    x = data.draw(layouts(data.draw(float_arrays())))
    assert gradcheck(Cube.apply, [x])


@given(data=st.data(), pair=broadcastable_pair())
def test_passes_on_correct_two_input_function(data, pair):
    a = data.draw(float_arrays(pair[0]))
    b = data.draw(float_arrays(pair[1]))
    assert gradcheck(ScaledMul.apply, [a, b])


def test_fails_naming_the_worst_element():
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(GradcheckError) as info:
        gradcheck(CubeWrongAtOneElement.apply, [x])
    msg = str(info.value)
    assert "input 0" in msg and "(3, 4)" in msg and "index (1, 2)" in msg
    assert "analytic" in msg and "numeric" in msg


def test_fails_on_second_input_and_names_it():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3)), rng.uniform(1.0, 2.0, size=(3,))
    with pytest.raises(GradcheckError, match="input 1 \\(shape \\(3,\\)\\)"):
        gradcheck(MulWithDoubledSecondGrad.apply, [a, b])


def test_raise_exception_false_returns_false():
    x = np.random.default_rng(2).standard_normal((3, 4))
    assert gradcheck(CubeWrongAtOneElement.apply, [x], raise_exception=False) is False
    assert gradcheck(Cube.apply, [x], raise_exception=False) is True


def test_does_not_modify_the_callers_arrays():
    x = np.random.default_rng(3).standard_normal((2, 2))
    before = x.copy()
    gradcheck(Cube.apply, [x])
    np.testing.assert_array_equal(x, before)


def test_runs_in_float64_even_for_float32_inputs():
    x = np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return Cube.apply(t)

    assert gradcheck(fn, [x])
    assert set(seen) == {np.dtype(np.float64)}


def test_tensor_inputs_keep_their_requires_grad_and_others_pass_through():
    rng = np.random.default_rng(5)
    checked = rng.standard_normal(3)
    constant = Tensor(rng.standard_normal(3))  # requires_grad=False: not checked
    assert gradcheck(lambda a, b, k: ScaledMul.apply(a, b) * k, [checked, constant, 2.0])


def test_rejects_functions_without_float64_tensor_output():
    x = np.ones(2)
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda t: t.data * 2, [x])
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t.astype(np.float32), [x])
    with pytest.raises(ValueError, match="no input requires a gradient"):
        gradcheck(lambda t: t, [Tensor(np.ones(2))])


def test_tolerance_is_respected():
    # a 1e-6 relative error passes at rtol=1e-4 but fails at rtol=1e-9, atol=0
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g * (1 + 1e-6)

    x = np.array([1.0, 2.0, 3.0])
    assert gradcheck(SlightlyOff.apply, [x])
    with pytest.raises(GradcheckError):
        gradcheck(SlightlyOff.apply, [x], atol=0.0, rtol=1e-9)
