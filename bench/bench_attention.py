"""Time the spiking attention kernels: NumPy reference vs Numba jit vs a PyTorch (CPU) matmul version.

    python bench/bench_attention.py              # model sizes, 1 thread everywhere
    python bench/bench_attention.py --quick      # small sizes, a few seconds (smoke test)
    python bench/bench_attention.py --threads 2  # let BLAS / torch use 2 threads

Sizes (T·B = 4·64 = 256 frames):
    SSA  [256, heads=12, N=64, d=32]  (Spikformer)      and  [256, heads=8, N=64, d=48]  (MSViT/QKFormer stage 3)
    column sum + mask  [256, C=192, N=1024] and N=256   (MSSA stages 1 and 2, 8 heads)
Inputs are 0/1 float32 spikes at a 15 % firing rate; gradients are standard normal.
Every time is the minimum over --reps repetitions (the machine may be shared; the minimum is the
least disturbed run).  torch computes the same maths with the same product order (kᵀ v first).
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5, help="repetitions per measurement (the minimum is kept)")
    p.add_argument("--threads", type=int, default=1, help="BLAS / torch threads")
    p.add_argument("--rate", type=float, default=0.15, help="firing rate of the input spikes")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    return p.parse_args()


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread settings)

from minisnn.kernels.jit import attention as jit  # noqa: E402
from minisnn.kernels.reference import attention as ref  # noqa: E402

try:
    import torch
except ImportError:  # the torch column is optional
    torch = None
if ARGS.no_torch:
    torch = None
if torch is not None:
    torch.set_num_threads(ARGS.threads)


def best_ms(fns: dict, reps: int) -> dict:
    """Minimum wall time (ms) of each fn() over `reps` rounds, after one warm-up call each.

    The candidates run interleaved (one call of each per round), so a burst of load from other
    processes hits all of them alike instead of spoiling one column.
    """
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], 1e3 * (time.perf_counter() - t0))
    return best


def spikes(rng, shape, rate):
    return (rng.random(shape, dtype=np.float32) < rate).astype(np.float32)


def row(name, t_ref, t_jit, t_torch, extra=""):
    torch_s = f"{t_torch:9.1f}" if t_torch is not None else "        -"
    ratio_t = f"{t_torch / t_jit:12.2f}" if t_torch is not None else "           -"
    print(f"{name:<44}{t_ref:9.1f}{t_jit:9.1f}{torch_s}{t_ref / t_jit:11.2f}{ratio_t}  {extra}")


def bench_ssa(rng, g, heads, n, d, reps, rate):
    shape = (g * heads, n, d)  # the Function flattens [T·B, heads] into one axis
    q, k, v = (spikes(rng, shape, rate) for _ in range(3))
    gz = rng.standard_normal(shape, dtype=np.float32)
    z_ref, inner = ref.ssa_forward(q, k, v, 0.125)
    z_jit, inner_jit = jit.ssa_forward(q, k, v, 0.125)
    assert np.array_equal(z_ref, z_jit)
    label = f"SSA [{g}, h={heads}, N={n}, d={d}]"
    fwd = {
        "ref": lambda: ref.ssa_forward(q, k, v, 0.125),
        "jit": lambda: jit.ssa_forward(q, k, v, 0.125),
        "bits": lambda: jit.ssa_forward_bitcount(q, k, v, 0.125),
    }
    bwd = {
        "ref": lambda: ref.ssa_backward(q, k, v, inner, gz, 0.125),
        "jit": lambda: jit.ssa_backward(q, k, v, inner_jit, gz, 0.125),
    }
    if torch is not None:
        tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
        tg = torch.from_numpy(gz)

        def torch_forward():
            with torch.no_grad():
                return tq @ (tk.transpose(-1, -2) @ tv) * 0.125

        tz = tq @ (tk.transpose(-1, -2) @ tv) * 0.125
        fwd["torch"] = torch_forward
        bwd["torch"] = lambda: torch.autograd.grad(tz, (tq, tk, tv), tg, retain_graph=True)
    f, b = best_ms(fwd, reps), best_ms(bwd, reps)
    row(label + " fwd", f["ref"], f["jit"], f.get("torch"),
        f"(bit-packed kᵀv variant: {f['bits']:.1f} ms, {f['bits'] / f['jit']:.2f}x jit)")
    row(label + " bwd", b["ref"], b["jit"], b.get("torch"))


def colsum_mask_forward(mod, q, p, a, k, heads):
    s = mod.head_column_sum_forward(q, heads) + mod.head_column_sum_forward(p, heads)
    return s, mod.head_token_mask_forward(a, k, heads)


def colsum_mask_backward(mod, a, k, gy, heads):
    da, dk = mod.head_token_mask_backward(a, k, gy, heads)
    dq = mod.head_column_sum_backward(da, k.shape[1])  # the gradient reaching Σq (and Σp) from a
    return dq, dk


def bench_mssa(rng, g, c, n, heads, reps, rate):
    q, p, k = (spikes(rng, (g, c, n), rate) for _ in range(3))
    a = spikes(rng, (g, heads, n), 0.5)
    gy = rng.standard_normal((g, c, n), dtype=np.float32)
    label = f"colsum+mask [{g}, C={c}, N={n}, h={heads}]"
    fwd = {
        "ref": lambda: colsum_mask_forward(ref, q, p, a, k, heads),
        "jit": lambda: colsum_mask_forward(jit, q, p, a, k, heads),
    }
    bwd = {
        "ref": lambda: colsum_mask_backward(ref, a, k, gy, heads),
        "jit": lambda: colsum_mask_backward(jit, a, k, gy, heads),
    }
    if torch is not None:
        tq, tp, tk = (torch.from_numpy(x).requires_grad_() for x in (q, p, k))
        ta = torch.from_numpy(a).requires_grad_()
        tg = torch.from_numpy(gy)
        d = c // heads

        def torch_graph():
            s = tq.view(g, heads, d, n).sum(2) + tp.view(g, heads, d, n).sum(2)
            return s, (ta.unsqueeze(2) * tk.view(g, heads, d, n)).view(g, c, n)

        def torch_forward():
            with torch.no_grad():
                return torch_graph()

        s, y = torch_graph()

        def torch_backward():  # the same work as colsum_mask_backward: da, dk, then da spread over C
            da, dk = torch.autograd.grad(y, (ta, tk), tg, retain_graph=True)
            return torch.autograd.grad(s, tq, da, retain_graph=True), dk

        fwd["torch"], bwd["torch"] = torch_forward, torch_backward
    f, b = best_ms(fwd, reps), best_ms(bwd, reps)
    row(label + " fwd", f["ref"], f["jit"], f.get("torch"))
    row(label + " bwd", b["ref"], b["jit"], b.get("torch"))


def main():
    rng = np.random.default_rng(0)
    g = 8 if ARGS.quick else 256
    reps = 2 if ARGS.quick else ARGS.reps
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__ if torch else '-'}; "
          f"threads={ARGS.threads}; cpus={os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'operation':<44}{'ref ms':>9}{'jit ms':>9}{'torch ms':>9}{'ref/jit':>11}{'torch/jit':>12}")
    bench_ssa(rng, g, 12, 64, 32, reps, ARGS.rate)
    bench_ssa(rng, g, 8, 64, 48, reps, ARGS.rate)
    bench_mssa(rng, g, 192, 256, 8, reps, ARGS.rate)
    bench_mssa(rng, g, 192, 1024, 8, reps, ARGS.rate)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
