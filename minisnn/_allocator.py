"""Large arrays from the heap: the one process-wide malloc setting minisnn changes when imported.

glibc's malloc serves an allocation above its mmap threshold with a fresh `mmap`, and `free` hands
those pages straight back to the kernel.  The threshold adapts upwards as large blocks are freed, but
only to 32 MiB, and the activations of a convolutional model at T·B = 128 are 16-128 MiB each.  So
every step mapped them afresh, and each page was faulted in and zeroed by the kernel on its first
write: a memory pass nobody asked for, inside BatchNorm and the neuron kernels that write first.
With the threshold at 256 MiB such arrays come from the heap and mostly reuse memory the step before
freed.  Measured on 2 cores of an AMD EPYC (Zen 4), 2 threads, batch 64: a qkformer-tiny training step
took 68 000 minor page faults and 1.07 s of system time before, 17 000 and 0.20 s after, and 2.17 s of
wall time instead of 1.29 s (3 steps after 2 warm-up steps); `bench/bench_ab.py` against glibc's
default measured qkformer-tiny training 1.32x as fast, dysvit-cifar10 1.10x, msvit-tiny 1.06x and
spikformer-tiny 0.99x, and the peak resident memory of 3 training steps moved by less than 1.5 %.

Only a default: nothing changes when MALLOC_MMAP_THRESHOLD_ is set (glibc's own variable, read at
start-up) or MINISNN_MALLOC=default, and nothing happens on a C library without `mallopt`.
"""
from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3            # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD = 256 << 20       # bytes: arrays below this come from the heap


def keep_large_arrays_in_heap() -> bool:
    """Raise glibc's mmap threshold to MMAP_THRESHOLD unless the user chose otherwise; True if it did."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or os.environ.get("MINISNN_MALLOC") == "default":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process runs on (dlopen(NULL))
    except (OSError, AttributeError, TypeError):  # not a POSIX loader, or a C library without mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
