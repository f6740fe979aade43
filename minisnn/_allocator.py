"""Large arrays from the heap: the process-wide malloc settings minisnn changes when imported.

glibc's malloc serves an allocation above its mmap threshold with a fresh `mmap`, and `free` hands
those pages straight back to the kernel.  The threshold adapts upwards as large blocks are freed, but
only to 32 MiB, and the activations of a convolutional model are tens to hundreds of MiB each.  So
every step mapped them afresh, and each page was faulted in and zeroed by the kernel on its first
write: a memory pass nobody asked for, inside BatchNorm and the neuron kernels that write first.
With the mmap threshold at 1 GiB such arrays come from the heap.  The heap must also keep them:
when a step ends, the memory it freed at the top of the heap goes back to the kernel once it exceeds
the trim threshold (128 KiB when the mmap threshold is set by hand), and the next step faults it in
again.  So the trim threshold is raised too, to 2 GiB (the largest value mallopt takes; 1 GiB still
left msvit-cifar10 8 500 faults a step).  The price: a process keeps the memory of its largest step
until it exits, which its peak resident memory counted anyway.

Measured on 2 cores of an AMD EPYC (Zen 4), 2 threads, steps after warm-up ones:
- mmap threshold 256 MiB against glibc's default, batch 64: a qkformer-tiny training step took 68 000
  minor page faults and 1.07 s of system time before, 17 000 and 0.20 s after, 2.17 s of wall time
  instead of 1.29 s; `bench/bench_ab.py` measured qkformer-tiny training 1.32x as fast, dysvit-cifar10
  1.10x, msvit-tiny 1.06x, spikformer-tiny 0.99x.
- Both thresholds as now against that, the upstream models at T = 4, batch 32: qkformer-cifar10
  94 000-97 000 faults and 1.6-1.8 s of system time per training step before, 200-260 and 0.13 s
  after; msvit-cifar10, whose largest activations pass 256 MiB, 198 000 faults before, 10 after.
  `bench/bench_ab.py`: training 1.12x (spikformer-cifar10), 1.22x (qkformer-cifar10), 1.14x
  (msvit-cifar10); inference 1.20x, 1.22x, 1.29x; the tiny presets 0.99-1.06x.
- Peak resident memory moved by less than 1.5 % with either change.

Only a default: nothing changes when MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ is set (glibc's
own variables, read at start-up) or MINISNN_MALLOC=default, and nothing happens on a C library
without `mallopt`.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1            # mallopt's parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30         # bytes: arrays below this come from the heap
TRIM_THRESHOLD = (1 << 31) - 1   # bytes: free memory at the top of the heap kept (mallopt's largest int)
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_large_arrays_in_heap() -> bool:
    """Raise glibc's mmap and trim thresholds to MMAP_THRESHOLD and TRIM_THRESHOLD unless the user chose
    otherwise; True if it did."""
    if any(name in os.environ for name in USER_SETTINGS) or os.environ.get("MINISNN_MALLOC") == "default":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process runs on (dlopen(NULL))
    except (OSError, AttributeError, TypeError):  # not a POSIX loader, or a C library without mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
