"""Winograd F(2×2, 3×3) tile transforms for 3×3 stride-1 convolution, NumPy reference
(the specification of `jit.winograd`).  Derivation: `ops/winograd.md`.

A 3×3 convolution computes each 2×2 block of outputs from a 4×4 tile of the (padded) input:

    Y = Aᵀ [ (G w Gᵀ) ⊙ (Bᵀ d B) ] A          d: 4×4 input tile, w: 3×3 kernel, Y: 2×2 outputs

With the 16 positions ξ of the 4×4 transformed tile kept apart, the channel sum inside ⊙
becomes 16 independent GEMMs M[ξ] = V[ξ] @ U[ξ], V[ξ] [tiles, C], U[ξ] [C, O]: 16 / (4·9)
of the multiplications of direct convolution (2.25× fewer).  These kernels do the
data-sized parts, on channels-last images (the GEMM-friendly layout of `conv.py`):

* `winograd_input_tiles`:  x [m, H, W, C] → V [16, m·th·tw, C],  V = Bᵀ d B per tile
* `winograd_output_tiles`: M [16, m·th·tw, O] → y [m, Ho, Wo, O], y = Aᵀ M A per tile (cropped)
* `winograd_output_tiles_adjoint`: g [m, Ho, Wo, O] → dM [16, m·th·tw, O], dM = A g Aᵀ

where Ho = H + 2·ph − 2, th = ⌈Ho / 2⌉ (likewise W), tiles are ordered (image, tile row,
tile column) and ξ = 4·(row in the tile) + (column in the tile).  Inputs outside the image
are zeros (padding), outputs beyond Ho, Wo are dropped (adjoint: taken as zeros).

Dtypes: the input transform computes in out's dtype (float32 images may be transformed into
float64 tiles, exactly); the output transforms compute in the dtype of their input (mt, g)
and round each result once into out, which may be narrower (float64 GEMMs, float32 output).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["winograd_input_tiles", "winograd_output_tiles", "winograd_output_tiles_adjoint"]

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)  # Bᵀ [4, 4]
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)                               # Aᵀ [2, 4]


def _tiles(ho: int, wo: int) -> tuple[int, int]:
    return (ho + 1) // 2, (wo + 1) // 2


def winograd_input_tiles(x, ph, pw, out):
    """x [m, H, W, C] -> out [16, m·th·tw, C] (written in place and returned): V = Bᵀ d B for every 4×4 tile d."""
    m, h, w, c = x.shape
    th, tw = _tiles(h + 2 * ph - 2, w + 2 * pw - 2)
    x_pad = np.zeros((m, 2 * th + 2, 2 * tw + 2, c), out.dtype)  # 2·th + 2 >= H + 2·ph: room for x and every tile
    x_pad[:, ph:ph + h, pw:pw + w] = x
    d = sliding_window_view(x_pad, (4, 4), axis=(1, 2))[:, ::2, ::2]  # [m, th, tw, C, 4, 4]
    bt = BT.astype(out.dtype)
    rows = np.einsum("ia,mtucab->mtucib", bt, d)             # Bᵀ d: down the columns first ...
    v = np.einsum("jb,mtucib->ijmtuc", bt, rows)             # ... then (Bᵀ d) B along the rows
    out[...] = v.reshape(16, m * th * tw, c)
    return out


def winograd_output_tiles(mt, ho, wo, out):
    """mt [16, m·th·tw, O] -> out [m, Ho, Wo, O] (written in place and returned): y = Aᵀ M A, cropped to Ho × Wo."""
    m, o = out.shape[0], out.shape[3]
    th, tw = _tiles(ho, wo)
    a = AT.astype(mt.dtype)
    rows = np.einsum("ai,ijmtuo->ajmtuo", a, mt.reshape(4, 4, m, th, tw, o))     # Aᵀ M, then (Aᵀ M) A
    y = np.einsum("bj,ajmtuo->mtaubo", a, rows)                                  # [m, th, 2, tw, 2, O]
    out[...] = y.reshape(m, 2 * th, 2 * tw, o)[:, :ho, :wo]
    return out


def winograd_output_tiles_adjoint(g, out):
    """g [m, Ho, Wo, O] -> out [16, m·th·tw, O] (written in place and returned): dM = A g Aᵀ, the adjoint of
    `winograd_output_tiles` (outputs beyond Ho × Wo count as zeros)."""
    m, ho, wo, o = g.shape
    th, tw = _tiles(ho, wo)
    g_pad = np.zeros((m, 2 * th, 2 * tw, o), dtype=g.dtype)
    g_pad[:, :ho, :wo] = g
    a = AT.astype(g.dtype)
    rows = np.einsum("ai,mtaubo->imtubo", a, g_pad.reshape(m, th, 2, tw, 2, o))  # A g, then (A g) Aᵀ
    dm = np.einsum("bj,imtubo->ijmtuo", a, rows)
    out[...] = dm.reshape(16, m * th * tw, o)
    return out
