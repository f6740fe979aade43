"""A surrogate family of your own against the built-in one with the same maths, inside the fused LIF kernels.

    python bench/bench_surrogates.py                    # [4, 262144], 2 threads, best of 15
    python bench/bench_surrogates.py --shape 4 65536 --repeats 30

SuperSpike (Zenke & Ganguli's fast sigmoid) is the built-in `FastSigmoid`.  Its scalar functions (written
with `typed` constants) are entered again with `minisnn.spiking.surrogate.define`, three ways: evaluated in
float64 (define's default), in the array's own dtype (`same_dtype=True`, as the built-in runs), and the
primitive alone (both derivatives derived by central differences).  Each case times one LIF
forward (`lif_forward`) plus BPTT with the slope gradient (`lif_backward`), hard reset not detached, on
the same input; the cases are interleaved round by round and the best time of each is kept.  Ratios above
1 are slower than the built-in.  Compilation happens before the timing (first calls).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=2, default=[4, 262144], metavar=("T", "M"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from bench.bench_train import _machine
    from minisnn.kernels.jit.lif import lif_backward, lif_forward
    from minisnn.kernels.lif_params import LIFParams
    from minisnn.kernels.surrogates import fast_sigmoid_d_alpha, fast_sigmoid_derivative, fast_sigmoid_primitive
    from minisnn.spiking import surrogate

    # the built-in's own scalar functions, entered again as families of one's own
    superspike = (fast_sigmoid_primitive, fast_sigmoid_derivative, fast_sigmoid_d_alpha)
    cases = {
        "FastSigmoid (built-in)": surrogate.FastSigmoid,
        "SuperSpike, functions on float64 (default)": surrogate.define(
            "bench_superspike", *superspike, default_alpha=25.0),
        "SuperSpike, same_dtype=True": surrogate.define(
            "bench_superspike_typed", *superspike, default_alpha=25.0, same_dtype=True),
        "SuperSpike, primitive only (derived)": surrogate.define(
            "bench_superspike_derived", superspike[0], default_alpha=25.0),
    }
    machine = _machine(args.threads)
    print(f"{machine['cpu']}, {args.threads} threads; LIF forward + BPTT with slope gradient, "
          f"[T, M] = {args.shape}, best of {args.repeats}")
    rng = np.random.default_rng(0)
    best: dict = {}
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(args.shape) + 0.8).astype(dtype)
        g = rng.standard_normal(args.shape).astype(dtype)
        alpha = np.full((1, 1), 25.0, dtype)
        params = {name: LIFParams.make(kind=cls.kind, detach_reset=False) for name, cls in cases.items()}

        def step(name):
            lif_forward(x, alpha, params[name])
            lif_backward(g, x, alpha, params[name], True, False)

        for name in cases:
            step(name)                                         # compile (or load from Numba's cache)
        for _ in range(args.repeats):
            for name in cases:
                t0 = time.perf_counter()
                step(name)
                elapsed = time.perf_counter() - t0
                key = (name, np.dtype(dtype).name)
                best[key] = min(best.get(key, float("inf")), elapsed)
    print("\n| family | float32 ms | ratio | float64 ms | ratio |\n| --- | --- | --- | --- | --- |")
    base = {d: best["FastSigmoid (built-in)", d] for d in ("float32", "float64")}
    for name in cases:
        cells = [f"{1e3 * best[name, d]:.2f} | {best[name, d] / base[d]:.2f}" for d in ("float32", "float64")]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
