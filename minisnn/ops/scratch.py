"""Scratch buffers for the chunked convolutions (`conv.py`, `winograd.py`).

A layer allocates each buffer once, flat, for the largest chunk of images, and every chunk
views its first numbers with the shape it needs; the last, smaller chunk reuses the same memory.
"""
from __future__ import annotations

import numpy as np


def view(buf: np.ndarray, *shape: int) -> np.ndarray:
    """The first prod(shape) numbers of a flat scratch array, seen with `shape`."""
    return buf[: int(np.prod(shape))].reshape(shape)


def chunk_images(n: int, bytes_per_image: int, target_bytes: int) -> int:
    """How many of n images fit in a chunk of about target_bytes (at least 1, at most n)."""
    return int(max(1, min(n, target_bytes // max(bytes_per_image, 1))))
