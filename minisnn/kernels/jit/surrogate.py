"""Surrogate gradients of the spike, Numba version (same maths as `reference.surrogate`).

A surrogate family reaches the compiled code as a *family token* (`family_ops(kind)`), whose
Numba type names the family and a hash of its functions' code (`SurrogateType`).  Kernels take
the token where the reference takes the integer `kind`, and call the scalar functions
`primitive(ops, x, a)`, `derivative(ops, x, a)` and `d_alpha(ops, x, a)`: when a kernel is compiled
for a token, these resolve to the family's own functions (`surrogates.lookup(kind)`), compiled
here and inlined into the kernel's loops.  So each kernel is specialised per family, built-in or
defined by a user, and Numba's on-disk cache keeps each specialisation under the family's key:
changed code gives a new key and a fresh compile.  `surrogate_block(which, ops, x, shift, a, out)`
applies one of the functions to a row; it is what the LIF kernels call (the spike's kernels,
`jit.spike`, use the scalar ones).  Missing derivatives are the float64 central differences of
`surrogates.central_dx` / `central_da`.  A family with `same_dtype` computes in the dtype of `x`
(float32 stays float32, as the built-ins do); any other is called on float64 numbers and its
result rounded to the dtype of `x`.

`exp_neg` (e**y for y <= 0, all the surrogates need) is written out: Cody–Waite range
reduction, a short polynomial and an exact power of two built from its bit pattern.
The math library's `exp` is a scalar call that blocks SIMD vectorisation without
Intel's SVML.  It is accurate to ~2 ulp, uses no fastmath, and underflows to 0 below
the smallest normal number.  Division by zero follows IEEE rules (error_model="numpy"):
Python's ZeroDivisionError check would also block vectorisation.
"""
from __future__ import annotations

import math
import re
import sys
from types import FunctionType, ModuleType
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import (NativeValue, intrinsic, models, overload, register_jitable, register_model,
                             unbox)

from ..surrogates import UNIT_HELPERS, central_da, central_dx, exp_neg, lookup, typed

__all__ = ["surrogate_primitive", "surrogate_derivative", "surrogate_d_alpha", "spike_backward"]


# ----------------------------------------------------------------------------- exp
@intrinsic
def _pow2(typingctx, n):
    """2**n for a whole-number float n in the normal range, built from its bit pattern: the
    exponent field n + bias, shifted over the mantissa (float32: bias 127, 23 bits; float64: 1023, 52)."""
    width, mantissa_bits, float_ir = (32, 23, ir.FloatType()) if n.bitwidth == 32 else (64, 52, ir.DoubleType())
    int_ir = ir.IntType(width)
    bias = (1 << (width - mantissa_bits - 2)) - 1

    def codegen(context, builder, signature, args):
        exponent = builder.add(builder.fptosi(args[0], int_ir), ir.Constant(int_ir, bias))
        return builder.bitcast(builder.shl(exponent, ir.Constant(int_ir, mantissa_bits)), float_ir)
    return n(n), codegen


class _ExpConstants(NamedTuple):
    """What `exp_neg` needs for one float type: the valid range [lo, 0], log2(e), ln 2 split in a
    short high part (exact n·ln2_hi) and a low part, and the polynomial for e^r, constant term first."""

    lo: float
    log2e: float
    ln2_hi: float
    ln2_lo: float
    coefficients: tuple


_F32 = np.float32
# float32: e^r on |r| <= ln2/2 by a degree-5 polynomial fitted at 200 Chebyshev nodes (near-minimax,
# <= 2.1 ulp in float32); the Taylor series would need degree 7 for the same accuracy.
_EXP32 = _ExpConstants(_F32(-87.33654), _F32(1.4426950408889634), _F32(0.693359375), _F32(-2.12194440e-4),
                       tuple(_F32(c) for c in (1.0000000754953495, 1.0000000377274467, 0.49998869108810323,
                                               0.16666415477243318, 0.04191752968806377, 0.008375128889964521)))
# float64: the Taylor series to degree 13
_EXP64 = _ExpConstants(-708.3964185322641, 1.4426950408889634, 6.93147180369123816490e-01,
                       1.90821492927058770002e-10, tuple(1.0 / math.factorial(k) for k in range(14)))


@overload(typed)
def _typed_overload(like, value):
    float_type = np.float32 if isinstance(like, types.Float) and like.bitwidth == 32 else np.float64

    def typed_impl(like, value):
        return float_type(value)
    return typed_impl


@njit(cache=True, error_model="numpy", inline="always")
def _exp_neg(y, k):
    """e**y for y <= 0 with the constants k of y's float type (larger y is clamped to 0)."""
    yc = min(max(y, k.lo), typed(y, 0.0))
    n = np.floor(yc * k.log2e + typed(y, 0.5))  # e^y = 2^n · e^r,  |r| <= ln2/2 (Cody–Waite split of ln 2)
    r = yc - n * k.ln2_hi
    r = r - n * k.ln2_lo
    c = k.coefficients
    p = c[len(c) - 1]
    for i in range(len(c) - 2, -1, -1):  # Horner
        p = p * r + c[i]
    return p * _pow2(n) if y >= k.lo else typed(y, 0.0)


@overload(exp_neg)
def _exp_neg_overload(y):
    k = _EXP32 if isinstance(y, types.Float) and y.bitwidth == 32 else _EXP64

    def exp_neg_impl(y):
        return _exp_neg(y, k)
    return exp_neg_impl


for _helper in (*UNIT_HELPERS, central_dx, central_da):  # plain Python in `surrogates`, callable from here
    register_jitable(inline="always")(_helper)


# ------------------------------------------------------------------ family tokens
class SurrogateType(types.Type):
    """The Numba type of a family token: one per family key, so kernels specialise per family."""

    def __init__(self, key: str):
        self.family_key = key
        super().__init__(name=f"SurrogateFamily({key})")


register_model(SurrogateType)(models.OpaqueModel)


@unbox(SurrogateType)
def _unbox_family(typ, obj, c):
    """A token carries nothing at run time: its type says everything."""
    return NativeValue(c.context.get_constant_null(types.voidptr))


class FamilyOps:
    """What a kernel receives for a surrogate family: a token typed `SurrogateType(key)`."""

    __slots__ = ("_numba_type_",)

    def __init__(self, key: str):
        self._numba_type_ = SurrogateType(key)


_COMPILED: dict[str, tuple] = {}   # family key -> (same_dtype, primitive, derivative, d_alpha) compiled
_TOKENS: dict[int, FamilyOps] = {}  # code -> token


def _compile(scalar, module_name: str):
    """`scalar` compiled for inlining, from a copy whose globals live in the module `module_name` (`_importable`)."""
    return njit(error_model="numpy", inline="always")(_importable(scalar, module_name))


def _importable(fn, module_name: str):
    """A copy of `fn` whose globals belong to a module registered in `sys.modules` as `module_name`.

    A cached kernel that inlines a family's function names the function's module, and loading the
    kernel in a later process imports that module.  The family's functions may come from a module
    the later process lacks: code that `exec` ran in a namespace of its own (a doctest, a test), for
    which Numba records a placeholder module, or a `__main__` other than the one that compiled.  So
    every family is compiled from a copy in a module named after its key and the function's role,
    which any process registers again when it defines the family, before a kernel for it loads.  The
    copy reads the same global values (Numba freezes them when it compiles; `code_key` hashes them)."""
    module = sys.modules[module_name] = ModuleType(module_name)
    module.__dict__.update(fn.__globals__)
    module.__name__ = module_name
    copy = FunctionType(fn.__code__, module.__dict__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__
    return copy


def _derived(derive, primitive):
    """∂p/∂x or ∂p/∂α of a compiled primitive by `derive` (central_dx / central_da), in float64."""
    def derived(x, a):
        return derive(primitive, np.float64(x), np.float64(a))
    return njit(error_model="numpy", inline="always")(derived)


def family_ops(kind: int) -> FamilyOps:
    """The token of family `kind` (ValueError if unknown); compiles nothing until a kernel needs it."""
    token = _TOKENS.get(kind)
    if token is None:
        family = lookup(kind)
        if family.key not in _COMPILED:
            module = "minisnn_surrogate_" + re.sub(r"\W", "_", family.key)
            primitive = _compile(family.primitive, module + "_primitive")
            derivative = (_derived(central_dx, primitive) if family.derivative is None
                          else _compile(family.derivative, module + "_derivative"))
            d_alpha_fn = (_derived(central_da, primitive) if family.d_alpha is None
                          else _compile(family.d_alpha, module + "_d_alpha"))
            _COMPILED[family.key] = (family.same_dtype, primitive, derivative, d_alpha_fn)
        token = _TOKENS[kind] = FamilyOps(family.key)
    return token


def _family_function(ops, position: int):
    """An implementation of f(ops, x, a) for function `position` (1 primitive, 2 ∂p/∂x, 3 ∂p/∂α)."""
    if not isinstance(ops, SurrogateType):
        return None
    same_dtype, fn = _COMPILED[ops.family_key][0], _COMPILED[ops.family_key][position]
    if same_dtype:
        def in_dtype(ops, x, a):
            return typed(x, fn(x, a))
        return in_dtype

    def in_float64(ops, x, a):
        return typed(x, fn(np.float64(x), np.float64(a)))
    return in_float64


def primitive(ops, x, a):  # pragma: no cover - replaced by the overload inside jitted code
    """p(x; a) of the family `ops`, the smooth stand-in for H(x)."""
    raise TypeError("primitive(ops, x, a) runs inside Numba kernels only")


def derivative(ops, x, a):  # pragma: no cover - replaced by the overload inside jitted code
    """∂p/∂x at x for slope a."""
    raise TypeError("derivative(ops, x, a) runs inside Numba kernels only")


def d_alpha(ops, x, a):  # pragma: no cover - replaced by the overload inside jitted code
    """∂p/∂α at x for slope a."""
    raise TypeError("d_alpha(ops, x, a) runs inside Numba kernels only")


overload(primitive, inline="always")(lambda ops, x, a: _family_function(ops, 1))
overload(derivative, inline="always")(lambda ops, x, a: _family_function(ops, 2))
overload(d_alpha, inline="always")(lambda ops, x, a: _family_function(ops, 3))


# ------------------------------------------------------------ block helpers
PRIMITIVE, DERIVATIVE, D_ALPHA = 0, 1, 2


@njit(cache=True, error_model="numpy")
def surrogate_block(which, ops, x, shift, a, out):
    """out[j] = f(x[j] − shift; a[j]) with f = primitive / derivative / d_alpha (which = 0 / 1 / 2)
    of the family `ops`.  The kernel is compiled per family, so every loop calls one known function."""
    for j in range(out.size):
        u = x[j] - shift
        if which == PRIMITIVE:
            out[j] = primitive(ops, u, a[j])
        elif which == DERIVATIVE:
            out[j] = derivative(ops, u, a[j])
        else:
            out[j] = d_alpha(ops, u, a[j])


# ------------------------------------------------------------------- array kernels
_CHUNK = 4096
SERIAL_BELOW = 1 << 15  # elements; smaller inputs run on the calling thread


@njit(cache=True, error_model="numpy", inline="always")
def _chunk_with_slopes(b, x, alpha):
    """(i0, x_b, a_b): where chunk b starts, its part of x, and a fresh buffer with its slopes."""
    i0 = b * _CHUNK
    m = min(x.size, i0 + _CHUNK) - i0
    a_b = np.empty(m, dtype=x.dtype)
    if alpha.size == 1:
        a_b[:] = alpha[0]
    else:
        a_b[:] = alpha[i0:i0 + m]
    return i0, x[i0:i0 + m], a_b


@njit(cache=True, error_model="numpy", inline="always")
def _map_chunk(b, x, alpha, ops, which, out):
    """Chunk b of out = primitive / derivative / d_alpha (which = 0 / 1 / 2).

    Every branch passes `which` as a constant, so `surrogate_block` is compiled for each function
    with the choice folded away: with a run-time `which` the float64 loops do not vectorise."""
    i0, x_b, a_b = _chunk_with_slopes(b, x, alpha)
    zero = x.dtype.type(0.0)
    out_b = out[i0:i0 + x_b.size]
    if which == PRIMITIVE:
        surrogate_block(PRIMITIVE, ops, x_b, zero, a_b, out_b)
    elif which == DERIVATIVE:
        surrogate_block(DERIVATIVE, ops, x_b, zero, a_b, out_b)
    else:
        surrogate_block(D_ALPHA, ops, x_b, zero, a_b, out_b)


@njit(cache=True, error_model="numpy", inline="always")
def _times_g(g, d_b, i0, out):
    """out[i0 + j] = g[i0 + j]·d_b[j] over one chunk."""
    for j in range(d_b.size):
        out[i0 + j] = g[i0 + j] * d_b[j]


@njit(cache=True, error_model="numpy", inline="always")
def _spike_backward_chunk(b, g, x, alpha, ops, need_alpha, gx, ga):
    """Chunk b of gx = g·∂p/∂x and, when need_alpha, of ga = g·∂p/∂α."""
    i0, x_b, a_b = _chunk_with_slopes(b, x, alpha)
    zero = x.dtype.type(0.0)
    d_b = np.empty(x_b.size, dtype=x.dtype)
    surrogate_block(DERIVATIVE, ops, x_b, zero, a_b, d_b)
    _times_g(g, d_b, i0, gx)
    if need_alpha:
        surrogate_block(D_ALPHA, ops, x_b, zero, a_b, d_b)
        _times_g(g, d_b, i0, ga)


# Each kernel has a parallel driver and a serial one for small inputs, where waking the
# thread pool would cost more than the work itself.
@njit(cache=True, error_model="numpy", parallel=True)
def _map_parallel(x, alpha, ops, which, out):
    for b in prange((x.size + _CHUNK - 1) // _CHUNK):
        _map_chunk(b, x, alpha, ops, which, out)


@njit(cache=True, error_model="numpy")
def _map_serial(x, alpha, ops, which, out):
    for b in range((x.size + _CHUNK - 1) // _CHUNK):
        _map_chunk(b, x, alpha, ops, which, out)


@njit(cache=True, error_model="numpy", parallel=True)
def _spike_backward_parallel(g, x, alpha, ops, need_alpha, gx, ga):
    for b in prange((x.size + _CHUNK - 1) // _CHUNK):
        _spike_backward_chunk(b, g, x, alpha, ops, need_alpha, gx, ga)


@njit(cache=True, error_model="numpy")
def _spike_backward_serial(g, x, alpha, ops, need_alpha, gx, ga):
    for b in range((x.size + _CHUNK - 1) // _CHUNK):
        _spike_backward_chunk(b, g, x, alpha, ops, need_alpha, gx, ga)


def _flat(x: np.ndarray, alpha: np.ndarray):
    x = np.ascontiguousarray(x)
    alpha = np.ascontiguousarray(alpha, dtype=x.dtype).reshape(-1)
    return x, alpha


def _apply(x, alpha, kind, which):
    x, alpha = _flat(x, alpha)
    out = np.empty_like(x)
    run = _map_serial if x.size < SERIAL_BELOW else _map_parallel
    run(x.reshape(-1), alpha, family_ops(kind), which, out.reshape(-1))
    return out


def surrogate_primitive(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """p(x; α); same contract as the reference."""
    return _apply(x, alpha, kind, PRIMITIVE)


def surrogate_derivative(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """∂p/∂x; same contract as the reference."""
    return _apply(x, alpha, kind, DERIVATIVE)


def surrogate_d_alpha(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """∂p/∂α; same contract as the reference."""
    return _apply(x, alpha, kind, D_ALPHA)


def spike_backward(g: np.ndarray, x: np.ndarray, alpha: np.ndarray, kind: int, need_alpha: bool):
    """(g·∂p/∂x, g·∂p/∂α or an empty array); same contract as the reference."""
    x, alpha = _flat(x, alpha)
    g = np.ascontiguousarray(g, dtype=x.dtype)
    gx = np.empty_like(x)
    ga = np.empty_like(x) if need_alpha else np.empty((0,), x.dtype)
    run = _spike_backward_serial if x.size < SERIAL_BELOW else _spike_backward_parallel
    run(g.reshape(-1), x.reshape(-1), alpha, family_ops(kind), bool(need_alpha),
                    gx.reshape(-1), ga.reshape(-1) if need_alpha else ga)
    return gx, ga

