"""Surrogate-gradient curves: the smooth primitive Φ_α and its derivative g_α = dΦ_α/dx.

A spiking neuron fires with the Heaviside step H(x), x = u − θ, whose derivative
is zero almost everywhere.  Surrogate training keeps H in the forward pass and
uses g_α(x) in the backward pass; α (the slope) sets how sharp g_α is.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ._figure import as_array, finish, get_axes


def _pair(name: str, family) -> tuple[Callable, Callable]:
    """(primitive, derivative) callables from a 2-tuple or an object with those methods."""
    if hasattr(family, "primitive") and hasattr(family, "derivative"):
        return family.primitive, family.derivative
    if isinstance(family, (tuple, list)) and len(family) == 2 and all(callable(f) for f in family):
        return family[0], family[1]
    raise TypeError(
        f"surrogate {name!r} must be a (primitive_fn, derivative_fn) pair of callables f(x, alpha) "
        f"or an object with .primitive and .derivative, got {type(family).__name__}"
    )


def _slopes_for(name: str, slopes) -> list[float]:
    if isinstance(slopes, Mapping) and name not in slopes:
        raise ValueError(f"slopes has no entry for surrogate {name!r}")
    values = slopes[name] if isinstance(slopes, Mapping) else slopes
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"slopes for {name!r} must be a non-empty list of positive numbers, got {values.tolist()}")
    return values.tolist()


def _evaluate(fn: Callable, x: np.ndarray, alpha: float, what: str) -> np.ndarray:
    y = np.asarray(fn(x, alpha), dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"{what}(x, alpha={alpha:g}) returned shape {y.shape}, expected {x.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{what}(x, alpha={alpha:g}) returned NaN or inf")
    return y


def surrogate_curves(surrogates: Mapping, slopes: Sequence[float] | Mapping = (1.0, 2.0, 4.0), *,
                     x=None, ax=None, path=None, title: str | None = None) -> Figure:
    """One row per surrogate family: Φ_α(x) against the step H(x) (left) and g_α(x) (right).

    surrogates: dict name -> (primitive_fn, derivative_fn) with f(x, alpha) -> array of x's shape,
        or name -> object with `.primitive(x, alpha)` and `.derivative(x, alpha)`.
    slopes: the α values drawn for every family, or a dict name -> list of α.
    x: the points x = u − θ (1-D, increasing; default 601 points on [−3, 3]).
    Each derivative panel's title gives max_x |g_α − dΦ_α/dx| (numerical dΦ/dx on the grid),
    a quick check that the pair belongs together.
    """
    if not isinstance(surrogates, Mapping) or not surrogates:
        raise TypeError(f"surrogates must be a non-empty dict name -> (primitive_fn, derivative_fn), "
                        f"got {type(surrogates).__name__}")
    xs = np.linspace(-3.0, 3.0, 601) if x is None else as_array(x, "x", ndims=(1,))
    if xs.size < 3 or np.any(np.diff(xs) <= 0):
        raise ValueError("x must be a strictly increasing 1-D grid of at least 3 points")
    names = list(surrogates)
    fig, axes = get_axes(ax, 2 * len(names), ncols=2, panel_size=(4.2, 3.0))
    step = (xs >= 0).astype(np.float64)  # H(0) = 1
    for row, name in enumerate(names):
        primitive, derivative = _pair(name, surrogates[name])
        alphas = _slopes_for(name, slopes)
        colours = colormaps["viridis"](np.linspace(0.1, 0.85, len(alphas)))
        ax_p, ax_g = axes[2 * row], axes[2 * row + 1]
        ax_p.plot(xs, step, color="black", linestyle="--", linewidth=1.0, label="step H(x)")
        worst = 0.0
        for alpha, colour in zip(alphas, colours):
            phi = _evaluate(primitive, xs, alpha, f"{name} primitive")
            g = _evaluate(derivative, xs, alpha, f"{name} derivative")
            worst = max(worst, float(np.max(np.abs(g - np.gradient(phi, xs)))))
            ax_p.plot(xs, phi, color=colour, label=f"α={alpha:g}")
            ax_g.plot(xs, g, color=colour, label=f"α={alpha:g}")
        ax_p.set_title(f"{name}: forward primitive Φ_α")
        ax_g.set_title(f"{name}: surrogate g_α = dΦ_α/dx\nmax |g − numerical dΦ/dx| = {worst:.1e}")
        for axis, ylabel in ((ax_p, "Φ_α(x)"), (ax_g, "g_α(x)")):
            axis.set_xlabel("x = u − θ")
            axis.set_ylabel(ylabel)
            axis.axvline(0.0, color="grey", linewidth=0.6)
            axis.legend(fontsize="small")
    if title is not None:
        fig.suptitle(title)
    return finish(fig, path)
