"""Stacks of small GEMMs: NumPy's np.matmul over the stack against `ops.blas_threads.matmul` (one part of
the stack per thread, BLAS single-threaded meanwhile).  The shapes are those of qkformer-tiny at T·B = 128.

    python bench/bench_gemm_stacks.py               # BLAS's own thread count (2 on the target machine)
    python bench/bench_gemm_stacks.py --reps 30

Each row times both ways interleaved, one call of each per round, and prints GFLOP/s from the medians
and their ratio.  A first table shows, for single GEMMs, how fast BLAS runs them on 1 thread and on all
of its threads: below about 2²⁰ multiply-adds OpenBLAS uses one thread whatever it is set to.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import minisnn  # first, so its thread settings apply
import numpy as np
from threadpoolctl import ThreadpoolController

from minisnn.ops import blas_threads

# (name, a shape, b shape, dtype): a [S, M, K] or [M, K], b [S, K, N] or [K, N]
STACKS = [
    ("Winograd F(4x4) 64->64, 32x32, 3 images", (36, 192, 64), (36, 64, 64), np.float64),
    ("Winograd F(4x4) 32->64, 32x32, 3 images", (36, 192, 32), (36, 32, 64), np.float64),
    ("Winograd F(4x4) 128->128, 16x16, 16 images", (36, 256, 128), (36, 128, 128), np.float64),
    ("1x1 conv 32->32 on 32x32, 128 images", (32, 32), (128, 32, 1024), np.float32),
    ("1x1 conv 32->128 on 32x32, 128 images", (128, 32), (128, 32, 1024), np.float32),
    ("1x1 conv 64->64 on 16x16, 128 images", (64, 64), (128, 64, 256), np.float32),
    ("1x1 conv 128->128 on 8x8, 128 images", (128, 128), (128, 128, 64), np.float32),
    ("1x1 conv 512->128 on 8x8, 128 images", (128, 512), (128, 512, 64), np.float32),
]
SINGLE = [(192, 64, 64), (256, 64, 64), (1024, 64, 64), (32, 32, 1024), (128, 128, 64), (128, 512, 64)]


def median_seconds(fns: dict, reps: int) -> dict:
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()                                          # warm-up
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def single_gemms(reps: int, threads: int, rng) -> None:
    print(f"\nOne GEMM [M, K] @ [K, N], GFLOP/s (medians of 3 alternating blocks of {reps} calls): "
          f"BLAS on 1 thread and on {threads}")
    print(f"{'M x K x N':<24}{'multiply-adds':>14}{'1 thread':>10}{f'{threads} threads':>11}")
    controller = ThreadpoolController()
    for dtype in (np.float32, np.float64):
        for m, k, n in SINGLE:
            a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
            out = np.empty((m, n), dtype)
            times = {1: [], threads: []}
            for _ in range(3):                        # alternating blocks of reps calls at each setting
                for count in times:
                    with controller.limit(limits=count, user_api="blas"):
                        np.matmul(a, b, out=out)      # the first call after a switch warms up
                        for _ in range(reps):
                            start = time.perf_counter()
                            np.matmul(a, b, out=out)
                            times[count].append(time.perf_counter() - start)
            flops = 2 * m * k * n
            rates = [flops / statistics.median(t) / 1e9 for t in times.values()]
            print(f"{f'{m} x {k} x {n} {np.dtype(dtype).name}':<24}{m * k * n:>14,}{rates[0]:>10.1f}{rates[1]:>11.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=15, help="interleaved rounds per row (default 15)")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    threads = blas_threads.blas_threads()
    print(f"numpy {np.__version__}, BLAS threads {threads}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}; {args.reps} interleaved rounds, medians")
    print(f"{'stack':<46}{'np.matmul':>11}{'blas_threads':>14}{'speed-up':>10}   (GFLOP/s)")
    for name, a_shape, b_shape, dtype in STACKS:
        a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
        out = np.empty(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]) + (a_shape[-2], b_shape[-1]), dtype)
        t = median_seconds({"numpy": lambda: np.matmul(a, b, out=out),
                            "parts": lambda: blas_threads.matmul(a, b, out)}, args.reps)
        flops = 2 * out.size * a_shape[-1]
        print(f"{name:<46}{flops / t['numpy'] / 1e9:>11.1f}{flops / t['parts'] / 1e9:>14.1f}"
              f"{t['numpy'] / t['parts']:>10.2f}")
    single_gemms(args.reps, threads, rng)


if __name__ == "__main__":
    main()
