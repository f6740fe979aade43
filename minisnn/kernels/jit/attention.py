"""Spiking attention kernels, Numba versions (same names, signatures and results as
`minisnn/kernels/reference/attention.py`, which states the maths).

SSA: one fused loop over the attention problems g.  Each problem's two products (and the scale)
are done back to back with BLAS (`np.dot` into preallocated outputs) while its q, k, v are hot in
cache, so every array crosses memory once; the NumPy reference makes a full pass over memory for
each product and another for the scale.  The backward fuses its four products the same way.
`ssa_forward_interleaved` and `ssa_backward_interleaved` read the heads where the token rows hold them
side by side ([G, N, h, d]):
each problem's rows are gathered into scratch matrices that stay in cache, instead of a full copy of
q, k and v (and the gradients) into head-major order before the kernel and back after it.
The problems are spread over Numba's thread pool in blocks (each small BLAS call runs on the thread
that makes it): about 1.9x faster forward and 1.7x faster backward on 2 cores (`attention.md`).

Why BLAS and not bit tricks on the 0/1 spikes: `ssa_forward_bitcount` below packs the spike
columns into 64-bit words and counts kᵀ v with popcount (d·dv·N/64 word operations instead of
d·dv·N multiply-adds).  The counting is cheap, but packing has to read the float32 spikes, and
that read alone costs as much as sgemm's whole product: at Spikformer sizes the attention is
memory-bound, so the bit-packed forward was never faster than the BLAS one on this CPU, and the
"skip the zeros" sparse loops we tried were 2-4x slower (numbers: `minisnn/attention/attention.md`,
`bench/README.md`).  It stays here, tested but unused by the library, so the measurement can be
repeated (`bench/bench_attention.py`).

Column sum and token mask: single-pass loops over contiguous token rows (memory-bound; the
backward of the mask computes both gradients in one pass where NumPy needs three).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..reference.attention import ssa_kv_first

__all__ = [
    "ssa_forward",
    "ssa_forward_interleaved",
    "ssa_backward",
    "ssa_backward_interleaved",
    "head_column_sum_forward",
    "head_column_sum_backward",
    "head_token_mask_forward",
    "head_token_mask_backward",
]


# ----------------------------------------------------------------------------- SSA
# The problems are independent: blocks of them run on Numba's thread pool (each BLAS call is small
# and runs on its calling thread), with one scratch matrix per block.  Each output element is computed
# by one BLAS call whatever the thread count, so results do not depend on it.
_PROBLEMS_PER_BLOCK = 8


@njit(cache=True, inline="always")
def _block_problems(block, n_problems):
    """The problems of parallel block `block`: range(start, stop)."""
    return range(block * _PROBLEMS_PER_BLOCK, min(n_problems, (block + 1) * _PROBLEMS_PER_BLOCK))


@njit(cache=True, inline="always")
def _n_blocks(n_problems):
    return (n_problems + _PROBLEMS_PER_BLOCK - 1) // _PROBLEMS_PER_BLOCK


@njit(cache=True, inline="always")
def _forward_problem(q, k, v, scale, kv_first, z, inner):
    """One problem: inner = kᵀ v, z = scale · q inner (kv_first), or inner = q kᵀ, z = scale · inner v."""
    if kv_first:
        np.dot(k.T, v, inner)
        np.dot(q, inner, z)
    else:
        np.dot(q, k.T, inner)
        np.dot(inner, v, z)
    z *= scale


@njit(cache=True, inline="always")
def _backward_problem(q, k, v, inner, gz, scale, kv_first, dq, dk, dv, d_inner):
    """One problem's gradients, d_inner a scratch matrix of inner's shape.  kv_first (inner = m = kᵀ v):
    dq = s·gz mᵀ, dm = s·qᵀ gz, dk = v dmᵀ, dv = k dm; else (inner = a = q kᵀ): da = s·gz vᵀ,
    dv = s·aᵀ gz, dq = da k, dk = daᵀ q."""
    if kv_first:
        np.dot(gz, inner.T, dq)
        dq *= scale
        np.dot(q.T, gz, d_inner)
        d_inner *= scale
        np.dot(v, d_inner.T, dk)
        np.dot(k, d_inner, dv)
    else:
        np.dot(gz, v.T, d_inner)
        d_inner *= scale
        np.dot(inner.T, gz, dv)
        dv *= scale
        np.dot(d_inner, k, dq)
        np.dot(d_inner.T, q, dk)


@njit(cache=True, parallel=True)
def _ssa_forward(q, k, v, scale, kv_first, z, inner):
    """`_forward_problem` for every problem g."""
    for block in prange(_n_blocks(q.shape[0])):
        for g in _block_problems(block, q.shape[0]):
            _forward_problem(q[g], k[g], v[g], scale, kv_first, z[g], inner[g])


def ssa_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float):
    """z = scale · q kᵀ v  [G, Nq, dv], plus the inner product used (kᵀ v [G, d, dv] or q kᵀ [G, Nq, Nk]).

    q [G, Nq, d], k [G, Nk, d], v [G, Nk, dv].
    """
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    g, nq, d = q.shape
    nk, dv = k.shape[1], v.shape[2]
    z = np.empty((g, nq, dv), q.dtype)
    kv_first = ssa_kv_first(nq, nk, d, dv)
    inner = np.empty((g, d, dv) if kv_first else (g, nq, nk), q.dtype)
    _ssa_forward(q, k, v, q.dtype.type(scale), kv_first, z, inner)
    return z, inner


@njit(cache=True, inline="always")
def _gather_head(x, g, head, out):
    """out[i, j] = x[g, i, head, j]: one head's rows of token rows x [G, N, h, d] (plain loops: Numba's slice
    copy between these strided views took 2.3x as long, attention.md §1.3)."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[g, i, head, j]


@njit(cache=True, inline="always")
def _scatter_head(rows, g, head, x):
    """x[g, i, head, j] = rows[i, j]: `_gather_head` reversed."""
    for i in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            x[g, i, head, j] = rows[i, j]


@njit(cache=True, parallel=True)
def _ssa_forward_interleaved(q, k, v, scale, kv_first, z, inner):
    """Per problem p = g·h + head: its rows of q, k and v gathered into scratch matrices (in cache),
    `_forward_problem`, and z's rows written back beside the other heads'."""
    n_groups, nq, h, d = q.shape
    nk, dv = k.shape[1], v.shape[3]
    n_problems = n_groups * h
    for block in prange(_n_blocks(n_problems)):
        qp = np.empty((nq, d), q.dtype)
        kp = np.empty((nk, d), q.dtype)
        vp = np.empty((nk, dv), q.dtype)
        zp = np.empty((nq, dv), q.dtype)
        for p in _block_problems(block, n_problems):
            g, head = p // h, p % h
            _gather_head(q, g, head, qp)
            _gather_head(k, g, head, kp)
            _gather_head(v, g, head, vp)
            _forward_problem(qp, kp, vp, scale, kv_first, zp, inner[p])
            _scatter_head(zp, g, head, z)


def ssa_forward_interleaved(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float):
    """`ssa_forward` of every head of q [G, Nq, h, d], k [G, Nk, h, d], v [G, Nk, h, dv] → z [G, Nq, h, dv] and
    the inner product per problem g·h + head (contract: reference.attention)."""
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    g, nq, h, d = q.shape
    nk, dv = k.shape[1], v.shape[3]
    z = np.empty((g, nq, h, dv), q.dtype)
    kv_first = ssa_kv_first(nq, nk, d, dv)
    inner = np.empty((g * h, d, dv) if kv_first else (g * h, nq, nk), q.dtype)
    _ssa_forward_interleaved(q, k, v, q.dtype.type(scale), kv_first, z, inner)
    return z, inner


@njit(cache=True, parallel=True)
def _ssa_backward(q, k, v, inner, gz, scale, kv_first, dq, dk, dv):
    """`_backward_problem` for every problem g, with one scratch matrix per block."""
    for block in prange(_n_blocks(q.shape[0])):
        d_inner = np.empty((inner.shape[1], inner.shape[2]), inner.dtype)
        for g in _block_problems(block, q.shape[0]):
            _backward_problem(q[g], k[g], v[g], inner[g], gz[g], scale, kv_first, dq[g], dk[g], dv[g], d_inner)


def ssa_backward(q, k, v, inner, grad_z, scale: float):
    """(dq, dk, dv) of z = scale · q kᵀ v, given dL/dz [G, Nq, dv] and `inner` from `ssa_forward`."""
    q, k, v, inner, grad_z = (np.ascontiguousarray(x) for x in (q, k, v, inner, grad_z))
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    kv_first = ssa_kv_first(q.shape[1], k.shape[1], q.shape[2], v.shape[2])
    _ssa_backward(q, k, v, inner, grad_z, q.dtype.type(scale), kv_first, dq, dk, dv)
    return dq, dk, dv


@njit(cache=True, parallel=True)
def _ssa_backward_interleaved(q, k, v, inner, gz, scale, kv_first, dq, dk, dv):
    """Per problem p = g·h + head: its rows of q, k, v and gz gathered into scratch matrices,
    `_backward_problem`, and the gradients' rows written back in place."""
    n_groups, nq, h, d = q.shape
    nk, dvn = k.shape[1], v.shape[3]
    n_problems = n_groups * h
    for block in prange(_n_blocks(n_problems)):
        qp, dqp = np.empty((nq, d), q.dtype), np.empty((nq, d), q.dtype)
        kp, dkp = np.empty((nk, d), q.dtype), np.empty((nk, d), q.dtype)
        vp, dvp = np.empty((nk, dvn), q.dtype), np.empty((nk, dvn), q.dtype)
        gp = np.empty((nq, dvn), q.dtype)
        d_inner = np.empty((inner.shape[1], inner.shape[2]), q.dtype)
        for p in _block_problems(block, n_problems):
            g, head = p // h, p % h
            _gather_head(q, g, head, qp)
            _gather_head(k, g, head, kp)
            _gather_head(v, g, head, vp)
            _gather_head(gz, g, head, gp)
            _backward_problem(qp, kp, vp, inner[p], gp, scale, kv_first, dqp, dkp, dvp, d_inner)
            _scatter_head(dqp, g, head, dq)
            _scatter_head(dkp, g, head, dk)
            _scatter_head(dvp, g, head, dv)


def ssa_backward_interleaved(q, k, v, inner, grad_z, scale: float):
    """`ssa_backward` of every head, in the layouts of `ssa_forward_interleaved` (contract: reference.attention)."""
    q, k, v, inner, grad_z = (np.ascontiguousarray(x) for x in (q, k, v, inner, grad_z))
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    kv_first = ssa_kv_first(q.shape[1], k.shape[1], q.shape[3], v.shape[3])
    _ssa_backward_interleaved(q, k, v, inner, grad_z, q.dtype.type(scale), kv_first, dq, dk, dv)
    return dq, dk, dv


# ----------------------------------------------------------------------------- bit-counting variant
@njit(cache=True)
def _popcount64(x):
    """Number of set bits of a uint64 (LLVM compiles this pattern to the POPCNT instruction)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(cache=True)
def _pack_columns(x, bits):
    """bits[l // 64, i] has bit (l mod 64) set iff x[l, i] != 0.  x [L, W], bits [ceil(L/64), W] uint64.

    Returns False as soon as a row holds a value other than 0 or 1 (bits are then incomplete).
    """
    bits[:, :] = 0
    for l in range(x.shape[0]):
        shift = np.uint64(l & 63)
        row = bits[l >> 6]
        ok = True
        for i in range(x.shape[1]):
            xi = x[l, i]
            ok &= (xi == 0) | (xi == 1)
            row[i] |= np.uint64(xi != 0) << shift
        if not ok:
            return False
    return True


@njit(cache=True)
def _count_products(a_bits, b_bits, out, acc):
    """out[i, j] = Σ_w popcount(a_bits[w, i] & b_bits[w, j]), i.e. (aᵀ b)[i, j] for 0/1 matrices."""
    for i in range(a_bits.shape[1]):
        acc[:] = 0
        for w in range(a_bits.shape[0]):
            a = a_bits[w, i]
            b_row = b_bits[w]
            for j in range(b_bits.shape[1]):
                acc[j] += _popcount64(a & b_row[j])
        for j in range(b_bits.shape[1]):
            out[i, j] = acc[j]


@njit(cache=True)
def _ssa_forward_kv_bitcount(q, k, v, scale, z, m):
    """As `_forward_problem` with kv_first, but m = kᵀ v by popcount when k[g] and v[g] are 0/1 (BLAS otherwise)."""
    words = (k.shape[1] + 63) // 64
    k_bits = np.empty((words, k.shape[2]), np.uint64)
    v_bits = np.empty((words, v.shape[2]), np.uint64)
    acc = np.empty(v.shape[2], np.uint64)
    for g in range(q.shape[0]):
        if _pack_columns(k[g], k_bits) and _pack_columns(v[g], v_bits):
            _count_products(k_bits, v_bits, m[g], acc)
        else:
            np.dot(k[g].T, v[g], m[g])
        np.dot(q[g], m[g], z[g])
        z[g] *= scale


def ssa_forward_bitcount(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float):
    """`ssa_forward` with kᵀ v counted on bit-packed spikes (kᵀ v-first shapes only); same results.

    Not a kernel of the library (slower than `ssa_forward` here, see the module docstring); kept
    so the benchmark can repeat the comparison.
    """
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    g, nq, d = q.shape
    nk, dv = k.shape[1], v.shape[2]
    if not ssa_kv_first(nq, nk, d, dv):
        raise ValueError(f"ssa_forward_bitcount handles k^T v-first shapes only (N > d), got Nq={nq}, Nk={nk}, d={d}")
    z = np.empty((g, nq, dv), q.dtype)
    m = np.empty((g, d, dv), q.dtype)
    _ssa_forward_kv_bitcount(q, k, v, q.dtype.type(scale), z, m)
    return z, m


# ----------------------------------------------------------------------------- column sum and mask
# Outputs are allocated by NumPy (which asks the kernel for huge pages on big arrays) and filled
# by the compiled loops; arrays allocated inside Numba pay a 4 KiB page fault per page instead.
@njit(cache=True)
def _column_sum_into(x, s):
    n_g, heads, n = s.shape
    d = x.shape[1] // heads
    for g in range(n_g):
        for h in range(heads):
            row = s[g, h]
            first = x[g, h * d]
            for t in range(n):
                row[t] = first[t]
            for j in range(1, d):
                xr = x[g, h * d + j]
                for t in range(n):
                    row[t] += xr[t]


def head_column_sum_forward(x: np.ndarray, heads: int) -> np.ndarray:
    """s[g, h, n] = Σ_j x[g, h·d + j, n].  x [G, C, N] -> [G, heads, N]."""
    x = np.ascontiguousarray(x)
    s = np.empty((x.shape[0], heads, x.shape[2]), x.dtype)
    _column_sum_into(x, s)
    return s


@njit(cache=True)
def _head_repeat_into(grad_s, dx):
    n_g, channels, n = dx.shape
    d = channels // grad_s.shape[1]
    for g in range(n_g):
        for c in range(channels):
            src = grad_s[g, c // d]
            dst = dx[g, c]
            for t in range(n):
                dst[t] = src[t]


def head_column_sum_backward(grad_s: np.ndarray, channels: int) -> np.ndarray:
    """dx[g, c, n] = gs[g, c // d, n].  [G, heads, N] -> [G, C, N]."""
    grad_s = np.ascontiguousarray(grad_s)
    dx = np.empty((grad_s.shape[0], channels, grad_s.shape[2]), grad_s.dtype)
    _head_repeat_into(grad_s, dx)
    return dx


@njit(cache=True)
def _token_mask_into(a, k, y):
    n_g, c, n = k.shape
    d = c // a.shape[1]
    for g in range(n_g):
        for ch in range(c):
            ar = a[g, ch // d]
            kr = k[g, ch]
            yr = y[g, ch]
            for t in range(n):
                yr[t] = ar[t] * kr[t]


def head_token_mask_forward(a: np.ndarray, k: np.ndarray, heads: int) -> np.ndarray:
    """y[g, c, n] = a[g, c // d, n] · k[g, c, n].  a [G, heads, N], k [G, C, N] -> [G, C, N]."""
    a, k = np.ascontiguousarray(a), np.ascontiguousarray(k)
    y = np.empty_like(k)
    _token_mask_into(a, k, y)
    return y


@njit(cache=True)
def _token_mask_backward_into(a, k, grad_y, da, dk):
    n_g, c, n = k.shape
    heads = a.shape[1]
    d = c // heads
    for g in range(n_g):
        for h in range(heads):
            ar = a[g, h]
            dar = da[g, h]
            for t in range(n):
                dar[t] = 0
            for j in range(d):
                ch = h * d + j
                gr = grad_y[g, ch]
                kr = k[g, ch]
                dkr = dk[g, ch]
                for t in range(n):
                    dkr[t] = ar[t] * gr[t]
                    dar[t] += gr[t] * kr[t]


def head_token_mask_backward(a: np.ndarray, k: np.ndarray, grad_y: np.ndarray, heads: int):
    """(da, dk): dk[c, n] = a[c // d, n]·gy[c, n],  da[h, n] = Σ_j gy[h·d+j, n]·k[h·d+j, n]; one pass."""
    a, k, grad_y = (np.ascontiguousarray(x) for x in (a, k, grad_y))
    da = np.empty_like(a)
    dk = np.empty_like(k)
    _token_mask_backward_into(a, k, grad_y, da, dk)
    return da, dk
