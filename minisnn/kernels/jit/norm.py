"""Batch-normalisation kernels, Numba version of `reference.norm` (same names, signatures, maths).

Memory traffic decides the speed of BatchNorm, so every loop streams through x in storage
order: the N leading rows are cut into blocks of whole rows, each block adds its contribution
to every channel into its own row of a partial-sum array, and the partials are then added in
block order.  Blocks are independent, so the block loops are `prange` loops, run serially or on
Numba's thread pool depending on `PARALLEL` (below).  The block size depends only on the shape,
so results do not depend on the thread count.  (Walking one channel at a time instead would
read x with a stride of C·L values; at the layer sizes of the models that stride maps a
channel's rows onto a few cache sets, and the cache could not keep them.)

Two inner-loop forms, chosen by the length L of the contiguous run of one channel in x [N, C, L]:

* run form (L >= `MIN_RUN`, e.g. BatchNorm2d [N, C, H·W], BatchNorm1d [T·B, C, N]): the inner
  loop sums one run of L values into a scalar (SIMD-vectorised reduction);
* column form (L < `MIN_RUN`, e.g. the token matrices [M, C] of a linear layer, L = 1): x is
  seen as [N, C·L] and the inner loop runs along a row, adding into one accumulator per column.

Training statistics take one pass, with shifted sums: with K = x[0, c, 0] (one value of the
channel), s₁ = Σ (x − K) and s₂ = Σ (x − K)² are accumulated in float64, and

    μ = K + s₁/M,   σ² = s₂/M − (s₁/M)².

Because K is one of the samples, (μ − K)² <= M·σ², so the subtraction loses at most log10(M)
of float64's 16 digits (about 1e-10 relative error at M = 10⁶); the reference's two-pass
formula is recovered to float32 accuracy with one read of x less.

`fastmath` is limited to re-association and contraction (it lets LLVM vectorise the float64
sums); no flag that assumes finite values is used.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "batch_norm_moments",
    "batch_norm_train_forward",
    "batch_norm_train_backward",
    "batch_norm_train_dx",
    "batch_norm_eval_forward",
    "batch_norm_eval_backward",
]

MIN_RUN = 16  # shortest contiguous run per channel that uses the run form
BLOCK_VALUES = 1 << 15  # values per block of rows (128 KiB of float32)
_FAST = {"reassoc", "contract", "nsz"}
# Run the block loops on Numba's thread pool?  Off: a BatchNorm sits between two BLAS calls in every
# model, and with the default thread set-up (OpenMP threading layer, OpenBLAS worker threads that
# spin for a while after each product) a short parallel region there often waits for a thread the
# OS has parked behind a spinning one.  Measured on a dim-256, depth-4 Dy-SViT training step on
# 2 cores: about 48 img/s with these loops serial, 32 img/s parallel.  Parallel loops win only in
# isolation (the layer benchmark); with pools that sleep instead of spinning (OMP_WAIT_POLICY=passive)
# the two were level within noise.  The two settings agree to rounding.  See bench/README.md.  On 2 cores
# of an AMD EPYC (Zen 4), `bench/bench_ab.py` with PARALLEL = True against False measured 0.975-1.009
# (dysvit-cifar10, qkformer-tiny, spikformer-tiny training): no reason to switch.
PARALLEL = False


def row_blocks(n: int, row_values: int) -> tuple[int, int]:
    """(rows per block, number of blocks) for n rows of `row_values` values each."""
    rows = max(1, min(n, BLOCK_VALUES // max(row_values, 1)))
    return rows, -(-n // rows)


# ------------------------------------------------------------------ run form (L large)
# With d = x − centre[c], the two block sums are  Σ u  and  Σ u·d,  where u = d for the moments
# (g is None: Σ d, Σ d²) and u = g for the gradient sums (Σ g, Σ g·(x − μ)).  When dx is given,
# dx = g·k1[c] is written in the same pass (eval-mode backward).  `g is None` and `dx is None`
# are decided when Numba compiles each signature, so every use gets a loop without the other's work.
@njit(cache=True, parallel=PARALLEL, fastmath=_FAST)
def _run_sums(g, x, centre, rows, p1, p2, k1=None, dx=None):
    """p1[b, c] = Σ u,  p2[b, c] = Σ u·(x − centre[c])  over the rows of block b (float64); see above."""
    n, c, l = x.shape
    for b in prange(p1.shape[0]):
        p1[b, :] = 0.0
        p2[b, :] = 0.0
        for i in range(b * rows, min(n, (b + 1) * rows)):
            for ch in range(c):
                mu = centre[ch]
                if dx is not None:
                    a = k1[ch]
                s1 = 0.0
                s2 = 0.0
                for k in range(l):
                    d = x[i, ch, k] - mu
                    if g is None:
                        u = d
                    else:
                        gv = g[i, ch, k]
                        if dx is not None:
                            dx[i, ch, k] = gv * a
                        u = np.float64(gv)
                    s1 += u
                    s2 += u * d
                p1[b, ch] += s1
                p2[b, ch] += s2


@njit(cache=True, parallel=PARALLEL, fastmath=_FAST)
def _run_affine(x, centre, scale, shift, y):
    """y[i, c, k] = (x[i, c, k] − centre[c])·scale[c] + shift[c]; the N·C runs in parallel."""
    n, c, l = x.shape
    for r in prange(n * c):
        i, ch = r // c, r % c
        m, a, s = centre[ch], scale[ch], shift[ch]
        for k in range(l):
            y[i, ch, k] = (x[i, ch, k] - m) * a + s


@njit(cache=True, parallel=PARALLEL, fastmath=_FAST)
def _run_train_dx(g, x, centre, k1, k0, k2, dx):
    """dx[i, c, k] = g·k1[c] − k0[c] − (x − centre[c])·k2[c]; the N·C runs in parallel."""
    n, c, l = x.shape
    for r in prange(n * c):
        i, ch = r // c, r % c
        m, a, b0, b2 = centre[ch], k1[ch], k0[ch], k2[ch]
        for k in range(l):
            dx[i, ch, k] = g[i, ch, k] * a - b0 - (x[i, ch, k] - m) * b2


# ------------------------------------------------------------------ column form (L small)
@njit(cache=True, parallel=PARALLEL, fastmath=_FAST)
def _column_sums(g2, x2, centre, rows, p1, p2, k1=None, dx2=None):
    """`_run_sums` on the [N, C·L] view: p1[b, j] = Σ u,  p2[b, j] = Σ u·(x2 − centre[j]) (float64)."""
    n, m = x2.shape
    for b in prange(p1.shape[0]):
        a1 = p1[b]
        a2 = p2[b]
        a1[:] = 0.0
        a2[:] = 0.0
        for i in range(b * rows, min(n, (b + 1) * rows)):
            for j in range(m):
                d = x2[i, j] - centre[j]
                if g2 is None:
                    u = d
                else:
                    gv = g2[i, j]
                    if dx2 is not None:
                        dx2[i, j] = gv * k1[j]
                    u = np.float64(gv)
                a1[j] += u
                a2[j] += u * d


@njit(cache=True, parallel=PARALLEL, fastmath=_FAST)
def _column_affine(x2, centre, scale, shift, y2):
    """y2[i, j] = (x2[i, j] − centre[j])·scale[j] + shift[j]; rows in parallel."""
    n, m = x2.shape
    for i in prange(n):
        for j in range(m):
            y2[i, j] = (x2[i, j] - centre[j]) * scale[j] + shift[j]


@njit(cache=True, parallel=PARALLEL, fastmath=_FAST)
def _column_train_dx(g2, x2, centre, k1, k0, k2, dx2):
    """dx2[i, j] = g2·k1[j] − k0[j] − (x2 − centre[j])·k2[j]; rows in parallel."""
    n, m = x2.shape
    for i in prange(n):
        for j in range(m):
            dx2[i, j] = g2[i, j] * k1[j] - k0[j] - (x2[i, j] - centre[j]) * k2[j]


# ------------------------------------------------------------------ shared steps
def _channel_totals(partial: np.ndarray, c: int, l: int, column_form: bool) -> np.ndarray:
    """Add the block partials in block order; in column form also fold each channel's L columns."""
    total = partial.sum(axis=0)
    return total.reshape(c, l).sum(axis=1) if column_form else total


def _per_run(v, l: int, column_form: bool, dtype) -> np.ndarray:
    """A per-channel vector [C] in `dtype`, repeated for each of a channel's L columns in column form."""
    v = np.asarray(v).astype(dtype)
    return np.repeat(v, l) if column_form else v


def _partials(x: np.ndarray):
    """(column form?, rows per block, two empty float64 partial-sum arrays [blocks, C·L or C]) for x [N, C, L]."""
    n, c, l = x.shape
    column_form = l < MIN_RUN
    rows, blocks = row_blocks(n, c * l)
    width = c * l if column_form else c
    return column_form, rows, np.empty((blocks, width)), np.empty((blocks, width))


def _block_sums(g, x: np.ndarray, centre: np.ndarray, k1=None, dx=None):
    """(Σ u, Σ u·(x − centre)) per channel, float64, with u = g, or u = x − centre when g is None.

    centre: float64 [C]; with k1 [C] (g's dtype) and dx given, dx = g·k1[c] is written in the same pass.
    """
    n, c, l = x.shape
    column_form, rows, p1, p2 = _partials(x)
    if column_form:
        def flat(a):
            return None if a is None else a.reshape(n, c * l)
        k1 = None if k1 is None else np.repeat(k1, l)
        _column_sums(flat(g), flat(x), np.repeat(centre, l), rows, p1, p2, k1, flat(dx))
    else:
        _run_sums(g, x, centre, rows, p1, p2, k1, dx)
    return _channel_totals(p1, c, l, column_form), _channel_totals(p2, c, l, column_form)


def batch_norm_moments(x: np.ndarray):
    """(μ, σ²) per channel of x [N, C, L]: float64 [C], σ² biased, from one pass of shifted sums."""
    n, l = x.shape[0], x.shape[2]
    shift = x[0, :, 0].astype(np.float64)
    sum_d, sum_dd = _block_sums(None, x, shift)
    m = n * l
    d = sum_d / m  # μ − K
    var = np.maximum(sum_dd / m - d * d, 0.0)
    return shift + d, var


def _affine(x: np.ndarray, centre, scale, shift) -> np.ndarray:
    """y = (x − centre[c])·scale[c] + shift[c] in x's dtype (per-channel vectors, any float dtype)."""
    n, c, l = x.shape
    column_form = l < MIN_RUN
    vecs = [_per_run(v, l, column_form, x.dtype) for v in (centre, scale, shift)]
    y = np.empty_like(x)
    if column_form:
        _column_affine(x.reshape(n, c * l), *vecs, y.reshape(n, c * l))
    else:
        _run_affine(x, *vecs, y)
    return y


# ------------------------------------------------------------------ kernels
def batch_norm_train_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float):
    """Training-mode BatchNorm with batch statistics.

    x [N, C, L], weight γ [C], bias β [C] (x's dtype) →
    (y [N, C, L] = γ·(x − μ)·invstd + β,  μ [C],  σ² [C] (biased),  invstd [C]), the last three float64.
    """
    mean, var = batch_norm_moments(x)
    invstd = 1.0 / np.sqrt(var + eps)
    return _affine(x, mean, weight * invstd, bias), mean, var, invstd


def batch_norm_train_backward(g: np.ndarray, x: np.ndarray, mean: np.ndarray, invstd: np.ndarray,
                              weight: np.ndarray):
    """Gradients of `batch_norm_train_forward` for the cotangent g [N, C, L].

    mean, invstd: float64 [C] from the forward; weight γ [C].
    Returns (dx [N, C, L] in g's dtype, dγ = Σ g·x̂ float64 [C], dβ = Σ g float64 [C]).
    """
    sum_g, sum_gc = _block_sums(g, x, mean)
    return batch_norm_train_dx(g, x, mean, invstd, weight, sum_g, sum_gc), sum_gc * invstd, sum_g


def batch_norm_train_dx(g: np.ndarray, x: np.ndarray, mean: np.ndarray, invstd: np.ndarray, weight: np.ndarray,
                        sum_g: np.ndarray, sum_gc: np.ndarray) -> np.ndarray:
    """dx of training-mode BatchNorm [N, C, L] (g's dtype) from the cotangent g, the forward's μ and
    invstd, γ, and the sums Σ g and Σ g·(x − μ) (float64 [C]) that a caller may have taken already."""
    n, c, l = x.shape
    m = n * l
    k = weight * invstd
    column_form = l < MIN_RUN
    vecs = [_per_run(v, l, column_form, g.dtype)
            for v in (mean, k, k * sum_g / m, k * invstd * invstd * sum_gc / m)]
    dx = np.empty_like(g)
    if column_form:
        _column_train_dx(g.reshape(n, c * l), x.reshape(n, c * l), *vecs, dx.reshape(n, c * l))
    else:
        _run_train_dx(g, x, *vecs, dx)
    return dx


def batch_norm_eval_forward(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Eval-mode BatchNorm as a per-channel affine map: y = scale[c]·x + shift[c].

    x [N, C, L]; scale = γ·invstd and shift = β − μ·scale [C] in x's dtype.
    """
    return _affine(x, np.zeros(x.shape[1], x.dtype), scale, shift)


def batch_norm_eval_backward(g: np.ndarray, x: np.ndarray, mean: np.ndarray, invstd: np.ndarray,
                             weight: np.ndarray):
    """Gradients of eval-mode BatchNorm (fixed μ, invstd float64 [C]) for the cotangent g [N, C, L].

    Returns (dx = γ·invstd·g [N, C, L], dγ = Σ g·(x − μ)·invstd float64 [C], dβ = Σ g float64 [C]).
    """
    dx = np.empty_like(g)
    sum_g, sum_gc = _block_sums(g, x, mean, (weight * invstd).astype(g.dtype), dx)
    return dx, sum_gc * invstd, sum_g
