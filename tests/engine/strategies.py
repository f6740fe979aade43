"""Hypothesis strategies shared by the engine tests.

Arrays are kept small (at most a few dozen elements) so that float64 finite
differences over every element stay cheap.  Values come from a seeded NumPy
generator rather than element-by-element draws: much faster, and a failing
example still shrinks to a small shape and a reproducible seed.

    shapes()                        -> tuple[int, ...]
    broadcastable_pair()            -> (shape_a, shape_b) that broadcast together
    float_arrays(shape, dtype, ...) -> np.ndarray with values in a safe range
    distinct_arrays(shape)          -> values with no near-ties (for max reductions)
    layouts(array)                  -> an equal array, maybe transposed / strided (non-contiguous)
    matmul_shapes()                 -> operand shapes for @: vectors, batches, broadcast batches
    index_cases()                   -> (shape, index): slices, None/Ellipsis, repeated ints, masks
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.float32, np.float64)

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Array shapes, e.g. (), (3,), (2, 1, 4)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_pair(min_dims: int = 0, max_dims: int = 3, max_side: int = 4):
    """Two shapes that broadcast together, including size-1 axes and missing leading axes."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side
    ).map(lambda bs: bs.input_shapes)


def _values(rng: np.random.Generator, shape, low: float, high: float, away_from_zero: float) -> np.ndarray:
    if away_from_zero > 0:
        if not low < -away_from_zero < away_from_zero < high:
            raise ValueError("away_from_zero needs low < -away_from_zero and away_from_zero < high")
        sign = rng.choice([-1.0, 1.0], size=shape)
        return np.where(sign > 0, rng.uniform(away_from_zero, high, size=shape),
                        -rng.uniform(away_from_zero, -low, size=shape))
    return rng.uniform(low, high, size=shape)


@st.composite
def float_arrays(draw, shape=None, dtype=np.float64, low: float = -2.0, high: float = 2.0,
                 away_from_zero: float = 0.0):
    """A float array of `shape` (drawn when None) with values in [low, high].

    away_from_zero > 0 keeps every |value| >= away_from_zero (for the kinks of
    abs and relu at 0); use low > 0 for log, sqrt and friends.
    """
    if shape is None:
        shape = draw(shapes())
    rng = np.random.default_rng(draw(seeds))
    return np.asarray(_values(rng, shape, low, high, away_from_zero), dtype=dtype)


@st.composite
def distinct_arrays(draw, shape=None, dtype=np.float64, spacing: float = 0.25):
    """Values whose pairwise gaps are all >= spacing/2 (no ties for max/maximum/sort)."""
    if shape is None:
        shape = draw(shapes())
    rng = np.random.default_rng(draw(seeds))
    n = int(np.prod(shape, dtype=np.int64))
    grid = (rng.permutation(n) - n / 2) * spacing + rng.uniform(0, spacing / 2, size=n)
    return grid.reshape(shape).astype(dtype)


@st.composite
def matmul_shapes(draw):
    """(shape_a, shape_b) valid for a @ b: 1-D operands, batched and broadcast batch axes."""
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["vv", "vm", "mv", "mm", "batched", "broadcast"]))
    if kind == "vv":
        return (k,), (k,)
    if kind == "vm":
        return (k,), draw(st.sampled_from([(k, m), (2, k, m)]))
    if kind == "mv":
        return draw(st.sampled_from([(n, k), (3, n, k)])), (k,)
    if kind == "mm":
        return (n, k), (k, m)
    batch = draw(shapes(min_dims=1, max_dims=2, max_side=3))
    if kind == "batched":
        return batch + (n, k), batch + (k, m)
    other = tuple(draw(st.sampled_from([1, s])) for s in batch)
    if draw(st.booleans()):
        other = other[1:]
    return (batch + (n, k), other + (k, m)) if draw(st.booleans()) else (other + (n, k), batch + (k, m))


@st.composite
def index_cases(draw):
    """(shape, index) covering basic slices, negative steps, None/Ellipsis, int arrays with repeats, masks."""
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    rng = np.random.default_rng(draw(seeds))
    kind = draw(st.sampled_from(["int", "slice", "reverse", "ellipsis", "repeats", "mixed", "mask", "mask_row"]))
    if kind == "int":
        return shape, int(rng.integers(-shape[0], shape[0]))
    if kind == "slice":
        return shape, (slice(1, None),) + tuple(slice(None, None, 2) for _ in shape[1:])
    if kind == "reverse":
        return shape, slice(None, None, -1)
    if kind == "ellipsis":
        return shape, (Ellipsis, None, 0)
    if kind == "repeats":
        return shape, rng.integers(0, shape[0], size=6)  # repeated rows accumulate
    if kind == "mixed":
        return shape, (slice(None), rng.integers(-shape[1], shape[1], size=(2, 3))) if len(shape) > 1 else \
            rng.integers(0, shape[0], size=(2, 2))
    if kind == "mask":
        return shape, rng.random(shape) > 0.4
    return shape, rng.random(shape[0]) > 0.4


def probability_rows(rng: np.random.Generator, rows: int, classes: int, dtype=np.float64) -> np.ndarray:
    """Soft targets [rows, classes]: non-negative, each row sums to 1."""
    q = rng.uniform(0.05, 1.0, size=(rows, classes))
    return (q / q.sum(axis=1, keepdims=True)).astype(dtype)


@st.composite
def layouts(draw, array: np.ndarray):
    """The same values as `array`, as a C-contiguous copy, a transposed view or a strided view."""
    kind = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    if kind == "contiguous" or array.ndim == 0:
        return np.ascontiguousarray(array)
    if kind == "transposed":
        # store the transpose contiguously, then view it back transposed
        return np.ascontiguousarray(array.T).T
    # every axis strided by 2 inside a larger buffer
    big = np.zeros(tuple(2 * n for n in array.shape), dtype=array.dtype)
    view = big[tuple(slice(None, None, 2) for _ in array.shape)]
    view[...] = array
    return view
