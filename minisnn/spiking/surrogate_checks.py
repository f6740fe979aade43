"""The checks `surrogate.define` runs on a new family, in float64, before anything trains with it.

On a grid that holds 0, ±1/(2α), ±1/α, ±2/α, 241 points on [−6/α, 6/α] and |x| from 1e-4/α to
1e6/α (log-spaced), for α = the default slope ×¼, ×1 and ×4, through the active kernel backend
(so under Numba the family's compiled functions are what is checked):

1. p, ∂p/∂x and ∂p/∂α are finite everywhere (a NaN, an infinity or an exception fails);
2. p is a smooth step: it rises from one end of the grid to the other, never decreases, has no
   jump (|p(x + h) − p(x − h)| stays under 1e-3 of the rise), rises at 0 (∂p/∂x(0) > 0) and levels
   off (|∂p/∂x| at ±1e6/α under 1e-3 of its peak);
3. a given ∂p/∂x agrees with a finite difference of p at every point: the central one, or the
   forward or backward one where x sits on a kink; within 1e-4 of the derivative's peak.  The step
   is h = `DERIVED_STEP`·max(|x|, 1/α);
4. a given ∂p/∂α likewise, with steps of DERIVED_STEP·α in α.

A failure raises one-line ValueError naming the worst grid point.
"""
from __future__ import annotations

import re

import numpy as np

from .. import kernels
from ..kernels.reference.surrogate import scalar_function
from ..kernels.surrogates import DERIVED_STEP, lookup

_FUNCTION_NAMES = ("primitive", "derivative", "d_alpha")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NUMBA_CONTEXT = ("Failed in", "During:", "File", "No implementation", "There are", "- Of which", "Overload in",
                  "With argument", "Rejected as", "TypingError:", ">>>", "raised from", "<source", "^")
_SLOPE_FACTORS = (0.25, 1.0, 4.0)
_JUMP, _LEVEL_OFF, _AGREE = 1e-3, 1e-3, 1e-4


def unit_grid() -> np.ndarray:
    """The grid in units of 1/α, sorted."""
    logs = np.logspace(-4, 6, 41)
    return np.unique(np.concatenate([np.linspace(-6, 6, 241), logs, -logs, [0, 0.5, -0.5, 1, -1, 2, -2]]))


def check_family(name: str, code: int, default_alpha: float, given: tuple[bool, bool]) -> None:
    """Run the checks on family `code`; `given` says whether ∂p/∂x and ∂p/∂α were given (else derived)."""
    y = unit_grid()
    for alpha in default_alpha * np.asarray(_SLOPE_FACTORS):
        _check_at_slope(name, code, y / alpha, float(alpha), given)


def _where(x, alpha) -> str:
    return f"at x = {x:.6g}, alpha = {alpha:.6g}"


def _check_at_slope(name, code, x, alpha, given):
    a = np.full_like(x, alpha)
    values = [_evaluate(name, code, which, x, a) for which in range(3)]
    for which, v in enumerate(values):
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            i = bad[0]
            raise ValueError(f"surrogate {name!r}: {_FUNCTION_NAMES[which]} is {v[i]} {_where(x[i], alpha)}; "
                             "every value must be finite")
    p, d, da = values
    h = DERIVED_STEP * np.maximum(np.abs(x), 1.0 / alpha)
    up, down = x + h, x - h
    p_up, p_down = _evaluate(name, code, 0, up, a), _evaluate(name, code, 0, down, a)
    _check_step(name, x, alpha, p, d, p_up - p_down)
    if given[0]:
        differences = ((p_up - p_down) / (up - down), (p_up - p) / (up - x), (p - p_down) / (x - down))
        _check_agreement(name, "derivative", x, alpha, d, differences)
    if given[1]:
        step = DERIVED_STEP * alpha
        a_up, a_down = a + step, a - step
        q_up, q_down = _evaluate(name, code, 0, x, a_up), _evaluate(name, code, 0, x, a_down)
        differences = ((q_up - q_down) / (a_up - a_down), (q_up - p) / (a_up - a), (p - q_down) / (a - a_down))
        _check_agreement(name, "d_alpha", x, alpha, da, differences)


def _check_step(name, x, alpha, p, d, across):
    """p rises, never falls, does not jump, rises at 0 and levels off at both ends."""
    rise = p[-1] - p[0]
    if not rise > 0:
        raise ValueError(f"surrogate {name!r}: primitive does not rise (p = {p[0]:.6g} at x = {x[0]:.6g}, "
                         f"{p[-1]:.6g} at x = {x[-1]:.6g}, alpha = {alpha:.6g}); it must be a step from low to high")
    fall = np.diff(p)
    i = int(np.argmin(fall))
    if fall[i] < -1e-9 * rise:
        raise ValueError(f"surrogate {name!r}: primitive decreases by {-fall[i]:.3g} between x = {x[i]:.6g} and "
                         f"{x[i + 1]:.6g} (alpha = {alpha:.6g}); a step never falls")
    i = int(np.argmax(np.abs(across)))
    if abs(across[i]) > _JUMP * rise:
        raise ValueError(f"surrogate {name!r}: primitive jumps by {across[i]:.3g} {_where(x[i], alpha)}; "
                         "it must be continuous")
    zero = int(np.flatnonzero(x == 0)[0])
    if not d[zero] > 0:
        raise ValueError(f"surrogate {name!r}: derivative is {d[zero]} {_where(0.0, alpha)}; the step must rise "
                         "at the threshold")
    peak = np.max(np.abs(d))
    i = 0 if abs(d[0]) >= abs(d[-1]) else len(d) - 1
    if abs(d[i]) > _LEVEL_OFF * peak:
        raise ValueError(f"surrogate {name!r}: primitive does not level off: its derivative {_where(x[i], alpha)} is "
                         f"{abs(d[i]) / peak:.3g} of its peak; a step is flat far from 0")


def _check_agreement(name, what, x, alpha, given, differences):
    """|given − nearest finite difference| <= 1e-4 of max |given| at every point."""
    error = np.min([np.abs(given - fd) for fd in differences], axis=0)
    tolerance = _AGREE * max(np.max(np.abs(given)), np.finfo(np.float64).tiny)
    i = int(np.argmax(error))
    if error[i] > tolerance:
        raise ValueError(f"surrogate {name!r}: {what} disagrees with the primitive {_where(x[i], alpha)} "
                         f"(given {given[i]:.6g}, central difference {differences[0][i]:.6g}); fix it, or leave "
                         f"{what} out to have it derived")


def _evaluate(name, code, which, x, a) -> np.ndarray:
    """Function `which` of the family on the active backend; an exception names its first bad point."""
    kernel = (kernels.surrogate_primitive, kernels.surrogate_derivative, kernels.surrogate_d_alpha)[which]
    try:
        with np.errstate(all="ignore"):  # non-finite values are reported by the caller
            return kernel(x, a, code)
    except Exception as exc:
        if type(exc).__module__.startswith("numba"):
            raise ValueError(f"surrogate {name!r}: Numba cannot compile its {_FUNCTION_NAMES[which]} "
                             f"({_numba_reason(exc)}); use only numbers, math functions and if/else in it") from None
        fn = scalar_function(lookup(code), which)
        for xi, ai in zip(x, a):
            try:
                fn(np.float64(xi), np.float64(ai))
            except Exception as point_exc:
                raise ValueError(f"surrogate {name!r}: {_FUNCTION_NAMES[which]} raised "
                                 f"{type(point_exc).__name__} ({point_exc}) {_where(xi, ai)}; it must return a "
                                 "finite number for every x") from None
        raise ValueError(f"surrogate {name!r}: evaluating its {_FUNCTION_NAMES[which]} failed: "
                         f"{type(exc).__name__} ({exc})") from None


def _numba_reason(exc: Exception) -> str:
    """The innermost cause in a Numba typing error (its other lines say where the call came from)."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines()]
    causes = [line for line in lines if line and not line.startswith(_NUMBA_CONTEXT)]
    return (causes or lines or [type(exc).__name__])[0][:200]
