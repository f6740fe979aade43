"""Winograd F(2×2, 3×3) and F(4×4, 3×3) tile transforms for 3×3 stride-1 convolution, NumPy
reference (the specification of `jit.winograd`).  Derivation: `ops/winograd.md`.

A 3×3 convolution computes each r×r block of outputs (r = 2 or 4) from an α×α tile of the
(padded) input, α = r + 2:

    Y = Aᵀ [ (G w Gᵀ) ⊙ (Bᵀ d B) ] A          d: α×α input tile, w: 3×3 kernel, Y: r×r outputs

With the α² positions ξ of the transformed tile kept apart, the channel sum inside ⊙ becomes
α² independent GEMMs M[ξ] = V[ξ] @ U[ξ], V[ξ] [tiles, C], U[ξ] [C, O]: α² / (r²·9) of the
multiplications of direct convolution (2.25× fewer for r = 2, 4× for r = 4).  These kernels do
the data-sized parts, on channels-last images (the GEMM-friendly layout of `conv.py`):

* `winograd_input_tiles`:  x [m, H, W, C] → V [α², m·th·tw, C],  V = Bᵀ d B per tile
* `winograd_output_tiles`: M [α², m·th·tw, O] → y [m, Ho, Wo, O], y = Aᵀ M A per tile (cropped)
* `winograd_output_tiles_adjoint`: g [m, Ho, Wo, O] → dM [α², m·th·tw, O], dM = A g Aᵀ

The tile size is read from the first axis of V / M / dM (16: r = 2, 36: r = 4).  Ho = H + 2·ph − 2,
th = ⌈Ho / r⌉ (likewise W); tiles are ordered (image, tile row, tile column) and ξ = α·(row in
the tile) + (column in the tile).  Inputs outside the image are zeros (padding), outputs beyond
Ho, Wo are dropped (adjoint: taken as zeros).

The 1-D transforms below (`input_1d`, `output_1d`, `adjoint_1d`: Bᵀa, Aᵀa and A b, written out)
are the only statement of the matrices: this reference applies them to whole arrays, and the
Numba kernels inline the same functions on numbers, in the same order (columns first, then rows),
so both agree bit for bit.  Dtypes: the input transform computes in out's dtype (float32 images
may be transformed into float64 tiles, exactly); the output transforms compute in the dtype of
their input (mt, g) and round each result once into out, which may be narrower.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["winograd_input_tiles", "winograd_output_tiles", "winograd_output_tiles_adjoint"]


# ------------------------------------------------------------------ F(2×2, 3×3): α = 4
def input_1d_f2(a0, a1, a2, a3):
    """Bᵀ a, Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]."""
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


def output_1d_f2(a0, a1, a2, a3):
    """Aᵀ a, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]."""
    return a0 + a1 + a2, a1 - a2 - a3


def adjoint_1d_f2(b0, b1):
    """A b, the adjoint of `output_1d_f2`."""
    return b0, b0 + b1, b0 - b1, -b1


# ------------------------------------------------------------------ F(4×4, 3×3): α = 6
# Products by 2, 4 and 8 are written as sums (t + t is exactly 2t), so the Numba kernels that
# inline these functions keep float32 in float32 (an integer constant would promote to float64).
def input_1d_f4(a0, a1, a2, a3, a4, a5):
    """Bᵀ a, Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0],
                  [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]]."""
    d02, d13, s12, d12 = a0 - a2, a1 - a3, a1 + a2, a1 - a2
    e2, e3 = a4 - a2, a4 - a3
    d02, d13, s12, d12 = d02 + d02, d13 + d13, s12 + s12, d12 + d12          # 2·(…)
    return (d02 + d02 + e2, a3 + a4 - (s12 + s12), d12 + d12 + e3,
            e2 - d13, e2 + d13, d13 + d13 + (a5 - a3))


def output_1d_f4(a0, a1, a2, a3, a4, a5):
    """Aᵀ a, Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]]."""
    p, m, q, n = a1 + a2, a1 - a2, a3 + a4, a3 - a4
    q2, n2 = q + q, n + n
    n4 = n2 + n2
    return a0 + p + q, m + n2, p + (q2 + q2), m + (n4 + n4) + a5


def adjoint_1d_f4(b0, b1, b2, b3):
    """A b, the adjoint of `output_1d_f4`: (b0, b0+b1+b2+b3, b0−b1+b2−b3, b0+2b1+4b2+8b3, b0−2b1+4b2−8b3, b3)."""
    e, o = b0 + b2, b1 + b3
    t, u = b2 + b2, b3 + b3
    e4, o4 = b0 + (t + t), b1 + (u + u)                                        # b0 + 4b2, b1 + 4b3
    return b0, e + o, e - o, e4 + (o4 + o4), e4 - (o4 + o4), b3


# tile size r -> (α, Bᵀ, Aᵀ, A), the 1-D transforms of F(r×r, 3×3)
TRANSFORMS = {2: (4, input_1d_f2, output_1d_f2, adjoint_1d_f2), 4: (6, input_1d_f4, output_1d_f4, adjoint_1d_f4)}
TILE_OF_POSITIONS = {16: 2, 36: 4}   # α² -> r


def _tiles(ho: int, wo: int, r: int) -> tuple[int, int]:
    return -(-ho // r), -(-wo // r)


def _two_pass(transform, tile, n_out: int):
    """transform applied down the columns of tile [..., k, k] (its axes −2), then along the rows:
    the [..., n_out, n_out] result of transform(tile) transform(·)ᵀ, computed as the kernels do."""
    k = tile.shape[-1]
    cols = transform(*(tile[..., i, :] for i in range(k)))            # n_out arrays [..., k]
    return np.stack([np.stack(transform(*(row[..., j] for j in range(k))), axis=-1) for row in cols], axis=-2)


def winograd_input_tiles(x, ph, pw, out):
    """x [m, H, W, C] -> out [α², m·th·tw, C] (written in place and returned): V = Bᵀ d B for every α×α tile d."""
    m, h, w, c = x.shape
    r = TILE_OF_POSITIONS[out.shape[0]]
    alpha, input_1d = TRANSFORMS[r][:2]
    th, tw = _tiles(h + 2 * ph - 2, w + 2 * pw - 2, r)
    x_pad = np.zeros((m, r * th + 2, r * tw + 2, c), out.dtype)  # r·th + 2 >= H + 2·ph: room for x and every tile
    x_pad[:, ph:ph + h, pw:pw + w] = x
    d = sliding_window_view(x_pad, (alpha, alpha), axis=(1, 2))[:, ::r, ::r]  # [m, th, tw, C, α, α]
    v = _two_pass(input_1d, d, alpha)                                         # [m, th, tw, C, α, α]
    out[...] = v.transpose(4, 5, 0, 1, 2, 3).reshape(alpha * alpha, m * th * tw, c)
    return out


def winograd_output_tiles(mt, ho, wo, out):
    """mt [α², m·th·tw, O] -> out [m, Ho, Wo, O] (written in place and returned): y = Aᵀ M A, cropped to Ho × Wo."""
    m, o = out.shape[0], out.shape[3]
    r = TILE_OF_POSITIONS[mt.shape[0]]
    alpha, _, output_1d, _ = TRANSFORMS[r]
    th, tw = _tiles(ho, wo, r)
    tiles = mt.reshape(alpha, alpha, m, th, tw, o).transpose(2, 3, 4, 5, 0, 1)  # [m, th, tw, O, α, α]
    y = _two_pass(output_1d, tiles, r)                                           # [m, th, tw, O, r, r]
    out[...] = y.transpose(0, 1, 4, 2, 5, 3).reshape(m, r * th, r * tw, o)[:, :ho, :wo]
    return out


def winograd_output_tiles_adjoint(g, out):
    """g [m, Ho, Wo, O] -> out [α², m·th·tw, O] (written in place and returned): dM = A g Aᵀ, the adjoint of
    `winograd_output_tiles` (outputs beyond Ho × Wo count as zeros)."""
    m, ho, wo, o = g.shape
    r = TILE_OF_POSITIONS[out.shape[0]]
    alpha, _, _, adjoint_1d = TRANSFORMS[r]
    th, tw = _tiles(ho, wo, r)
    g_pad = np.zeros((m, r * th, r * tw, o), dtype=g.dtype)
    g_pad[:, :ho, :wo] = g
    tiles = g_pad.reshape(m, th, r, tw, r, o).transpose(0, 1, 3, 5, 2, 4)         # [m, th, tw, O, r, r]
    dm = _two_pass(adjoint_1d, tiles, alpha)                                       # [m, th, tw, O, α, α]
    out[...] = dm.transpose(4, 5, 0, 1, 2, 3).reshape(alpha * alpha, m * th * tw, o)
    return out
