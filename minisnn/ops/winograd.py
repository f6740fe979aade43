"""3×3 stride-1 convolution by Winograd's F(2×2, 3×3), forward and both gradients; derivation in `winograd.md`.

    y = Aᵀ [ U ⊙ V ] A  per 2×2 output tile,   U = G w Gᵀ (weights),  V = Bᵀ d B (4×4 input tile)

Summed over input channels, the 16 positions ξ of the transformed tiles are 16 independent
GEMMs, M[ξ] = V[ξ] @ U[ξ] ([tiles, C] @ [C, O]), with 2.25× fewer multiplications than
im2col's single GEMM ([pixels, 9·C] @ [9·C, O]).  The transforms of the data are kernels
(`kernels.winograd_*`, channels-last, like `conv.py`'s GEMM layout); the weight transforms
are small and done here with einsum.  The gradients are exact adjoints of the same linear
maps, so they are the gradients of this forward:

    ∂L/∂U[ξ] = V[ξ]ᵀ @ ∂L/∂M[ξ],  ∂L/∂M = A g Aᵀ per tile,  ∂L/∂w = Gᵀ (∂L/∂U) G
    ∂L/∂x    = the same forward run on g with w flipped and transposed, padding 2 − p

`conv.py` sends a convolution here when it is 3×3, stride 1, padding ≤ 2 and has enough
channels for the GEMMs to stay efficient (`use_winograd`).

Precision: the forward computes V, U, the 16 GEMMs and the output transform in FORWARD_DTYPE
(float64) and rounds once into the input's dtype, so a float32 forward is the float64 forward
rounded: it sits closer to float64 than PyTorch's float32 convolution.  In float32 arithmetic
the output transform adds up nine GEMM results per output, each carrying its own accumulated
rounding, and spikes flipped at rates above PyTorch's (measured in `winograd.md`).  The
gradients stay in the input's dtype: the backward's rounding decides no spike.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from .scratch import chunk_images, view as _view

CHUNK_BYTES = 16 << 20  # target size of one chunk's transformed tiles [16, tiles, channels]
MIN_CHANNELS = 16       # fewer input (or, for ∂x, output) channels: im2col's longer GEMMs win (winograd.md)
FORWARD_DTYPE = np.float64  # forward tiles, GEMMs, output transform; float32 results are rounded once (winograd.md)

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])  # [4, 3]


def use_winograd(w_shape, stride, padding) -> bool:
    """True for a 3×3, stride-1 convolution with padding ≤ 2 and at least MIN_CHANNELS in and out."""
    o, c, kh, kw = w_shape
    return ((kh, kw) == (3, 3) and tuple(stride) == (1, 1) and max(padding) <= 2
            and min(c, o) >= MIN_CHANNELS)


def weight_tiles(w: np.ndarray) -> np.ndarray:
    """w [O, C, 3, 3] → U [16, C, O], U[4i + j, c, o] = (G w[o, c] Gᵀ)[i, j]."""
    o, c = w.shape[:2]
    g = G.astype(w.dtype)
    return np.ascontiguousarray(np.einsum("ip,jq,ocpq->ijco", g, g, w).reshape(16, c, o))


def weight_tiles_adjoint(du: np.ndarray) -> np.ndarray:
    """∂L/∂U [16, C, O] → ∂L/∂w [O, C, 3, 3]: Gᵀ (∂L/∂U) G, the adjoint of `weight_tiles`."""
    c, o = du.shape[1:]
    g = G.astype(du.dtype)
    return np.ascontiguousarray(np.einsum("ip,jq,ijco->ocpq", g, g, du.reshape(4, 4, c, o)))


def _tiles(ho: int, wo: int) -> int:
    return ((ho + 1) // 2) * ((wo + 1) // 2)


def _conv_channels_last(x_last, u, padding, out_last, v_buf, m_buf):
    """Winograd convolution of channels-last images x_last [m, H, W, C] with U [16, C, O] into out_last [m, Ho, Wo, O].

    V, the GEMMs and the output transform are computed in the dtype of U and of the two buffers, which may
    be wider than x_last and out_last: the output transform then rounds each result once into out_last."""
    m, h, w, c = x_last.shape
    o = u.shape[2]
    tiles = m * _tiles(*out_last.shape[1:3])
    v = kernels.winograd_input_tiles(x_last, padding[0], padding[1], _view(v_buf, 16, tiles, c))
    mt = np.matmul(v, u, out=_view(m_buf, 16, tiles, o))
    return kernels.winograd_output_tiles(mt, out_last.shape[1], out_last.shape[2], out_last)


def _convolve(a3, u, shape, padding, out3):
    """out3 [N, O, Ho·Wo] = conv(a3 [N, C, H·W] seen as images of `shape` (H, W)), channels first in and out;
    the transformed tiles and the GEMMs are in u's dtype, which may be wider than a3's."""
    n, c, _ = a3.shape
    (h, w), o = shape, u.shape[2]
    ho, wo = h + 2 * padding[0] - 2, w + 2 * padding[1] - 2
    chunk = chunk_images(n, 16 * _tiles(ho, wo) * max(c, o) * u.itemsize, CHUNK_BYTES)
    a_buf = np.empty(chunk * h * w * c, a3.dtype)
    y_buf = np.empty(chunk * ho * wo * o, a3.dtype)
    v_buf = np.empty(chunk * 16 * _tiles(ho, wo) * c, u.dtype)
    m_buf = np.empty(chunk * 16 * _tiles(ho, wo) * o, u.dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = stop - start
        a_last = kernels.swap_last_axes(a3[start:stop], _view(a_buf, m, h * w, c)).reshape(m, h, w, c)
        y_last = _conv_channels_last(a_last, u, padding, _view(y_buf, m, ho, wo, o), v_buf, m_buf)
        kernels.swap_last_axes(y_last.reshape(m, ho * wo, o), out3[start:stop])
    return out3


def winograd_conv2d_forward(x: np.ndarray, w: np.ndarray, padding) -> np.ndarray:
    """y = conv2d(x, w), x [N, C, H, W], w [O, C, 3, 3], stride 1 → y [N, O, Ho, Wo] (no bias).

    Computed in FORWARD_DTYPE (or x's dtype where wider) and rounded once into x's dtype.
    """
    n, c, h, wd = x.shape
    o = w.shape[0]
    ho, wo = h + 2 * padding[0] - 2, wd + 2 * padding[1] - 2
    y = np.empty((n, o, ho * wo), dtype=x.dtype)
    u = weight_tiles(w.astype(np.promote_types(x.dtype, FORWARD_DTYPE), copy=False))
    _convolve(np.ascontiguousarray(x).reshape(n, c, h * wd), u, (h, wd), padding, y)
    return y.reshape(n, o, ho, wo)


def winograd_conv2d_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, padding, need_x: bool, need_w: bool):
    """(∂L/∂x, ∂L/∂w) of `winograd_conv2d_forward` for the cotangent g [N, O, Ho, Wo]; None where not needed.

    One pass over chunks of the batch: each chunk's g is moved channels last once and serves both
    ∂L/∂w (16 GEMMs V[ξ]ᵀ · A g Aᵀ) and ∂L/∂x (the forward on g with the flipped, transposed kernel).
    """
    n, c, h, wd = x.shape
    o, ho, wo = g.shape[1:]
    if not (need_x or need_w):
        return None, None
    g3 = np.ascontiguousarray(g).reshape(n, o, ho * wo)
    tiles = max(_tiles(ho, wo), _tiles(h, wd))                     # per image, for either pass
    chunk = chunk_images(n, 16 * tiles * max(c, o) * x.itemsize, CHUNK_BYTES)
    g_buf = np.empty(chunk * ho * wo * o, x.dtype)
    x_buf = np.empty(chunk * h * wd * c, x.dtype)                  # x, then ∂L/∂x, channels last
    c_buf = np.empty(chunk * 16 * tiles * c, x.dtype)              # V of x, then ∂L/∂x's M
    o_buf = np.empty(chunk * 16 * tiles * o, x.dtype)              # A g Aᵀ, then V of g
    dx = dw = None
    if need_x:
        u_flip = weight_tiles(np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)))  # [16, O, C]
        pad_flip = (2 - padding[0], 2 - padding[1])
        dx = np.empty((n, c, h * wd), dtype=x.dtype)
    if need_w:
        x3 = np.ascontiguousarray(x).reshape(n, c, h * wd)
        du = np.zeros((16, c, o), dtype=x.dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = stop - start
        g_last = kernels.swap_last_axes(g3[start:stop], _view(g_buf, m, ho * wo, o)).reshape(m, ho, wo, o)
        if need_w:
            x_last = kernels.swap_last_axes(x3[start:stop], _view(x_buf, m, h * wd, c)).reshape(m, h, wd, c)
            count = m * _tiles(ho, wo)
            v = kernels.winograd_input_tiles(x_last, padding[0], padding[1], _view(c_buf, 16, count, c))
            dm = kernels.winograd_output_tiles_adjoint(g_last, _view(o_buf, 16, count, o))
            du += np.matmul(v.transpose(0, 2, 1), dm)
        if need_x:
            dx_last = _conv_channels_last(g_last, u_flip, pad_flip, _view(x_buf, m, h, wd, c), o_buf, c_buf)
            kernels.swap_last_axes(dx_last.reshape(m, h * wd, c), dx[start:stop])
    if need_w:
        dw = weight_tiles_adjoint(du)
    return None if dx is None else dx.reshape(x.shape), dw
