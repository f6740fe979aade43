"""3×3 stride-1 convolution by Winograd's F(r×r, 3×3), r = 2 or 4, forward and both gradients;
derivation in `winograd.md`.

    y = Aᵀ [ U ⊙ V ] A  per r×r output tile,   U = G w Gᵀ (weights),  V = Bᵀ d B (α×α input tile, α = r + 2)

Summed over input channels, the α² positions ξ of the transformed tiles are α² independent
GEMMs, M[ξ] = V[ξ] @ U[ξ] ([tiles, C] @ [C, O]), with α²/(9r²) of im2col's multiplications
([pixels, 9·C] @ [9·C, O]): 2.25× fewer for F(2×2), 4× for F(4×4).  They are small, and run
spread over the BLAS threads, a part of the α² per thread (`blas_threads.md`).  The transforms of the data
are kernels (`kernels.winograd_*`, channels-last, like `conv.py`'s GEMM layout); the weight
transforms are small, one GEMM each with G ⊗ G (`weight_tiles`).  The gradients are exact
adjoints of the same linear maps, so they are the gradients of this forward:

    ∂L/∂U[ξ] = V[ξ]ᵀ @ ∂L/∂M[ξ],  ∂L/∂M = A g Aᵀ per tile,  ∂L/∂w = Gᵀ (∂L/∂U) G
    ∂L/∂x    = the same forward run on g with w flipped and transposed, padding 2 − p

`conv.py` sends a convolution here when it is 3×3, stride 1, padding ≤ 2 and has enough
channels for the GEMMs to stay efficient (`use_winograd`); `tile_for` picks r per call.

Precision: the forward computes V, U, the GEMMs and the output transform in FORWARD_DTYPE
(float64) and rounds once into the input's dtype, so a float32 forward is the float64 forward
rounded, whichever r: it sits closer to float64 than PyTorch's float32 convolution.  In float32
arithmetic the output transform adds up α² GEMM results per output, each carrying its own
accumulated rounding, and spikes flipped at rates above PyTorch's (measured in `winograd.md`).
The gradients stay in the input's dtype: the backward's rounding decides no spike.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..kernels.reference.winograd import TILE_OF_POSITIONS  # α² -> r, as the kernels read it
from . import blas_threads, layout
from .norm import folded_weights
from .scratch import chunk_images, view as _view

CHUNK_BYTES = 4 << 20   # target size of one chunk's transformed tiles [α², tiles, max(C, O)] (winograd.md) ...
CHUNK_ROWS_PER_CHANNEL = 2  # ... unless its GEMMs would get fewer rows (tiles) than this × max(C, O) ...
CHUNK_BYTES_MAX = 64 << 20  # ... but never more than this: a very wide layer must not take gigabytes of scratch
MIN_CHANNELS = 16       # fewer input (or, for ∂x, output) channels: im2col's longer GEMMs win (winograd.md)
FORWARD_DTYPE = np.float64  # forward tiles, GEMMs, output transform; float32 results are rounded once (winograd.md)
TILE = 4                # the largest r of a float32 forward's F(r×r, 3×3): 4 (α = 6, 36 GEMMs) or 2 (α = 4, 16)
BACKWARD_TILE = 4       # the same for ∂L/∂x and ∂L/∂w, which compute in the input's dtype (winograd.md)
F4_MIN_ROWS = 0.25      # F(4×4) where its GEMMs get >= this many rows per channel of max(C, O) (`tile_for`) ...
F4_MAX_WORK = 0.75      # ... and it needs at most this fraction of F(2×2)'s multiplications (edge tiles)
FLOAT64_TILE = 2        # the largest r for float64 inputs: F(2×2) keeps the exact zeros of direct convolution

# G of F(r×r, 3×3), [α, 3], by r: the weight transform U = G w Gᵀ (Bᵀ and Aᵀ: kernels.reference.winograd)
G = {2: np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]]),
     4: np.array([[1 / 4, 0.0, 0.0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0.0, 0.0, 1.0]])}


def use_winograd(w_shape, stride, padding) -> bool:
    """True for a 3×3, stride-1 convolution with padding ≤ 2 and at least MIN_CHANNELS in and out."""
    o, c, kh, kw = w_shape
    return ((kh, kw) == (3, 3) and tuple(stride) == (1, 1) and max(padding) <= 2
            and min(c, o) >= MIN_CHANNELS)


def tile_for(n: int, ho: int, wo: int, channels: int, dtype, largest: int) -> int:
    """The output tile size r for n outputs of Ho × Wo in `dtype`: 4 if `largest` allows it (float64: up to
    FLOAT64_TILE), F(4×4)'s 36 GEMMs get at least F4_MIN_ROWS × channels rows (n·⌈Ho/4⌉·⌈Wo/4⌉ tiles;
    channels = max(C, O)) and its tiles, edges included, need at most F4_MAX_WORK of F(2×2)'s
    multiplications; else 2.  With fewer rows the transformed weights (36·C·O numbers, 2.25× F(2×2)'s)
    dominate; on a 5×5 output the 4×4 tiles compute 8×8.  Measured in winograd.md ("Which tile size")."""
    if np.dtype(dtype) != np.float32:
        largest = min(largest, FLOAT64_TILE)
    tiles4 = _tiles(ho, wo, 4)
    if (largest == 4 and n * tiles4 >= F4_MIN_ROWS * channels
            and 36 * tiles4 <= F4_MAX_WORK * 16 * _tiles(ho, wo, 2)):
        return 4
    return 2


def weight_tiles(w: np.ndarray, r: int = 2) -> np.ndarray:
    """w [O, C, 3, 3] → U [α², C, O], U[α·i + j, c, o] = (G w[o, c] Gᵀ)[i, j], G of F(r×r, 3×3).

    One GEMM: U[ξ] = Σ_pq (G ⊗ G)[ξ, 3p + q] · w[:, :, p, q]ᵀ, with (G ⊗ G) [α², 9]."""
    o, c = w.shape[:2]
    g = G[r].astype(w.dtype)
    w_taps = np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(9, c * o)   # [9, C·O]
    return (np.kron(g, g) @ w_taps).reshape(-1, c, o)


def weight_tiles_adjoint(du: np.ndarray) -> np.ndarray:
    """∂L/∂U [α², C, O] → ∂L/∂w [O, C, 3, 3]: Gᵀ (∂L/∂U) G, the adjoint of `weight_tiles`: (G ⊗ G)ᵀ ∂L/∂U."""
    positions, c, o = du.shape
    g = G[TILE_OF_POSITIONS[positions]].astype(du.dtype)
    dw_taps = np.kron(g, g).T @ np.ascontiguousarray(du).reshape(positions, c * o)   # [9, C·O]
    return np.ascontiguousarray(dw_taps.reshape(3, 3, c, o).transpose(3, 2, 0, 1))


def _tiles(ho: int, wo: int, r: int) -> int:
    """Tiles of r×r outputs covering Ho × Wo."""
    return -(-ho // r) * -(-wo // r)


def _chunk(n: int, tiles_per_image: int, channels: int, bytes_per_image: int) -> int:
    """Images per chunk: about CHUNK_BYTES of transformed tiles, but enough for CHUNK_ROWS_PER_CHANNEL ×
    channels GEMM rows (channels = max(C, O)), since the short GEMMs of wide layers run far below BLAS's
    rate, as long as that stays within CHUNK_BYTES_MAX."""
    by_rows = min(-(-CHUNK_ROWS_PER_CHANNEL * channels // tiles_per_image),
                  chunk_images(n, bytes_per_image, CHUNK_BYTES_MAX))
    return min(n, max(chunk_images(n, bytes_per_image, CHUNK_BYTES), by_rows))


def _conv_channels_last(x_last, u, padding, out_last, v_buf, m_buf, bias=None):
    """Winograd convolution of channels-last images x_last [m, H, W, C] with U [α², C, O] into out_last [m, Ho, Wo, O],
    plus bias [O] if given.

    V, the GEMMs and the output transform are computed in the dtype of U and of the two buffers, which may
    be wider than x_last and out_last: the output transform then rounds each result once into out_last.  The
    bias joins M at tile position (1, 1) before the output transform, which carries that position to every
    output of its tile with coefficient 1 (column 1 of Aᵀ is all ones, for r = 2 and 4)."""
    m, h, w, c = x_last.shape
    positions, _, o = u.shape
    r = TILE_OF_POSITIONS[positions]
    tiles = m * _tiles(*out_last.shape[1:3], r)
    v = kernels.winograd_input_tiles(x_last, padding[0], padding[1], _view(v_buf, positions, tiles, c))
    mt = blas_threads.matmul(v, u, _view(m_buf, positions, tiles, o))
    if bias is not None:
        mt[(r + 2) + 1] += bias
    return kernels.winograd_output_tiles(mt, out_last.shape[1], out_last.shape[2], out_last)


def _convolve(x, u, padding, y, bias=None):
    """y [N, O, Ho, Wo] = conv(x [N, C, H, W]) + bias with U [α², C, O] of F(r×r, 3×3); x and y each either
    C-contiguous or the view of a channels-last array, read and written in channels-last chunks
    (`layout.LastChunks`).  The transformed tiles, the GEMMs and the bias are in u's dtype, which may be
    wider than x's."""
    n, c, h, w = x.shape
    (positions, _, o), (ho, wo) = u.shape, y.shape[2:]
    tiles = _tiles(ho, wo, TILE_OF_POSITIONS[positions])
    per_image = positions * tiles   # transformed tiles of one channel
    chunk = _chunk(n, tiles, max(c, o), per_image * max(c, o) * u.itemsize)
    images, results = layout.LastChunks(x, chunk), layout.LastChunks(y, chunk)
    v_buf = np.empty(chunk * per_image * c, u.dtype)
    m_buf = np.empty(chunk * per_image * o, u.dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out = results.slot(start, stop)
        _conv_channels_last(images.read(start, stop), u, padding, out, v_buf, m_buf, bias)
        results.store(start, stop, out)
    return y


def winograd_conv2d_forward(x: np.ndarray, w: np.ndarray, padding, bias=None, affine=None,
                            channels_last_ok: bool = False) -> np.ndarray:
    """y = conv2d(x, w) + bias, x [N, C, H, W], w [O, C, 3, 3], bias [O] | None, stride 1 → y [N, O, Ho, Wo];
    with affine = (scale, shift), float64 [O], y ← scale·y + shift per output channel.

    Computed in FORWARD_DTYPE (or x's dtype where wider), the affine map included (scale multiplies the
    weights, scale·bias + shift is the bias), and rounded once into x's dtype.  A channels-last x (`layout`)
    is read as it is; channels_last_ok: y may be returned as the view of a channels-last array.
    """
    n, c, h, wd = x.shape
    o = w.shape[0]
    ho, wo = h + 2 * padding[0] - 2, wd + 2 * padding[1] - 2
    y = layout.empty_images((n, o, ho, wo), x.dtype, channels_last_ok)
    r = tile_for(n, ho, wo, max(c, o), x.dtype, TILE)
    wide = np.promote_types(x.dtype, FORWARD_DTYPE)
    if affine is None:
        w_wide, bias_wide = w.astype(wide, copy=False), None if bias is None else bias.astype(wide)
    else:
        w_wide, bias_wide = folded_weights(w, bias, *affine, dtype=wide)
    return _convolve(x, weight_tiles(w_wide, r), padding, y, bias_wide)


def winograd_conv2d_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, padding, need_x: bool, need_w: bool):
    """(∂L/∂x, ∂L/∂w) of `winograd_conv2d_forward` for the cotangent g [N, O, Ho, Wo]; None where not needed.

    One pass over chunks of the batch: each chunk's g is moved channels last once and serves both
    ∂L/∂w (α² GEMMs V[ξ]ᵀ · A g Aᵀ) and ∂L/∂x (the forward on g with the flipped, transposed kernel).
    """
    n, c, h, wd = x.shape
    o, ho, wo = g.shape[1:]
    if not (need_x or need_w):
        return None, None
    r_w = tile_for(n, ho, wo, max(c, o), x.dtype, BACKWARD_TILE)    # tiles of g, for ∂w
    r_x = tile_for(n, h, wd, max(c, o), x.dtype, BACKWARD_TILE)     # tiles of ∂x
    positions_w, positions_x = (r_w + 2) ** 2, (r_x + 2) ** 2
    tiles_w, tiles_x = _tiles(ho, wo, r_w), _tiles(h, wd, r_x)     # per image
    per_image = max(positions_w * tiles_w, positions_x * tiles_x)   # transformed tiles of one channel, either pass
    chunk = _chunk(n, min(tiles_w, tiles_x), max(c, o), per_image * max(c, o) * x.itemsize)
    cotangents = layout.LastChunks(g, chunk)
    x_buf = np.empty(chunk * h * wd * c, x.dtype)                  # x, then ∂L/∂x, channels last
    c_buf = np.empty(chunk * per_image * c, x.dtype)               # V of x, then ∂L/∂x's M
    o_buf = np.empty(chunk * per_image * o, x.dtype)               # A g Aᵀ, then V of g
    dx = dw = None
    if need_x:
        w_flip = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        u_flip = weight_tiles(w_flip, r_x)                          # [α², O, C]
        pad_flip = (2 - padding[0], 2 - padding[1])
        dx = np.empty(x.shape, dtype=x.dtype)
        dx_chunks = layout.LastChunks(dx, chunk, x_buf)
    if need_w:
        images = layout.LastChunks(x, chunk, x_buf)
        du = np.zeros((positions_w, c, o), dtype=x.dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        g_last = cotangents.read(start, stop)
        if need_w:
            x_last = images.read(start, stop)
            count = (stop - start) * tiles_w
            v = kernels.winograd_input_tiles(x_last, padding[0], padding[1], _view(c_buf, positions_w, count, c))
            dm = kernels.winograd_output_tiles_adjoint(g_last, _view(o_buf, positions_w, count, o))
            def add_positions(s, v=v, dm=dm):
                du[s] += np.matmul(v[s].transpose(0, 2, 1), dm[s])

            blas_threads.for_parts(positions_w, add_positions)
        if need_x:
            dx_last = _conv_channels_last(g_last, u_flip, pad_flip, dx_chunks.slot(start, stop), o_buf, c_buf)
            dx_chunks.store(start, stop, dx_last)
    if need_w:
        dw = weight_tiles_adjoint(du)
    return dx, dw
