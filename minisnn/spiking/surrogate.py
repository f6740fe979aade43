"""Surrogate-gradient families: named objects around the `surrogate_*` kernels, and `define`.

    from minisnn.spiking import surrogate
    sg = surrogate.Sigmoid(alpha=4.0)
    sg.primitive(x)            # p(x; α), the smooth stand-in for the step H(x)
    sg.derivative(x)           # ∂p/∂x: what backward uses in place of dH/dx
    sg.d_alpha(x, alpha=2.0)   # ∂p/∂α: the gradient into a learnable slope
    sg.spec                    # "sigmoid": the name to save it by; surrogate.get(sg.spec) == sg

Every family is a smooth step p(x; α) of slope α.  The built-in ones (formulas in
`minisnn/kernels/reference/surrogate.py`):

* `Sigmoid(alpha=4.0)`         p = σ(αx)                  (SpikingJelly `Sigmoid`)
* `ATan(alpha=2.0)`            p = atan(π/2·αx)/π + 1/2   (SpikingJelly `ATan`)
* `PiecewiseLinear(alpha=1.0)` triangle derivative α·max(0, 1 − α|x|)
* `Rectangular(alpha=1.0)`     box derivative α on |x| < 1/(2α)
* `FastSigmoid(alpha=25.0)`    snnTorch form: derivative 1/(1 + α|x|)²

Each of them, and any family of your own, comes from one call (docs/neurons_and_surrogates.md,
"Your own surrogate"):

    SuperSpike = surrogate.define("super_spike", primitive, derivative=None, d_alpha=None,
                                  default_alpha=10.0)

which checks the functions (`surrogate_checks`), enters them in the kernels' table
(`minisnn.kernels.surrogates`) and returns a `Surrogate` class; its objects work wherever a
built-in does (`spike`, `lif_sequence`, `LIF(surrogate=...)`), inside the same fused kernels.

The methods take arrays (`x` any shape; `alpha` a number or an array broadcastable to
x) and return arrays of x's float dtype; they are not differentiable Tensor ops.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .. import kernels
from ..kernels import surrogates as table
from ..kernels.reference import surrogate as reference
from .surrogate_checks import check_family


class Surrogate:
    """A surrogate family with a default slope `alpha` (> 0)."""

    kind: int = -1
    name: str = ""
    default_alpha: float = 1.0
    derived: tuple = ()  # which of "derivative", "d_alpha" are central differences of the primitive

    def __init__(self, alpha: float | None = None):
        self.alpha = check_slope_value(self.default_alpha if alpha is None else alpha)

    def _arrays(self, x, alpha):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        a = np.asarray(self.alpha if alpha is None else alpha, dtype=x.dtype)
        if a.size != 1:
            try:
                shape = np.broadcast_shapes(a.shape, x.shape)
            except ValueError:
                raise ValueError(f"alpha of shape {a.shape} does not broadcast to x of shape {x.shape}") from None
            x = np.broadcast_to(x, shape)
            a = np.broadcast_to(a, shape)
        check_slope_array(a)
        return np.ascontiguousarray(x), np.ascontiguousarray(a)

    def primitive(self, x, alpha=None) -> np.ndarray:
        """p(x; α).  alpha defaults to self.alpha."""
        x, a = self._arrays(x, alpha)
        return kernels.surrogate_primitive(x, a, self.kind)

    def derivative(self, x, alpha=None) -> np.ndarray:
        """∂p/∂x (x; α)."""
        x, a = self._arrays(x, alpha)
        return kernels.surrogate_derivative(x, a, self.kind)

    def d_alpha(self, x, alpha=None) -> np.ndarray:
        """∂p/∂α (x; α)."""
        x, a = self._arrays(x, alpha)
        return kernels.surrogate_d_alpha(x, a, self.kind)

    @property
    def spec(self) -> str:
        """The surrogate as a string to save in a checkpoint or config: its name, followed by
        "(alpha=...)" when the slope is not the default.  `get(spec)` builds it again."""
        return self.name if self.alpha == self.default_alpha else f"{self.name}(alpha={self.alpha!r})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.alpha == other.alpha

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.alpha))


def check_slope_value(alpha) -> float:
    """A scalar slope as float; raises ValueError unless finite and > 0."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"surrogate slope alpha must be a number, got {type(alpha).__name__}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"surrogate slope alpha must be finite and > 0, got {value}")
    return value


def check_slope_array(alpha: np.ndarray) -> None:
    """Raise ValueError unless every slope is finite and > 0."""
    if alpha.size and not (np.all(np.isfinite(alpha)) and np.all(alpha > 0)):
        bad = alpha[~(np.isfinite(alpha) & (alpha > 0))].reshape(-1)[0]
        raise ValueError(f"surrogate slopes must be finite and > 0, found {bad}")


_BY_NAME: dict[str, type] = {}
_BUILT_IN_NAMES: set[str] = set()
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPEC = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*alpha\s*=\s*([^()]+?)\s*\))?\s*")


def define(name: str, primitive, derivative=None, d_alpha=None, *, default_alpha: float, same_dtype: bool = False,
           on_arrays=None, class_name: str | None = None, doc: str | None = None, check: bool = True) -> type:
    """Define a surrogate family p(x; α) from scalar functions, and return its `Surrogate` class.

    primitive(x, a): the smooth step p at one number x for slope a, in code Numba can compile
    (arithmetic, comparisons, if/else, `math` functions).  derivative(x, a) = ∂p/∂x and
    d_alpha(x, a) = ∂p/∂α likewise; one left out is derived from the primitive by a central
    difference in float64 (`minisnn.kernels.surrogates.central_dx` / `central_da`: about 1e-10 of
    the derivative's peak, more within 6e-6·max(|x|, 1/α) of a kink), listed in `cls.derived`.
    default_alpha: the slope when none is given (> 0).  same_dtype: the Numba kernels call the
    functions in the array's float type (write constants as `typed(x, 0.5)`) instead of float64.
    on_arrays: optional (primitive, derivative, d_alpha) on NumPy arrays, which the reference
    backend then uses instead of calling the scalar functions element by element.

    The functions are checked on a float64 grid (`surrogate_checks`); a failure raises one-line
    ValueError naming the worst point.  check=False skips that (the built-ins do: the test suite
    checks them, so that no import pays for loading their compiled check kernels).

    The name is what checkpoints save (`Surrogate.spec`): after defining it again in a new
    process, `get(name)` finds it.  Defining a name again with the same code returns the class
    already made; with other code, a new one.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"surrogate name must be letters, digits and _ (not starting with a digit), got {name!r}")
    if name in _BUILT_IN_NAMES:
        raise ValueError(f"surrogate {name!r} is built in; choose another name")
    for role, fn in (("primitive", primitive), ("derivative", derivative), ("d_alpha", d_alpha)):
        if not callable(fn) and not (fn is None and role != "primitive"):
            raise TypeError(f"surrogate {name!r}: {role} must be a function f(x, alpha), got {type(fn).__name__}")
    if on_arrays is not None and (len(on_arrays) != 3 or not all(callable(f) for f in on_arrays)):
        raise TypeError(f"surrogate {name!r}: on_arrays must be (primitive, derivative, d_alpha) array functions")
    default_alpha = check_slope_value(default_alpha)
    functions = table.SurrogateFunctions(name, primitive, derivative, d_alpha, bool(same_dtype), on_arrays,
                                         table.code_key(name, (primitive, derivative, d_alpha)))
    known = _BY_NAME.get(name)
    if known is not None and table.lookup(known.kind).key == functions.key and known.default_alpha == default_alpha:
        return known
    code = table.register(functions, reference.KIND_NAMES)
    try:
        if check:
            check_family(name, code, default_alpha, (derivative is not None, d_alpha is not None))
    except Exception:
        table.unregister(code)
        raise
    derived = tuple(role for role, fn in (("derivative", derivative), ("d_alpha", d_alpha)) if fn is None)
    cls = type(class_name or _class_name(name), (Surrogate,),
               {"kind": code, "name": name, "default_alpha": default_alpha, "derived": derived,
                "__doc__": doc or f"The surrogate family {name!r} (defined with surrogate.define).",
                "__module__": __name__})
    _BY_NAME[name] = cls
    return cls


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) or name


def _built_in(name, scalars, on_arrays, default_alpha, class_name, doc, aliases=()):
    cls = define(name, *scalars, default_alpha=default_alpha, same_dtype=True, on_arrays=on_arrays,
                 class_name=class_name, doc=doc, check=False)
    for alias in aliases:
        _BY_NAME[alias] = cls
    _BUILT_IN_NAMES.update((name, *aliases))
    return cls


Sigmoid = _built_in(
    "sigmoid", (table.sigmoid_primitive, table.sigmoid_derivative, table.sigmoid_d_alpha), reference.SIGMOID_ARRAYS,
    4.0, "Sigmoid", "p = σ(αx);  ∂p/∂x = α·σ(αx)(1 − σ(αx));  ∂p/∂α = x·σ(αx)(1 − σ(αx)).")
ATan = _built_in(
    "atan", (table.atan_primitive, table.atan_derivative, table.atan_d_alpha), reference.ATAN_ARRAYS, 2.0, "ATan",
    "p = atan(π/2·αx)/π + 1/2;  ∂p/∂x = α / (2(1 + (π/2·αx)²));  ∂p/∂α = x / (2(1 + (π/2·αx)²)).")
PiecewiseLinear = _built_in(
    "piecewise_linear", (table.triangle_primitive, table.triangle_derivative, table.triangle_d_alpha),
    reference.TRIANGLE_ARRAYS, 1.0, "PiecewiseLinear",
    "Triangle: ∂p/∂x = α·max(0, 1 − α|x|);  p piecewise quadratic from 0 to 1;\n"
    "    ∂p/∂α = x·max(0, 1 − α|x|).",
    aliases=("triangle",))
Rectangular = _built_in(
    "rectangular", (table.rect_primitive, table.rect_derivative, table.rect_d_alpha), reference.RECT_ARRAYS, 1.0,
    "Rectangular",
    "Box: ∂p/∂x = α on |αx| < 1/2 (0 outside);  p = clip(αx + 1/2, 0, 1);  ∂p/∂α = x on the box.",
    aliases=("rect",))
FastSigmoid = _built_in(
    "fast_sigmoid", (table.fast_sigmoid_primitive, table.fast_sigmoid_derivative, table.fast_sigmoid_d_alpha),
    reference.FAST_SIGMOID_ARRAYS, 25.0, "FastSigmoid",
    "snnTorch form: ∂p/∂x = 1/(1 + α|x|)²;  p = 1/α + x/(1 + α|x|) (0 to 2/α);\n"
    "    ∂p/∂α = −1/α² − q|q| with q = x/(1 + α|x|).")


def get(spec) -> Surrogate:
    """A Surrogate from an instance (returned as is), a class, or a name or `spec` string
    ('sigmoid', 'atan', 'super_spike(alpha=5.0)', ...); a family of your own must be defined first."""
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, type) and issubclass(spec, Surrogate):
        return spec()
    match = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    cls = match and (_BY_NAME.get(match.group(1)) or _BY_NAME.get(match.group(1).lower()))
    if not cls:
        names = ", ".join(sorted(_BY_NAME))
        raise ValueError(f"unknown surrogate {spec!r}; expected a Surrogate, one of {names}, or a name defined "
                         "with surrogate.define(...) in this process (define it before loading)")
    return cls() if match.group(2) is None else cls(_slope_from_text(match.group(2), spec))


def _slope_from_text(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"surrogate {spec!r}: alpha must be a number, got {text!r}") from None


typed, exp_neg = table.typed, table.exp_neg  # helpers for functions given with same_dtype=True

__all__ = ["Surrogate", "define", "Sigmoid", "ATan", "PiecewiseLinear", "Rectangular", "FastSigmoid", "get",
           "check_slope_value", "check_slope_array", "typed", "exp_neg"]
