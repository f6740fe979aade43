"""Channels-last images seen as [N, C, H, W]: how a forward without a graph passes images between layers.

The convolutions compute channels last, one pixel's channels contiguous ([N, H, W, C]): Winograd's
tiles, im2col's rows and a 1×1 layer's single GEMM all read and write that layout (`conv.py`,
`winograd.py`), while the library's images are [N, C, H, W].  A convolution that records no graph
returns its result as the [N, C, H, W] view of the channels-last array it computed (`as_images`), and
one that receives such a view reads the array behind it (`channels_last`).  The neurons keep their
input's memory order (`axes_in_memory_order`) and max-pooling has a channels-last kernel, so between the
convolutions of a patch embedding no image changes layout: the two transposes per layer
(`kernels.swap_last_axes`) are gone.

Nothing else has to know: the view has the shape and values of the channels-first array, and an
operation that needs contiguous memory makes it (np.ascontiguousarray) as it would for any view.  With a
graph, every layer returns C-contiguous arrays as before.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from .scratch import view


def channels_last(x: np.ndarray) -> np.ndarray | None:
    """x [N, C, H, W] as the C-contiguous [N, H, W, C] array behind it (a view), or None if its memory is not
    laid out that way.  (With C = 1 or H·W = 1 both layouts are the same memory: then x qualifies as well.)"""
    x_last = x.transpose(0, 2, 3, 1)
    return x_last if x_last.flags.c_contiguous else None


def channels_last_only(x: np.ndarray) -> np.ndarray | None:
    """The channels-last array behind x when x is stored channels last and not also C-contiguous (a layer that
    keeps this layout takes it), else None."""
    return None if x.flags.c_contiguous else channels_last(x)


def as_images(x_last: np.ndarray) -> np.ndarray:
    """[N, H, W, C] → its [N, C, H, W] view (no copy)."""
    return x_last.transpose(0, 3, 1, 2)


def empty_images(shape, dtype, channels_last_ok: bool) -> np.ndarray:
    """An empty [N, C, H, W] array: C-contiguous, or, if channels_last_ok, the view of a channels-last one."""
    n, c, h, w = shape
    return as_images(np.empty((n, h, w, c), dtype)) if channels_last_ok else np.empty(shape, dtype)


def moved_axis(x: np.ndarray) -> int | None:
    """The axis k whose values lie last in x's memory, the others in order, when x is not C-contiguous (k = 1 for
    a channels-last image [N, C, H, W], 2 for a channels-last sequence [T, B, C, H, W]); else None."""
    if x.flags.c_contiguous or x.ndim < 3:
        return None
    order = axes_in_memory_order(x)
    if order is None:
        return None
    k = order[-1]
    return k if order == tuple(range(k)) + tuple(range(k + 1, x.ndim)) + (k,) else None


def contiguous(x: np.ndarray) -> np.ndarray:
    """x as a C-contiguous array: itself; the tiled transpose [lead, rest, C] → [lead, C, rest] of its memory when
    one axis lies last there (`moved_axis`); or NumPy's copy."""
    k = moved_axis(x)
    if k is None:
        return np.ascontiguousarray(x)
    lead, size = int(np.prod(x.shape[:k])), x.shape[k]
    order = tuple(range(k)) + tuple(range(k + 1, x.ndim)) + (k,)
    memory = x.transpose(order).reshape(lead, -1, size)
    out = np.empty((lead, size, memory.shape[1]), dtype=x.dtype)
    return kernels.swap_last_axes(memory, out).reshape(x.shape)


def axes_in_memory_order(x: np.ndarray) -> tuple[int, ...] | None:
    """The order of x's axes, axis 0 first, in which its memory is C-contiguous (x.transpose(order) is then a
    contiguous view), or None.  (0, 1, 3, 4, 2) for a channels-last [T, B, C, H, W]."""
    if x.flags.c_contiguous:
        return tuple(range(x.ndim))
    order = (0,) + tuple(sorted(range(1, x.ndim), key=lambda axis: -x.strides[axis]))
    return order if x.transpose(order).flags.c_contiguous else None


def repeated_frames(frame: np.ndarray, T: int) -> np.ndarray:
    """[T, ...] holding `frame` T times, each frame in frame's own memory order (a channels-last image stays
    one), so the layers after it read it as they would have read T computed frames."""
    order = axes_in_memory_order(frame[None])
    if order is None:
        return np.repeat(frame[None], T, axis=0)
    first = frame[None].transpose(order)
    out = np.empty((T,) + first.shape[1:], dtype=frame.dtype)
    out[...] = first
    return out.transpose(np.argsort(order))


class LastChunks:
    """Images [N, C, H, W] read or written chunk by chunk, each chunk channels last ([m, H, W, C]), as the
    convolutions compute: the slices of the channels-last array behind a channels-last view, or, for any
    other array, copies through a scratch buffer of `chunk` images (the tiled transpose
    `kernels.swap_last_axes`).  Two LastChunks may share one buffer when a chunk read from one is used up
    before the other writes (the convolutions' backward reads x, then writes ∂L/∂x there).  An array to be
    written must be C-contiguous or a channels-last view, so that the chunks land in it.

        chunks = LastChunks(y, chunk)
        out = chunks.slot(start, stop)     # [m, Ho, Wo, O] to write
        ...                                # compute into out
        chunks.store(start, stop, out)     # y[start:stop] holds it (a no-op for a channels-last y)
    """

    def __init__(self, images: np.ndarray, chunk: int, buf: np.ndarray | None = None):
        n, c, h, w = images.shape
        self.last = channels_last(images)
        self.images = images if self.last is not None else np.ascontiguousarray(images)
        self.buf = None if self.last is not None else (np.empty(chunk * h * w * c, images.dtype) if buf is None else buf)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images start..stop, channels last [m, H, W, C]."""
        if self.last is not None:
            return self.last[start:stop]
        m, (c, h, w) = stop - start, self.images.shape[1:]
        out = view(self.buf, m, h * w, c)
        return kernels.swap_last_axes(self.images[start:stop].reshape(m, c, h * w), out).reshape(m, h, w, c)

    def slot(self, start: int, stop: int) -> np.ndarray:
        """Where images start..stop are written channels last [m, H, W, C] before `store`."""
        if self.last is not None:
            return self.last[start:stop]
        c, h, w = self.images.shape[1:]
        return view(self.buf, stop - start, h, w, c)

    def store(self, start: int, stop: int, chunk_last: np.ndarray) -> None:
        """Move the chunk written into `slot` to images start..stop (nothing to do for a channels-last array)."""
        if self.last is None:
            m, (c, h, w) = stop - start, self.images.shape[1:]
            kernels.swap_last_axes(chunk_last.reshape(m, h * w, c), self.images[start:stop].reshape(m, c, h * w))
