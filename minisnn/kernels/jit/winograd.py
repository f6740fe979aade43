"""Winograd F(2×2, 3×3) and F(4×4, 3×3) tile transforms, Numba version of `reference.winograd`
(same names, signatures and results: both apply the reference's 1-D transforms, inlined here, in
the same order, so they agree bit for bit, which the tests check).

The public kernels pick the tile size from the first axis of the transformed array (16 or 36,
as the reference does) and run `_input_tiles_f2`, `_output_tiles_f4`, ...  Rows of tiles run in
parallel (`prange` over image × tile row); every thread writes its own tiles, so there are no
write conflicts.  The inner loop runs over channels, which are contiguous in both the
channels-last images and the [α², tiles, C] transformed arrays, so Numba vectorises it.  The
input transform first copies a tile into an [α², C] scratch (zeros where it covers the padding),
transforms it there column by column, then row by row into the output: every loop touches at
most 2α rows.  Transforming straight from the image into the α² output rows was 5-7× slower
(32 memory streams in one loop for α = 4, measured in `ops/winograd.md`).  The F(4×4) output
transforms also pass through a small scratch, columns first; the F(2×2) ones hold a tile in
registers.  Tiles that overhang the cropped edge test each output; other tiles write directly.
Like the reference, the input transform computes in out's dtype and the output transforms in
mt's/g's, so float32 images can be transformed into float64 tiles and float64 GEMM results
rounded once into float32 outputs.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..reference import winograd as _formulas

__all__ = ["winograd_input_tiles", "winograd_output_tiles", "winograd_output_tiles_adjoint"]

_inline = njit(cache=True, error_model="numpy", inline="always")
_bt = _inline(_formulas.input_1d_f2)      # Bᵀ a, 4 -> 4
_at = _inline(_formulas.output_1d_f2)     # Aᵀ a, 4 -> 2
_a = _inline(_formulas.adjoint_1d_f2)     # A b,  2 -> 4
_bt6 = _inline(_formulas.input_1d_f4)     # Bᵀ a, 6 -> 6
_at6 = _inline(_formulas.output_1d_f4)    # Aᵀ a, 6 -> 4
_a6 = _inline(_formulas.adjoint_1d_f4)    # A b,  4 -> 6


def winograd_input_tiles(x, ph, pw, out):
    return (_input_tiles_f2 if out.shape[0] == 16 else _input_tiles_f4)(x, ph, pw, out)


def winograd_output_tiles(mt, ho, wo, out):
    return (_output_tiles_f2 if mt.shape[0] == 16 else _output_tiles_f4)(mt, ho, wo, out)


def winograd_output_tiles_adjoint(g, out):
    return (_output_tiles_adjoint_f2 if out.shape[0] == 16 else _output_tiles_adjoint_f4)(g, out)


@njit(cache=True, inline="always")
def _gather_tile(x, n, r0, c0, alpha, d):
    """d[α·a + b, :] = x[n, r0 + a, c0 + b, :] for the α×α tile at (r0, c0) of image n, zeros outside it
    (an input tile over the padding, or a cotangent tile over the cropped edge)."""
    _, h, w, c = x.shape
    for a in range(alpha):
        for b in range(alpha):
            r, col = r0 + a, c0 + b
            if 0 <= r < h and 0 <= col < w:
                for ch in range(c):
                    d[alpha * a + b, ch] = x[n, r, col, ch]
            else:
                for ch in range(c):
                    d[alpha * a + b, ch] = 0.0


# ------------------------------------------------------------------ F(2×2, 3×3)
@njit(cache=True, parallel=True, error_model="numpy")
def _input_tiles_f2(x, ph, pw, out):
    m, h, w, c = x.shape
    th = (h + 2 * ph - 1) // 2
    tw = (w + 2 * pw - 1) // 2
    for t in prange(m * th):
        n = t // th
        r0 = 2 * (t % th) - ph
        d = np.empty((16, c), dtype=out.dtype)  # one tile, d[4a + b, :] = x[n, r0 + a, c0 + b, :]
        for tj in range(tw):
            c0 = 2 * tj - pw
            tile = t * tw + tj
            _gather_tile(x, n, r0, c0, 4, d)
            for b in range(4):  # Bᵀ d, column by column, in place
                for ch in range(c):
                    d[b, ch], d[4 + b, ch], d[8 + b, ch], d[12 + b, ch] = _bt(d[b, ch], d[4 + b, ch], d[8 + b, ch],
                                                                             d[12 + b, ch])
            for a in range(4):  # (Bᵀ d) B, row by row, into the output
                k = 4 * a
                for ch in range(c):
                    out[k, tile, ch], out[k + 1, tile, ch], out[k + 2, tile, ch], out[k + 3, tile, ch] = \
                        _bt(d[k, ch], d[k + 1, ch], d[k + 2, ch], d[k + 3, ch])
    return out


@njit(cache=True, inline="always")
def _output_tile_place(t, tj, th, tw, ho, wo, r):
    """Tile (row t of all images' tile rows, column tj) of r×r outputs: image n, first output pixel
    (i0, j0), how many of its r rows and r columns lie inside Ho × Wo, and its index in the tile arrays."""
    i0, j0 = r * (t % th), r * tj
    return t // th, i0, j0, min(r, ho - i0), min(r, wo - j0), t * tw + tj


@njit(cache=True, inline="always")
def _output_tile(mt, tile, o):
    """The 2×2 outputs Aᵀ M A of one tile and one output channel."""
    r00, r10 = _at(mt[0, tile, o], mt[4, tile, o], mt[8, tile, o], mt[12, tile, o])
    r01, r11 = _at(mt[1, tile, o], mt[5, tile, o], mt[9, tile, o], mt[13, tile, o])
    r02, r12 = _at(mt[2, tile, o], mt[6, tile, o], mt[10, tile, o], mt[14, tile, o])
    r03, r13 = _at(mt[3, tile, o], mt[7, tile, o], mt[11, tile, o], mt[15, tile, o])
    y00, y01 = _at(r00, r01, r02, r03)
    y10, y11 = _at(r10, r11, r12, r13)
    return y00, y01, y10, y11


@njit(cache=True, parallel=True, error_model="numpy")
def _output_tiles_f2(mt, ho, wo, out):
    m, _, _, o_count = out.shape
    th = (ho + 1) // 2
    tw = (wo + 1) // 2
    for t in prange(m * th):
        for tj in range(tw):
            n, i0, j0, rows, cols, tile = _output_tile_place(t, tj, th, tw, ho, wo, 2)
            if rows == 2 and cols == 2:
                for o in range(o_count):
                    out[n, i0, j0, o], out[n, i0, j0 + 1, o], out[n, i0 + 1, j0, o], out[n, i0 + 1, j0 + 1, o] = \
                        _output_tile(mt, tile, o)
            else:
                for o in range(o_count):
                    y00, y01, y10, y11 = _output_tile(mt, tile, o)
                    out[n, i0, j0, o] = y00
                    if cols == 2:
                        out[n, i0, j0 + 1, o] = y01
                    if rows == 2:
                        out[n, i0 + 1, j0, o] = y10
                        if cols == 2:
                            out[n, i0 + 1, j0 + 1, o] = y11
    return out


@njit(cache=True, inline="always")
def _adjoint_tile(g00, g01, g10, g11, out, tile, o):
    """out[:, tile, o] = A g Aᵀ for the 2×2 cotangent g of one tile and one output channel."""
    u00, u10, u20, u30 = _a(g00, g10)
    u01, u11, u21, u31 = _a(g01, g11)
    out[0, tile, o], out[1, tile, o], out[2, tile, o], out[3, tile, o] = _a(u00, u01)
    out[4, tile, o], out[5, tile, o], out[6, tile, o], out[7, tile, o] = _a(u10, u11)
    out[8, tile, o], out[9, tile, o], out[10, tile, o], out[11, tile, o] = _a(u20, u21)
    out[12, tile, o], out[13, tile, o], out[14, tile, o], out[15, tile, o] = _a(u30, u31)


@njit(cache=True, parallel=True, error_model="numpy")
def _output_tiles_adjoint_f2(g, out):
    m, ho, wo, o_count = g.shape
    th = (ho + 1) // 2
    tw = (wo + 1) // 2
    zero = np.zeros(1, dtype=g.dtype)[0]
    for t in prange(m * th):
        for tj in range(tw):
            n, i0, j0, rows, cols, tile = _output_tile_place(t, tj, th, tw, ho, wo, 2)
            if rows == 2 and cols == 2:
                for o in range(o_count):
                    _adjoint_tile(g[n, i0, j0, o], g[n, i0, j0 + 1, o], g[n, i0 + 1, j0, o], g[n, i0 + 1, j0 + 1, o],
                                  out, tile, o)
            else:
                for o in range(o_count):
                    g01 = g[n, i0, j0 + 1, o] if cols == 2 else zero
                    g10 = g[n, i0 + 1, j0, o] if rows == 2 else zero
                    g11 = g[n, i0 + 1, j0 + 1, o] if rows == 2 and cols == 2 else zero
                    _adjoint_tile(g[n, i0, j0, o], g01, g10, g11, out, tile, o)
    return out


# ------------------------------------------------------------------ F(4×4, 3×3)
@njit(cache=True, parallel=True, error_model="numpy")
def _input_tiles_f4(x, ph, pw, out):
    m, h, w, c = x.shape
    th = (h + 2 * ph + 1) // 4
    tw = (w + 2 * pw + 1) // 4
    for t in prange(m * th):
        n = t // th
        r0 = 4 * (t % th) - ph
        d = np.empty((36, c), dtype=out.dtype)  # one tile, d[6a + b, :] = x[n, r0 + a, c0 + b, :]
        for tj in range(tw):
            c0 = 4 * tj - pw
            tile = t * tw + tj
            _gather_tile(x, n, r0, c0, 6, d)
            for b in range(6):  # Bᵀ d, column by column, in place
                for ch in range(c):
                    d[b, ch], d[6 + b, ch], d[12 + b, ch], d[18 + b, ch], d[24 + b, ch], d[30 + b, ch] = _bt6(
                        d[b, ch], d[6 + b, ch], d[12 + b, ch], d[18 + b, ch], d[24 + b, ch], d[30 + b, ch])
            for a in range(6):  # (Bᵀ d) B, row by row, into the output
                k = 6 * a
                for ch in range(c):
                    (out[k, tile, ch], out[k + 1, tile, ch], out[k + 2, tile, ch], out[k + 3, tile, ch],
                     out[k + 4, tile, ch], out[k + 5, tile, ch]) = _bt6(
                        d[k, ch], d[k + 1, ch], d[k + 2, ch], d[k + 3, ch], d[k + 4, ch], d[k + 5, ch])
    return out


@njit(cache=True, parallel=True, error_model="numpy")
def _output_tiles_f4(mt, ho, wo, out):
    m, _, _, o_count = out.shape
    th = (ho + 3) // 4
    tw = (wo + 3) // 4
    for t in prange(m * th):
        s = np.empty((24, o_count), dtype=mt.dtype)  # s[6i + b] = (Aᵀ M)[i, b] of one tile
        for tj in range(tw):
            n, i0, j0, rows, cols, tile = _output_tile_place(t, tj, th, tw, ho, wo, 4)
            for b in range(6):  # Aᵀ M, column by column
                for o in range(o_count):
                    s[b, o], s[6 + b, o], s[12 + b, o], s[18 + b, o] = _at6(
                        mt[b, tile, o], mt[6 + b, tile, o], mt[12 + b, tile, o], mt[18 + b, tile, o],
                        mt[24 + b, tile, o], mt[30 + b, tile, o])
            for i in range(rows):  # (Aᵀ M) A, row by row, into the output
                k, row = 6 * i, i0 + i
                if cols == 4:
                    for o in range(o_count):
                        out[n, row, j0, o], out[n, row, j0 + 1, o], out[n, row, j0 + 2, o], out[n, row, j0 + 3, o] = \
                            _at6(s[k, o], s[k + 1, o], s[k + 2, o], s[k + 3, o], s[k + 4, o], s[k + 5, o])
                else:
                    for o in range(o_count):
                        y = _at6(s[k, o], s[k + 1, o], s[k + 2, o], s[k + 3, o], s[k + 4, o], s[k + 5, o])
                        for j in range(cols):
                            out[n, row, j0 + j, o] = y[j]
    return out


@njit(cache=True, parallel=True, error_model="numpy")
def _output_tiles_adjoint_f4(g, out):
    m, ho, wo, o_count = g.shape
    th = (ho + 3) // 4
    tw = (wo + 3) // 4
    for t in prange(m * th):
        q = np.empty((16, o_count), dtype=g.dtype)  # the tile's 4×4 cotangent, q[4a + b], zeros outside Ho × Wo
        s = np.empty((24, o_count), dtype=g.dtype)  # s[4k + b] = (A g)[k, b]
        for tj in range(tw):
            n, i0, j0, _, _, tile = _output_tile_place(t, tj, th, tw, ho, wo, 4)
            _gather_tile(g, n, i0, j0, 4, q)
            for b in range(4):  # A g, column by column
                for o in range(o_count):
                    s[b, o], s[4 + b, o], s[8 + b, o], s[12 + b, o], s[16 + b, o], s[20 + b, o] = _a6(
                        q[b, o], q[4 + b, o], q[8 + b, o], q[12 + b, o])
            for k in range(6):  # (A g) Aᵀ, row by row, into the output
                r = 6 * k
                for o in range(o_count):
                    (out[r, tile, o], out[r + 1, tile, o], out[r + 2, tile, o], out[r + 3, tile, o],
                     out[r + 4, tile, o], out[r + 5, tile, o]) = _a6(s[4 * k, o], s[4 * k + 1, o],
                                                                     s[4 * k + 2, o], s[4 * k + 3, o])
    return out
