"""How a checker reports: `Wrong` carries the reason, `checker` prints the verdict, `close` compares arrays."""
from __future__ import annotations

import functools

import numpy as np

class Wrong(Exception):
    """Raised inside a checker with the reason the answer is wrong."""


def checker(fn):
    """Turn `fn` (raises Wrong, returns a short note) into a checker that prints and returns a verdict."""
    @functools.wraps(fn)
    def run(*args, **kwargs) -> bool:
        try:
            note = fn(*args, **kwargs)
        except NotImplementedError:
            print(f"{fn.__name__}: not attempted yet (your function still raises NotImplementedError)")
            return False
        except Wrong as why:
            print(f"wrong: {why}")
            return False
        print(f"right: {note}")
        return True
    return run


def close(name, got, expected, rtol=1e-7, atol=1e-10):
    """Wrong unless `got` has `expected`'s shape and values (within tolerance)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise Wrong(f"{name}: expected shape {expected.shape}, got {got.shape}")
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        i = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
        raise Wrong(f"{name}: at index {tuple(int(j) for j in i)} expected {expected[i]:.6g}, got {got[i]:.6g}")


def close_to_d_alpha(d_alpha, family, slopes, atol, relative_step=True):
    """Wrong unless the student's `d_alpha(x, slope)` equals `family.d_alpha` and a central difference of
    `family.primitive` in the slope (step 1e-6, times the slope when relative_step), for each slope."""
    x = np.linspace(-3, 3, 61)
    for slope in slopes:
        got = d_alpha(x, slope)
        close(f"slope {slope}", got, family.d_alpha(x, slope))
        h = 1e-6 * (slope if relative_step else 1.0)
        fd = (family.primitive(x, slope + h) - family.primitive(x, slope - h)) / (2 * h)
        close(f"slope {slope}, against finite differences", got, fd, rtol=1e-5, atol=atol)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))
