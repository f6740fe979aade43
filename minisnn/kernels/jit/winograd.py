"""Winograd F(2×2, 3×3) tile transforms, Numba version of `reference.winograd` (same names,
signatures and results: the transforms only add and subtract, in the reference's order, so
both agree bit for bit, which the tests check).

Rows of tiles run in parallel (`prange` over image × tile row); every thread writes its
own tiles, so there are no write conflicts.  The inner loop runs over channels, which are
contiguous in both the channels-last images and the [16, tiles, C] transformed arrays, so
Numba vectorises it.  The input transform first copies a tile into a [16, C] scratch (zeros
where it covers the padding), transforms it there column by column, then row by row into
the output: every loop touches at most eight rows.  Transforming straight from the image
into the 16 output rows was 5-7× slower (32 memory streams in one loop, measured in
`ops/winograd.md`).  The output transforms test each of the four outputs on tiles that
overhang the cropped edge; other tiles write directly.  Each 4-point transform is written
out (Bᵀ and Aᵀ have entries 0 and ±1).  Like the reference, the input transform computes in
out's dtype and the output transforms in mt's/g's, so float32 images can be transformed into
float64 tiles and float64 GEMM results rounded once into float32 outputs.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["winograd_input_tiles", "winograd_output_tiles", "winograd_output_tiles_adjoint"]


@njit(cache=True, inline="always")
def _bt(a0, a1, a2, a3):
    """Bᵀ a for a 4-vector a."""
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


@njit(cache=True, inline="always")
def _at(a0, a1, a2, a3):
    """Aᵀ a for a 4-vector a."""
    return a0 + a1 + a2, a1 - a2 - a3


@njit(cache=True, inline="always")
def _a(b0, b1):
    """A b for a 2-vector b."""
    return b0, b0 + b1, b0 - b1, -b1


@njit(cache=True, parallel=True, error_model="numpy")
def winograd_input_tiles(x, ph, pw, out):
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
            for a in range(4):
                for b in range(4):
                    r, col = r0 + a, c0 + b
                    if 0 <= r < h and 0 <= col < w:
                        for ch in range(c):
                            d[4 * a + b, ch] = x[n, r, col, ch]
                    else:
                        for ch in range(c):
                            d[4 * a + b, ch] = 0.0
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
def _output_tile_place(t, tj, th, tw, ho, wo):
    """Tile (row t of all images' tile rows, column tj): image n, first output pixel (i0, j0),
    how many of its 2 rows and 2 columns lie inside Ho × Wo, and its index in the tile arrays."""
    i0, j0 = 2 * (t % th), 2 * tj
    return t // th, i0, j0, min(2, ho - i0), min(2, wo - j0), t * tw + tj


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
def winograd_output_tiles(mt, ho, wo, out):
    m, _, _, o_count = out.shape
    th = (ho + 1) // 2
    tw = (wo + 1) // 2
    for t in prange(m * th):
        for tj in range(tw):
            n, i0, j0, rows, cols, tile = _output_tile_place(t, tj, th, tw, ho, wo)
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
def winograd_output_tiles_adjoint(g, out):
    m, ho, wo, o_count = g.shape
    th = (ho + 1) // 2
    tw = (wo + 1) // 2
    zero = np.zeros(1, dtype=g.dtype)[0]
    for t in prange(m * th):
        for tj in range(tw):
            n, i0, j0, rows, cols, tile = _output_tile_place(t, tj, th, tw, ho, wo)
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
