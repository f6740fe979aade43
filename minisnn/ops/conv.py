"""Convolution (cross-correlation, groups=1) as im2col + one GEMM; derivation in `conv.md`.

    y[n, o, i, j] = b[o] + Σ_{c,p,q} W[o, c, p, q] · x_pad[n, c, i·sh + p, j·sw + q]

Forward: gather every receptive field into one row of a column matrix `cols`
[pixels, kh·kw·C] (im2col, `kernels.im2col_rows`, channels last, zero padding fused) and
multiply: y_rows = cols @ W₂ᵀ with W₂ = W permuted to [O, kh·kw·C].  Backward:
dW₂ᵀ = colsᵀ @ g_rows, dcols = g_rows @ W₂, and dx is dcols added back onto the pixels it
was copied from (col2im, `kernels.col2im_rows`).  Pixels as the long GEMM dimension run
1.3-2.5x faster in OpenBLAS than the [O, K] @ [K, pixels] orientation (measured in conv.md).

The batch is processed in chunks of a few images, so `cols` stays a few MiB (cache
sized, reused between chunks) instead of kh·kw times the whole input.  Each chunk moves
between the layers' channels-first layout and the GEMMs' pixel-major one with
`kernels.swap_last_axes` (a tiled, parallel transpose).  A 1×1 kernel
without padding needs no im2col at all: y[n] = W₂ @ x[n] is a stack of GEMMs, one per image, spread
over the BLAS threads (`blas_threads.md`).
A 3×3 stride-1 kernel with enough channels goes to Winograd's F(2×2, 3×3) or, in float32,
F(4×4, 3×3) (`winograd.py`), which need 2.25× and 4× fewer multiplications than the im2col GEMM;
the forward computes in float64 (a float32 result is rounded once: `winograd.md`).
A stride-1 forward with a kernel larger than 1×1 whose input is mostly zeros, as spikes are, sums over the
nonzero inputs (the events) instead, in float64, rounded once (`kernels.event_conv2d`; when it pays:
`event_conv.md`).
Conv1d runs the same code on [N, C, 1, L] views.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import grad_mode
from ..autograd.function import Function
from . import blas_threads, layout, winograd
from .linear import input_events
from .norm import folded_weights, scaled_cotangent
from .scratch import chunk_images, view as _view

CHUNK_BYTES = 16 << 20  # target size of one chunk's column matrix (measured best of 4-64 MiB)
PER_IMAGE_PIXELS = 256  # 1×1 weight gradient: per-image GEMMs from this many output pixels up (conv.md)
BIAS_STEP_BYTES = 1 << 20  # 1×1 forward: the bias joins the output this many bytes of images at a time
EVENT_DENSITY = 0.1     # a stride-1 forward with at most this fraction of nonzero inputs sums over them (event_conv.md)


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"conv2d: {name} must be an int or a pair of ints, got {value}")
    return value


def _check(x_shape, w_shape, dtypes, b, stride, padding, op: str) -> None:
    """Validate a conv2d call on x [N, C, H, W] and w [O, C, kh, kw] (dtypes: theirs; b: bias or None)."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected input of shape [N, C, H, W], got a {len(x_shape)}-d array of shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"{op}: expected weight of shape [O, C, kh, kw], got shape {w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"{op}: input has {x_shape[1]} channels but the weight expects {w_shape[1]} (weight shape {w_shape})"
        )
    if dtypes[0] != dtypes[1]:
        raise TypeError(f"{op}: input dtype {dtypes[0]} differs from weight dtype {dtypes[1]}; cast one of them")
    if b is not None and (b.shape != (w_shape[0],) or b.dtype != dtypes[1]):
        raise ValueError(f"{op}: bias must have shape ({w_shape[0]},) and dtype {dtypes[1]}, got {b.shape} {b.dtype}")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: stride must be >= 1 and padding >= 0, got stride {stride}, padding {padding}")
    ho = output_size(x_shape[2], w_shape[2], stride[0], padding[0])
    wo = output_size(x_shape[3], w_shape[3], stride[1], padding[1])
    if ho < 1 or wo < 1:
        raise ValueError(
            f"{op}: kernel {w_shape[2:]} does not fit the padded input "
            f"{(x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])}"
        )


def check_conv2d(x, w, b, stride, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """(stride, padding) as pairs from ints or pairs; checks shapes, dtypes and that the kernel fits."""
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    _check(tuple(x.shape), tuple(w.shape), (x.dtype, w.dtype), b, stride, padding, "conv2d")
    return stride, padding


def check_conv1d(x, w, b, stride, padding) -> None:
    """x [N, C, L], w [O, C, k], b [O] | None, int stride >= 1 and padding >= 0; the kernel fits."""
    if x.ndim != 3:
        raise ValueError(f"conv1d: expected input of shape [N, C, L], got a {x.ndim}-d array of shape {x.shape}")
    if w.ndim != 3:
        raise ValueError(f"conv1d: expected weight of shape [O, C, k], got shape {w.shape}")
    x4, w4 = x.shape[:2] + (1,) + x.shape[2:], w.shape[:2] + (1,) + w.shape[2:]  # the [N, C, 1, L] views
    _check(tuple(x4), tuple(w4), (x.dtype, w.dtype), b, (1, int(stride)), (0, int(padding)), "conv1d")


class _Geometry:
    """Sizes of one conv2d call and its chunking of the batch."""

    def __init__(self, x_shape, w_shape, stride, padding, itemsize):
        self.n, self.c, self.h, self.w = x_shape
        self.o, _, self.kh, self.kw = w_shape
        self.sh, self.sw = stride
        self.ph, self.pw = padding
        self.ho = output_size(self.h, self.kh, self.sh, self.ph)
        self.wo = output_size(self.w, self.kw, self.sw, self.pw)
        self.k = self.c * self.kh * self.kw  # rows of the column matrix
        self.pixels = self.ho * self.wo  # output pixels per image
        self.y_shape = (self.n, self.o, self.ho, self.wo)
        self.chunk = chunk_images(self.n, self.k * self.pixels * itemsize, CHUNK_BYTES)

    def chunks(self):
        for start in range(0, self.n, self.chunk):
            yield start, min(start + self.chunk, self.n)

    def is_pointwise(self) -> bool:
        return self.kh == 1 and self.kw == 1 and self.ph == 0 and self.pw == 0


def weight_rows(w: np.ndarray) -> np.ndarray:
    """W [O, C, kh, kw] -> W₂ [O, kh·kw·C], the column order of `kernels.im2col_rows` (channels last)."""
    o = w.shape[0]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(o, -1)


def _columns(x_last, geo: _Geometry, cols_buf) -> np.ndarray:
    """cols [m·pixels, K] of channels-last images x_last [m, H, W, C] (im2col)."""
    return kernels.im2col_rows(x_last, geo.kh, geo.kw, geo.sh, geo.sw, geo.ph, geo.pw,
                               _view(cols_buf, x_last.shape[0] * geo.pixels, geo.k))


def _pointwise_forward(x, w, b, geo: _Geometry, channels_last_ok: bool) -> np.ndarray:
    """y = W₂ x + b for a 1×1 kernel (strided: x's pixels subsampled first) → y [N, O, Ho, Wo].

    A channels-last x is one GEMM, [N·pixels, C] @ W₂ᵀ, whose result is channels last too.  Otherwise one GEMM
    per image, y[n] = W₂ x[n], spread over BLAS's threads (`blas_threads`); each thread adds the bias to a
    few images at a time, while they are still in cache."""
    w2 = w.reshape(geo.o, geo.k)
    xs = x[:, :, :: geo.sh, :: geo.sw] if (geo.sh, geo.sw) != (1, 1) else x
    xs_last = layout.channels_last_only(xs)
    if xs_last is not None:
        y_last = np.matmul(xs_last.reshape(-1, geo.c), w2.T).reshape(geo.n, geo.ho, geo.wo, geo.o)
        if b is not None:
            y_last += b
        return layout.as_images(y_last) if channels_last_ok else layout.contiguous(layout.as_images(y_last))
    xs3 = xs.reshape(geo.n, geo.c, geo.pixels)
    y = np.empty((geo.n, geo.o, geo.pixels), dtype=x.dtype)
    step = chunk_images(geo.n, geo.o * geo.pixels * x.dtype.itemsize, BIAS_STEP_BYTES)

    def images_of(part):
        for start in range(part.start, part.stop, step):
            images = slice(start, min(start + step, part.stop))
            np.matmul(w2, xs3[images], out=y[images])
            if b is not None:
                y[images] += b[:, None]

    blas_threads.for_parts(geo.n, images_of)
    return y.reshape(geo.y_shape)


def _im2col_forward(x, w, b, geo: _Geometry, y) -> np.ndarray:
    """y = im2col(x) @ W₂ᵀ + b, chunk by chunk of images, into y [N, O, Ho, Wo].  x and y may each be C-contiguous
    or the view of a channels-last array: the GEMM reads and writes channels-last chunks (`layout.LastChunks`)."""
    w_rows_t = weight_rows(w).T                                    # [K, O]
    images, results = layout.LastChunks(x, geo.chunk), layout.LastChunks(y, geo.chunk)
    cols_buf = np.empty(geo.chunk * geo.pixels * geo.k, x.dtype)
    for start, stop in geo.chunks():
        cols = _columns(images.read(start, stop), geo, cols_buf)
        out = results.slot(start, stop)
        rows = np.matmul(cols, w_rows_t, out=out.reshape(-1, geo.o))   # [pixels, O]
        if b is not None:
            rows += b
        results.store(start, stop, out)
    return y


def takes_events(geo: _Geometry) -> bool:
    """Whether a sparse enough input runs the forward on its events: stride 1 and a kernel larger than 1×1
    (a 1×1 layer's float32 GEMMs beat the events at every density measured, event_conv.md)."""
    return (geo.sh, geo.sw) == (1, 1) and geo.kh * geo.kw > 1


def _events(x, geo: _Geometry):
    """The events of x's rows [N·C·H, W] when `takes_events` and at most EVENT_DENSITY of x is nonzero, else
    None.  A channels-last x is counted where it lies and transposed only when it is sparse enough."""
    if not takes_events(geo):
        return None
    x_last = layout.channels_last_only(x)
    if x_last is not None:
        rows = x_last.reshape(-1, geo.c)
        if kernels.event_row_pointers(rows, int(EVENT_DENSITY * rows.size)) is None:  # dense: a quarter counted
            return None
        x = layout.contiguous(x)
    return input_events(x.reshape(-1, geo.w), EVENT_DENSITY)


def _event_forward(events, x, w, b, geo: _Geometry, affine, channels_last_ok: bool) -> np.ndarray:
    """y = conv2d(x, w) + b (then scale·y + shift) summed over the events of x's rows [N·C·H, W] in float64,
    the affine map folded into w and b there, and rounded once into x's dtype → y [N, O, Ho, Wo] (channels
    last where allowed)."""
    if affine is None:
        w64, b64 = w.astype(np.float64), np.zeros(geo.o) if b is None else b.astype(np.float64)
    else:
        w64, b64 = folded_weights(w, b, *affine, dtype=np.float64)
    w_taps = np.ascontiguousarray(w64.transpose(2, 3, 1, 0))          # [kh, kw, C, O]
    y = layout.empty_images(geo.y_shape, x.dtype, channels_last_ok)
    return kernels.event_conv2d(*events, w_taps, b64, geo.ph, geo.pw, y)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b, stride=(1, 1), padding=(0, 0), affine=None,
                   channels_last_ok: bool = False) -> np.ndarray:
    """y = conv2d(x, w) + b, then y ← scale·y + shift per output channel where affine = (scale, shift) is given.

    x [N, C, H, W], w [O, C, kh, kw], b [O] or None, scale and shift float64 [O] → y [N, O, Ho, Wo].
    Winograd and the event sums compute in float64 and apply b and the affine map there, before they round;
    the other paths fold the map into w and b (`norm.folded_weights`).  x may be the view of a channels-last
    array (`layout`); channels_last_ok: y may be returned as one too (the GEMM paths compute it so)."""
    geo = _Geometry(x.shape, w.shape, stride, padding, x.dtype.itemsize)
    events = _events(x, geo)
    if events is not None:
        return _event_forward(events, x, w, b, geo, affine, channels_last_ok)
    if winograd.use_winograd(w.shape, stride, padding):
        return winograd.winograd_conv2d_forward(x, w, padding, b, affine, channels_last_ok)
    if affine is not None:
        w, b = folded_weights(w, b, *affine)
    if geo.is_pointwise():
        return _pointwise_forward(x, w, b, geo, channels_last_ok)
    return _im2col_forward(x, w, b, geo, layout.empty_images(geo.y_shape, x.dtype, channels_last_ok))


def _pointwise_weight_grad(g3, xs3, geo: _Geometry) -> np.ndarray:
    """dW₂ [O, C] = Σ_n g[n] · x[n]ᵀ of a 1×1 convolution, g3 [N, O, pixels], xs3 [N, C, pixels].

    With many pixels per image: one GEMM per image, no copies, each BLAS thread summing its own images
    (`blas_threads`), the partial sums then added in a fixed order (the result does not depend on which
    thread ends first).  With few: a chunk's pixels gathered into one long GEMM."""
    dw2 = np.zeros((geo.o, geo.k), dtype=g3.dtype)
    if geo.pixels < PER_IMAGE_PIXELS:
        for start, stop in geo.chunks():
            g_rows = g3[start:stop].transpose(1, 0, 2).reshape(geo.o, -1)  # [O, m·pixels]
            x_rows = xs3[start:stop].transpose(1, 0, 2).reshape(geo.c, -1)  # [C, m·pixels]
            dw2 += g_rows @ x_rows.T
        return dw2
    partial_sums = {}  # by first image

    def images_of(part):
        total, product = np.zeros_like(dw2), np.empty_like(dw2)
        for n in range(part.start, part.stop):
            total += np.matmul(g3[n], xs3[n].T, out=product)
        partial_sums[part.start] = total

    blas_threads.for_parts(geo.n, images_of)
    for first in sorted(partial_sums):
        dw2 += partial_sums[first]
    return dw2


def _pointwise_backward(g3, x, w, geo: _Geometry, need_x: bool, need_w: bool):
    """(dx, dw) of a 1×1 convolution for g3 [N, O, pixels]: dx[n] = W₂ᵀ g[n] (a stack spread over the BLAS
    threads; strided: scattered back onto the pixels read), dW₂ = Σ_n g[n] · x[n]ᵀ."""
    strided = (geo.sh, geo.sw) != (1, 1)
    xs = x[:, :, :: geo.sh, :: geo.sw] if strided else x
    dx = dw = None
    if need_x:
        w2 = w.reshape(geo.o, geo.k)
        dx_read = blas_threads.matmul(w2.T, g3, np.empty((geo.n, geo.c, geo.pixels), x.dtype))
        dx_read = dx_read.reshape(geo.n, geo.c, geo.ho, geo.wo)   # the gradient of the pixels read
        if strided:
            dx = np.zeros_like(x)
            dx[:, :, :: geo.sh, :: geo.sw] = dx_read
        else:
            dx = dx_read
    if need_w:
        dw = _pointwise_weight_grad(g3, xs.reshape(geo.n, geo.c, geo.pixels), geo).reshape(w.shape)
    return dx, dw


def conv2d_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, stride, padding, needs=(True, True, True)):
    """Gradients (dx, dw, db) of conv2d for the cotangent g [N, O, Ho, Wo]; None where not needed."""
    geo = _Geometry(x.shape, w.shape, stride, padding, x.dtype.itemsize)
    need_x, need_w, need_b = needs
    g3 = g.reshape(geo.n, geo.o, geo.pixels)
    db = g3.sum(axis=(0, 2)) if need_b else None
    dx = dw = None
    if geo.is_pointwise():
        dx, dw = _pointwise_backward(g3, x, w, geo, need_x, need_w)
    elif winograd.use_winograd(w.shape, stride, padding):
        dx, dw = winograd.winograd_conv2d_backward(g, x, w, padding, need_x, need_w)
    elif need_x or need_w:
        w_rows = weight_rows(w)                                          # [O, K]
        cols_buf = np.empty(geo.chunk * geo.pixels * geo.k, x.dtype)
        x_buf = np.empty(geo.chunk * geo.h * geo.w * geo.c, x.dtype)     # x, then dx, channels last
        cotangents = layout.LastChunks(g, geo.chunk)
        if need_w:
            images = layout.LastChunks(x, geo.chunk, x_buf)
            dw_rows_t = np.zeros((geo.k, geo.o), dtype=x.dtype)         # dW₂ᵀ [K, O]
        if need_x:
            dx = np.empty(x.shape, x.dtype)
            dx_chunks = layout.LastChunks(dx, geo.chunk, x_buf)
        for start, stop in geo.chunks():
            g_rows = cotangents.read(start, stop).reshape(-1, geo.o)
            if need_w:
                dw_rows_t += _columns(images.read(start, stop), geo, cols_buf).T @ g_rows
            if need_x:
                dcols = np.matmul(g_rows, w_rows, out=_view(cols_buf, g_rows.shape[0], geo.k))
                dx_last = kernels.col2im_rows(dcols, geo.kh, geo.kw, geo.sh, geo.sw, geo.ph, geo.pw,
                                              dx_chunks.slot(start, stop))
                dx_chunks.store(start, stop, dx_last)
        if need_w:
            dw = np.ascontiguousarray(dw_rows_t.T.reshape(geo.o, geo.kh, geo.kw, geo.c).transpose(0, 3, 1, 2))
    return dx, dw, db


class Conv2d(Function):
    """y = conv2d(x, W, b, stride, padding);  x [N, C, H, W], W [O, C, kh, kw], b [O] | None → [N, O, Ho, Wo].

    stride, padding: (h, w) pairs; the call is checked by `check_conv2d`.  affine = (scale, shift), float64
    constants [O] (an eval-mode BatchNorm folded in), makes it y = scale·conv2d(x, W, b) + shift;
    dy/dx, dy/dW and dy/db are then those of conv2d for the cotangent scale·g.
    """

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), affine=None):
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding)
        ctx.scale = None if affine is None else affine[0]
        graph = grad_mode.is_grad_enabled() and any(ctx.needs_input_grad)
        return conv2d_forward(x, w, b, stride, padding, affine, channels_last_ok=not graph)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g = scaled_cotangent(g, ctx.scale)
        dx, dw, db = conv2d_backward(g, x, w, *ctx.conf, needs=ctx.needs_input_grad)
        return dx, dw, db


class Conv1d(Function):
    """y = conv1d(x, W, b, stride, padding);  x [N, C, L], W [O, C, k], b [O] | None → [N, O, Lo].

    Runs conv2d on the views x [N, C, 1, L] and W [O, C, 1, k]; the call is checked by `check_conv1d`;
    affine as in `Conv2d`.
    """

    @staticmethod
    def forward(ctx, x, w, b=None, stride=1, padding=0, affine=None):
        stride, padding = (1, int(stride)), (0, int(padding))
        x4, w4 = x[:, :, None, :], w[:, :, None, :]
        ctx.save_for_backward(x4, w4)
        ctx.conf = (stride, padding)
        ctx.scale = None if affine is None else affine[0]
        y = conv2d_forward(x4, w4, b, stride, padding, affine)
        return y[:, :, 0, :]

    @staticmethod
    def backward(ctx, g):
        x4, w4 = ctx.saved_tensors
        g4 = scaled_cotangent(g[:, :, None, :], ctx.scale)
        dx, dw, db = conv2d_backward(g4, x4, w4, *ctx.conf, needs=ctx.needs_input_grad)
        return (
            None if dx is None else dx[:, :, 0, :],
            None if dw is None else dw[:, :, 0, :],
            db,
        )
