"""A stack of small BLAS calls spread over threads: each thread takes a part, and BLAS runs single-threaded.

NumPy's `np.matmul` over a stack of matrices (a leading batch axis) calls BLAS once per matrix.
OpenBLAS runs a GEMM below about 2²⁰ multiply-adds on one thread, and a larger one on all of its
threads, which it wakes and joins for every call; a stack of such GEMMs (the 36 position GEMMs of
a Winograd chunk, the per-image GEMMs of a 1×1 convolution) then leaves cores idle or spends its
time in hand-offs.  `for_parts` instead gives each thread a contiguous part of the stack and sets
BLAS to one thread while they run, so every core runs whole GEMMs.  Measured in `blas_threads.md`.

The work functions call NumPy only (NumPy releases the GIL inside BLAS and its ufunc loops), never a
Numba kernel: Numba's parallel kernels have their own thread pool, which is not meant to be entered
from several threads at once.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from threadpoolctl import ThreadpoolController

_state = threading.local()      # marks a thread running a part: a for_parts call inside it runs inline
_lock = threading.Lock()        # one stack at a time sets BLAS's thread count
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_blas = None                    # threadpoolctl's controllers of the loaded BLAS libraries


def _forget_threads() -> None:
    """In a forked child: the parent's pool threads do not exist there; start afresh on first use."""
    global _pool, _pool_workers, _lock, _state
    _pool, _pool_workers, _lock, _state = None, 0, threading.Lock(), threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


def _blas_libraries():
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def blas_threads() -> int:
    """How many threads BLAS is set to use (the largest count among the loaded BLAS libraries; 1 if none)."""
    return max([lib.num_threads for lib in _blas_libraries()], default=1)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    if _pool_workers < workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minisnn-blas")
        _pool_workers = workers
    return _pool


def _inside(work, part) -> None:
    """work(part), marked as inside a part: a for_parts call it makes runs inline."""
    outer = getattr(_state, "inside", False)
    _state.inside = True
    try:
        work(part)
    finally:
        _state.inside = outer


def split(count: int, parts: int) -> list[slice]:
    """range(count) cut into `parts` contiguous slices whose lengths differ by at most one (none empty)."""
    parts = max(1, min(parts, count))
    bounds = [count * i // parts for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


def for_parts(count: int, work) -> None:
    """Call work(part) for contiguous slices `part` covering range(count), one slice per BLAS thread, at once
    (the calling thread takes the first).

    While they run, BLAS uses one thread per call; its own setting is restored afterwards, also on an
    error, which is raised here.  With one BLAS thread, a single item, or when called from inside a part,
    it is simply work(slice(0, count))."""
    threads = blas_threads()
    if threads < 2 or count < 2 or getattr(_state, "inside", False):
        work(slice(0, count))
        return
    libraries = _blas_libraries()
    first, *others = split(count, threads)
    with _lock:
        saved = [lib.num_threads for lib in libraries]
        for lib in libraries:
            lib.set_num_threads(1)
        try:
            futures = [_executor(threads - 1).submit(_inside, work, part) for part in others]
            try:
                _inside(work, first)           # the calling thread takes the first part
            finally:
                wait(futures)                  # all parts end before BLAS's setting is restored
            for future in futures:
                future.result()                # raises a part's error
        finally:
            for lib, n in zip(libraries, saved):
                lib.set_num_threads(n)


def matmul(a, b, out):
    """out[s] = a[s] @ b[s] for the stack s of out [S, M, N], spread by `for_parts`; returns out.

    a is [S, M, K] or one matrix [M, K] shared by the stack, and b [S, K, N] or [K, N] likewise."""
    def part(s):
        np.matmul(a[s] if a.ndim == 3 else a, b[s] if b.ndim == 3 else b, out=out[s])

    for_parts(out.shape[0], part)
    return out
