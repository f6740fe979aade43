"""Time the multi-step LIF neuron: minisnn Numba kernel vs NumPy reference vs SpikingJelly (torch).

    python bench/bench_lif.py                 # 2 threads everywhere, the sizes below
    python bench/bench_lif.py --threads 1
    python bench/bench_lif.py --quick         # small sizes, a few seconds (smoke test)

Sizes [T, B, N, C], float32: [4, 64, 64, 384] (T = 4 models) and [1, 64, 64, 256] (T = 1).
Neuron: tau = 2, v_threshold = 1, hard reset to 0, detach_reset = True, sigmoid surrogate
(alpha = 4), inputs N(0.5, 1), gradients N(0, 1).  Rows:

* kernel: `minisnn.kernels.jit.lif.lif_forward` (fwd); `lif_forward_with_psi` + `lif_backward_saved`
  (fwd+bwd), on arrays;
* module: `minisnn.spiking.LIF` on Tensors through autograd (what a model pays);
* reference: the NumPy kernels (`minisnn.kernels.reference.lif`);
* spikingjelly: `MultiStepLIFNode(tau=2., detach_reset=True, backend='torch')`.

"fwd" is inference (no graph); "fwd+bwd" is a forward with gradients and the backward.
Numba and torch use the same number of threads.  Every time is the minimum over interleaved
repetitions (the machine may be shared).  The bandwidth line is a large `np.copyto` and a
Numba streaming copy; "GB/s" for the kernel counts the bytes it must move: forward reads x
and writes s; in training the forward also writes q = ±ψ, ψ = p'(H − θ) with the spike in
the sign bit, and the backward reads dL/ds and q and writes dL/dx (4 bytes per element
each, float32).  The
"kernel, recompute" row is the general backward (`lif_backward`, used when gradients for
the slope or τ are wanted), which reads x and dL/ds instead and recomputes H and ψ.
"""
from __future__ import annotations

import argparse
import os
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="Numba and torch threads")
    p.add_argument("--reps", type=int, default=9, help="repetitions (the minimum is kept)")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--no-reference", action="store_true", help="skip the (slow) NumPy reference")
    return p.parse_args()


ARGS = parse_args()
for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from minisnn import Tensor  # noqa: E402
from minisnn.kernels.jit import lif as jit_lif  # noqa: E402
from minisnn.kernels.lif_params import LIFParams  # noqa: E402
from minisnn.kernels.reference import lif as ref_lif  # noqa: E402
from minisnn.spiking import LIF  # noqa: E402

try:
    import torch
    from spikingjelly.clock_driven import neuron as sj_neuron
    torch.set_num_threads(ARGS.threads)
except ImportError:  # the SpikingJelly row is optional
    torch = None

SIZES = [(4, 64, 64, 384), (1, 64, 64, 256)] if not ARGS.quick else [(4, 8, 16, 64), (1, 8, 16, 32)]
NEURON = LIFParams.make(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True)  # sigmoid surrogate


def best_ms(fns: dict, reps: int) -> dict:
    """Minimum wall time (ms) of each fn over `reps` interleaved rounds, after one warm-up call."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], (time.perf_counter() - t0) * 1e3)
    return best


@njit(parallel=True, cache=True)
def _stream_copy(src, dst):
    n = src.size
    chunk = 1 << 16
    for c in prange((n + chunk - 1) // chunk):
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            dst[i] = src[i]


def bandwidth_gbs() -> dict:
    """Copy bandwidth (bytes read + written per second) of a 256 MB float32 array."""
    src = np.ones(64 << 20, np.float32)
    dst = np.zeros_like(src)
    t = best_ms({"np.copyto": lambda: np.copyto(dst, src), "numba copy": lambda: _stream_copy(src, dst)}, 5)
    return {k: 2 * src.nbytes / (v * 1e-3) / 1e9 for k, v in t.items()}


def kernel_fns(x, g, alpha, module, recompute=False):
    """fwd: spikes only.  fwd+bwd: forward saving ψ, then `lif_backward_saved` (what LIF uses
    in training); with recompute=True the general `lif_backward` that recomputes H from x."""
    def fwd():
        module.lif_forward(x, alpha, NEURON)

    def fwd_bwd():
        if recompute:
            module.lif_forward(x, alpha, NEURON)
            module.lif_backward(g, x, alpha, NEURON, False, False)
        else:
            s, q = module.lif_forward_with_psi(x, alpha, NEURON)
            module.lif_backward_saved(g, q, NEURON)

    return fwd, fwd_bwd


def module_fns(x, g):
    lif = LIF(tau=2.0, detach_reset=True)

    def fwd():
        lif(Tensor(x))

    def fwd_bwd():
        xt = Tensor(x, requires_grad=True)
        lif(xt).backward(g)

    return fwd, fwd_bwd


def spikingjelly_fns(x, g):
    node = sj_neuron.MultiStepLIFNode(tau=2.0, detach_reset=True, backend="torch")
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)

    def fwd():
        with torch.no_grad():
            node.reset()
            node(xt)

    def fwd_bwd():
        node.reset()
        xg = xt.detach().requires_grad_()
        node(xg).backward(gt)

    return fwd, fwd_bwd


def main():
    print(f"threads: numba {numba.get_num_threads()}, torch {torch.get_num_threads() if torch else '-'}; "
          f"load average {os.getloadavg()[0]:.1f}")
    bw = bandwidth_gbs()
    print("copy bandwidth (read + write): " + ", ".join(f"{k} {v:.1f} GB/s" for k, v in bw.items()))
    peak = max(bw.values())
    rows = []
    for shape in SIZES:
        rng = np.random.default_rng(0)
        x = rng.normal(0.5, 1.0, shape).astype(np.float32)
        g = rng.normal(size=shape).astype(np.float32)
        x2, g2 = x.reshape(shape[0], -1), g.reshape(shape[0], -1)
        alpha = np.full((1, 1), 4.0, np.float32)
        fns = {}
        fns["kernel"] = kernel_fns(x2, g2, alpha, jit_lif)
        fns["kernel, recompute"] = kernel_fns(x2, g2, alpha, jit_lif, recompute=True)
        fns["module"] = module_fns(x, g)
        if torch is not None:
            fns["spikingjelly"] = spikingjelly_fns(x, g)
        timed = {}
        for phase in (0, 1):
            timed[phase] = best_ms({name: pair[phase] for name, pair in fns.items()}, ARGS.reps)
        if not ARGS.no_reference:
            ref = kernel_fns(x2, g2, alpha, ref_lif)
            for phase in (0, 1):
                timed[phase]["reference"] = best_ms({"reference": ref[phase]}, max(1, ARGS.reps // 3))["reference"]
        for name in timed[0]:
            rows.append((shape, name, timed[0][name], timed[1][name]))
        nbytes = x.nbytes
        moved = {0: 2 * nbytes, 1: 3 * nbytes + 3 * nbytes}  # fwd+bwd: x→s,q  then  g,q→dx
        for phase, label in ((0, "fwd"), (1, "fwd+bwd")):
            gbs = moved[phase] / (timed[phase]["kernel"] * 1e-3) / 1e9
            print(f"{list(shape)} kernel {label}: {moved[phase] / 1e6:.0f} MB moved, {gbs:.1f} GB/s "
                  f"= {100 * gbs / peak:.0f} % of the copy bandwidth")

    print()
    print("| [T, B, N, C] | implementation | fwd (ms) | fwd+bwd (ms) | fwd vs kernel | fwd+bwd vs kernel |")
    print("|---|---|---|---|---|---|")
    for shape, name, f, fb in rows:
        k = next(r for r in rows if r[0] == shape and r[1] == "kernel")
        print(f"| {list(shape)} | {name} | {f:.2f} | {fb:.2f} | {f / k[2]:.1f}x | {fb / k[3]:.1f}x |")


if __name__ == "__main__":
    main()
