"""The surrogate table: every surrogate family the kernels know, by integer code, as scalar functions.

A family is a smooth step p(x; α) given as three scalar functions of a number x and a slope α:

    primitive(x, a)    p(x; α)
    derivative(x, a)   ∂p/∂x   (None: derived from the primitive by `central_dx`)
    d_alpha(x, a)      ∂p/∂α   (None: derived by `central_da`)

`minisnn.spiking.surrogate.define` checks a family and enters it here (`register`); the five
built-in families are entered by that same call, with the scalar functions below.  The kernels
look a family up by the code they are given (`lookup`):

* the Numba kernels (`jit.surrogate`) compile the scalar functions and inline them into their
  loops, so a family defined by a user runs inside the same fused kernels as the built-ins;
* the NumPy reference (`reference.surrogate`) calls the family's array versions (`on_arrays`)
  when it has them (the built-ins do) and otherwise the scalar functions element by element.

No Numba here: the reference backend imports this module.  `exp_neg`, `typed` and the
`*_unit_dp` helpers are plain Python functions that `jit.surrogate` also makes callable from
compiled code (`exp_neg` and `typed` with their own vectorisable implementations).

Codes: a built-in family has the code that `reference.surrogate.KIND_NAMES` gives its name
(0–4); any other family gets the next code from `FIRST_CUSTOM_CODE` up.  The codes live in
one process; what is saved is the family's name (`Surrogate.spec`).
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import math
import types
import uuid
from typing import Callable, NamedTuple

import numpy as np

FIRST_CUSTOM_CODE = 64
DERIVED_STEP = 6e-6  # relative step of the derived derivatives: about the cube root of float64's epsilon


class SurrogateFunctions(NamedTuple):
    """One registered family.

    name         the name it is saved and looked up by
    primitive    p(x, a); derivative, d_alpha: ∂p/∂x and ∂p/∂α, or None (derived in float64)
    same_dtype   the Numba kernels call the functions in the array's own float type (float32 stays
                 float32; the built-ins do this); False: on float64 numbers, result rounded once
    on_arrays    (primitive, derivative, d_alpha) on NumPy arrays for the reference backend, or None
    key          name and a hash of the functions' code: what Numba's cache tells families apart by
    """

    name: str
    primitive: Callable
    derivative: Callable | None
    d_alpha: Callable | None
    same_dtype: bool
    on_arrays: tuple | None
    key: str


_TABLE: dict[int, SurrogateFunctions] = {}
_issued = [FIRST_CUSTOM_CODE]  # the next custom code; a code is never given twice in a process


def register(functions: SurrogateFunctions, builtin_codes: dict[int, str]) -> int:
    """Enter a family; returns its code.  A name listed in builtin_codes (code -> name) gets that
    code; another name the next unused code from FIRST_CUSTOM_CODE up."""
    by_name = {name: code for code, name in builtin_codes.items()}
    code = by_name.get(functions.name)
    if code is None:
        code = _issued[0]
        _issued[0] += 1
    _TABLE[code] = functions
    return code


def unregister(code: int) -> None:
    """Forget a family (used when its definition fails its checks after it was entered)."""
    _TABLE.pop(code, None)


def _ensure_builtins() -> None:
    # import cycle: the built-ins are defined by minisnn.spiking.surrogate through its public `define`,
    # which imports the kernels; a kernel asked for a code before that module ran loads it here
    if not _TABLE:
        importlib.import_module("minisnn.spiking.surrogate")


def lookup(code: int) -> SurrogateFunctions:
    """The family registered under `code`; ValueError when there is none."""
    _ensure_builtins()
    try:
        return _TABLE[code]
    except (KeyError, TypeError):
        raise ValueError(f"unknown surrogate kind {code!r}; expected one of {sorted(_TABLE)} "
                         "(define a family with minisnn.spiking.surrogate.define)") from None


def code_key(name: str, functions) -> str:
    """`name` and a hash of what the kernels compile for `functions` (None allowed): equal in every
    process for the same code and the same values read, so Numba's on-disk cache finds the kernels
    compiled for it last time, and different when either changed.

    Numba freezes a function's globals as constants, so the hash covers, besides the code, the
    values the functions read from their globals and closures (`_fingerprint`): numbers, strings,
    arrays, and functions or compiled functions they call, recursively.  Attributes read through a
    module (`math.pi`, `mymodule.K`) are taken by the module's name, as Numba's own cache does.  A
    value it cannot fingerprint, or a compiled helper whose module cannot be imported (which a
    cached kernel could not load again), makes the key unique to this process: correct, but
    compiled afresh in every process."""
    digest = hashlib.sha256()
    for fn in functions:
        digest.update(repr(_fingerprint(fn, set()) if fn is not None else None).encode())
    return f"{name}-{digest.hexdigest()[:16]}"


_PROCESS_TOKEN = uuid.uuid4().hex  # keys that must not match another process's
_PLAIN = (type(None), bool, int, float, complex, str, bytes)


def _fingerprint(value, seen: set):
    """A repr-able summary of `value` that is equal across processes exactly when the compiled code
    reading it would be; `seen` guards against functions that call each other."""
    if isinstance(value, _PLAIN):
        return type(value).__name__, value
    if isinstance(value, tuple):
        return tuple(_fingerprint(v, seen) for v in value)
    if isinstance(value, types.ModuleType):
        return "module", value.__name__
    if isinstance(value, np.ndarray):
        return "array", value.dtype.str, value.shape, hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
    if isinstance(value, np.generic):
        return "scalar", value.dtype.str, value.item()
    compiled = getattr(value, "py_func", None)         # a Numba dispatcher: the function it compiles
    if isinstance(compiled, types.FunctionType):
        if inspect.getmodule(compiled) is None:
            return "process", _PROCESS_TOKEN, id(value)
        return "compiled", _fingerprint(compiled, seen)
    if isinstance(value, types.FunctionType):
        if id(value) in seen:
            return "recursive", value.__qualname__
        seen.add(id(value))
        code = value.__code__
        names = sorted(_global_names(code))
        scope = value.__globals__
        cells = tuple(c.cell_contents for c in value.__closure__ or ())
        return ("function", _code_parts(code),
                tuple((n, _fingerprint(scope[n], seen)) for n in names if n in scope),
                tuple(_fingerprint(c, seen) for c in cells),
                _fingerprint(value.__defaults__, seen))
    if isinstance(value, (types.BuiltinFunctionType, type)):   # math.erf, np.float64, ...
        return "named", getattr(value, "__module__", None), value.__qualname__
    if isinstance(value, np.ufunc):
        return "ufunc", value.__name__
    return "process", _PROCESS_TOKEN, id(value)


def _global_names(code) -> set:
    """The names `code` and the code objects nested in it may read as globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            names |= _global_names(const)
    return names


def _code_parts(code):
    consts = tuple(_code_parts(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)
    return code.co_code, consts, code.co_names


# ------------------------------------------------------------------ scalar helpers
def typed(like, value):
    """`value` as a number of the float type of `like` (keeps float32 maths in float32 in the Numba
    kernels; in plain Python it returns value, which NumPy scalars treat as a weak Python float)."""
    return value


def exp_neg(y):
    """e**y for y <= 0 (larger y is clamped to 0); the Numba kernels use a vectorisable version."""
    return math.exp(min(y, 0.0))


def central_dx(primitive, x, a):
    """∂p/∂x by a central difference in float64 with step h = DERIVED_STEP·max(|x|, 1/α).
    Error about h²|p'''|/6 + 1e-16·|p|/h: near 1e-10 of the derivative's peak for a smooth P(αx),
    more within h of a kink."""
    h = DERIVED_STEP * max(abs(x), 1.0 / a)
    up, down = x + h, x - h
    return (primitive(up, a) - primitive(down, a)) / (up - down)


def central_da(primitive, x, a):
    """∂p/∂α by a central difference in float64 with step DERIVED_STEP·α (error as central_dx)."""
    h = DERIVED_STEP * a
    up, down = a + h, a - h
    return (primitive(x, up) - primitive(x, down)) / (up - down)


# ------------------------------------------------------- the five built-in families
# Four are scaled copies p(x; α) = P(αx) of a unit step P: ∂p/∂x = α·P'(αx), ∂p/∂α = x·P'(αx).
# The formulas and their sources: reference/surrogate.py.
def sigmoid_unit_dp(y):
    """σ'(y) = e/(1 + e)² with e = exp(−|y|), which never overflows."""
    one = typed(y, 1.0)
    e = exp_neg(-abs(y))
    return e / ((one + e) * (one + e))


def atan_unit_dp(y):
    """P'(y) = 1/(2(1 + (π/2·y)²))."""
    z = typed(y, math.pi / 2) * y
    return typed(y, 0.5) / (typed(y, 1.0) + z * z)


def triangle_unit_dp(y):
    """P'(y) = max(0, 1 − |y|)."""
    return max(typed(y, 0.0), typed(y, 1.0) - abs(y))


def rect_unit_dp(y):
    """P'(y) = 1 on |y| < 1/2, else 0."""
    return typed(y, 1.0) if abs(y) < typed(y, 0.5) else typed(y, 0.0)


UNIT_HELPERS = (sigmoid_unit_dp, atan_unit_dp, triangle_unit_dp, rect_unit_dp)


def sigmoid_primitive(x, a):
    one = typed(x, 1.0)
    y = a * x
    e = exp_neg(-abs(y))
    return one / (one + e) if y >= 0 else e / (one + e)


def sigmoid_derivative(x, a):
    return a * sigmoid_unit_dp(a * x)


def sigmoid_d_alpha(x, a):
    return x * sigmoid_unit_dp(a * x)


def atan_primitive(x, a):
    return math.atan(typed(x, math.pi / 2) * (a * x)) / typed(x, math.pi) + typed(x, 0.5)


def atan_derivative(x, a):
    return a * atan_unit_dp(a * x)


def atan_d_alpha(x, a):
    return x * atan_unit_dp(a * x)


def triangle_primitive(x, a):
    one, half = typed(x, 1.0), typed(x, 0.5)
    yc = min(max(a * x, -one), one)
    if yc < 0:
        return half * ((one + yc) * (one + yc))
    return one - half * ((one - yc) * (one - yc))


def triangle_derivative(x, a):
    return a * triangle_unit_dp(a * x)


def triangle_d_alpha(x, a):
    return x * triangle_unit_dp(a * x)


def rect_primitive(x, a):
    return min(max(a * x + typed(x, 0.5), typed(x, 0.0)), typed(x, 1.0))


def rect_derivative(x, a):
    return a * rect_unit_dp(a * x)


def rect_d_alpha(x, a):
    return x * rect_unit_dp(a * x)


def fast_sigmoid_primitive(x, a):
    one = typed(x, 1.0)
    return one / a + x / (one + a * abs(x))


def fast_sigmoid_derivative(x, a):
    d = typed(x, 1.0) + a * abs(x)
    return typed(x, 1.0) / (d * d)


def fast_sigmoid_d_alpha(x, a):
    one = typed(x, 1.0)
    q = x / (one + a * abs(x))  # |q| < 1/α: no overflow for huge x
    return -(one / (a * a)) - q * abs(q)


__all__ = ["SurrogateFunctions", "register", "unregister", "lookup", "code_key", "typed",
           "exp_neg", "central_dx", "central_da", "FIRST_CUSTOM_CODE", "DERIVED_STEP"]
