"""Time minisnn's layer hot paths against PyTorch on the CPU, forward and forward+backward.

    python bench/bench_layers.py                 # 2 threads everywhere (the target machine)
    python bench/bench_layers.py --threads 1     # numba, BLAS and torch on 1 thread
    python bench/bench_layers.py --quick         # small sizes, a few seconds (smoke test)
    python bench/bench_layers.py --only bn       # rows whose name contains "bn"
    python bench/bench_layers.py --only conv --no-winograd   # 3×3 convs on im2col instead of Winograd
    python bench/bench_layers.py --only 3x3 --winograd-tile 2 # Winograd on F(2×2, 3×3) tiles only

Rows (float32; the sizes of a dim-256 spiking ViT at T·B = 64 and of the conv stems):
    BatchNorm1d train on [64·64, 256] (token matrix) and [256, 384, 64] ([T·B, C, N]);
    BatchNorm2d train on [32, 192, 32, 32]; the same two layouts in eval mode;
    BatchNorm1d → spike (sigmoid surrogate, slope 2) on the token matrices of dysvit-conv at batch 128,
    [128·64, 128] and [128·64, 512], as two layers and fused (`spiking.batch_norm_spike`);
    linear [64·64, 256] -> 1024; conv2d 3×3 96 -> 192 (padding 1) and 1×1 192 -> 192 on 32×32;
    the 3×3 convs of qkformer-small's stem at T·B = 128 (48->96 and 96->96 on 32×32, 192->192 on 16×16);
    qkformer-tiny's 3×3 (64->64 on 32×32, 128->128 on 16×16) and 1×1 convs (32->32 on 32×32, 128->128
    on 8×8) at T·B = 128, whose GEMMs are small;
    max_pool2d kernel 3, stride 2, padding 1 on [32, 192, 32, 32].
"fwd" is one forward call (autograd off); "f+b" is a forward with autograd on plus the backward
of a fixed random cotangent into the input and the parameters.  The candidates run interleaved
(one call of each per round, after a warm-up), so a burst of load from other processes hits both
columns alike; the table shows the median and the best of --reps rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="numba, BLAS and torch threads (default 2)")
    p.add_argument("--reps", type=int, default=15, help="interleaved rounds per row (default 15)")
    p.add_argument("--quick", action="store_true", help="small sizes and 3 rounds, for a smoke test")
    p.add_argument("--only", default="", help="run only rows whose name contains this text")
    p.add_argument("--no-winograd", action="store_true", help="run 3×3 convs on im2col (ops/winograd.md)")
    p.add_argument("--winograd-tile", type=int, choices=(2, 4), default=4,
                   help="largest Winograd output tile: 4 lets `tile_for` pick F(4×4, 3×3), 2 keeps F(2×2, 3×3)")
    return p.parse_args()


ARGS = parse_args()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread settings)

import minisnn  # noqa: E402
from minisnn import Tensor, kernels, nn, no_grad  # noqa: E402
from minisnn import functional as F  # noqa: E402
from minisnn.spiking import batch_norm_spike, spike  # noqa: E402

import torch  # noqa: E402  (the comparison needs it)
from minisnn.torch.dysvit import SpikeSigmoidSTE  # noqa: E402

torch.set_num_threads(ARGS.threads)
from minisnn.ops import winograd  # noqa: E402

if ARGS.no_winograd:
    winograd.MIN_CHANNELS = 1 << 30
winograd.TILE = winograd.BACKWARD_TILE = ARGS.winograd_tile


def blas_info() -> str:
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        return "unknown"


def measure(fns: dict, reps: int) -> dict:
    """Wall times (ms) of each fn() over `reps` interleaved rounds, after one warm-up call each."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - t0))
    return times


class Case:
    """One benchmark row: a minisnn callable and a torch callable taking (input, grad-or-None)."""

    def __init__(self, name, x, ours, theirs):
        self.name, self.x, self.ours, self.theirs = name, x, ours, theirs


def _forward_pair(case):
    x_ours, x_theirs = case.x, torch.from_numpy(case.x)

    def ours():
        with no_grad():
            case.ours(x_ours)

    def theirs():
        with torch.no_grad():
            case.theirs(x_theirs)

    return ours, theirs


def _train_pair(case):
    g = np.random.default_rng(1).standard_normal(np.shape(case.ours(case.x).data)).astype(np.float32)
    g_t = torch.from_numpy(g)

    def ours():
        x = Tensor(case.x, requires_grad=True)
        case.ours(x).backward(g)

    def theirs():
        x = torch.from_numpy(case.x).requires_grad_()
        case.theirs(x).backward(g_t)

    return ours, theirs


def copy_params(ours, theirs, rng):
    """Identical, non-trivial parameters (and running statistics) in both modules."""
    for name, p in theirs.named_parameters():
        value = rng.uniform(0.5, 1.5, p.shape).astype(np.float32)
        with torch.no_grad():
            p.copy_(torch.from_numpy(value))
        getattr(ours, name).data[...] = value
    for name, b in theirs.named_buffers():
        if b.dtype == torch.float32:
            value = rng.uniform(0.5, 1.5, b.shape).astype(np.float32)
            b.copy_(torch.from_numpy(value))
            getattr(ours, name)[...] = value


def cases(quick: bool, rng):
    s = 4 if quick else 1  # shrink factor for --quick

    def bn(name, shape, train):
        ours = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(shape[1])
        theirs = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(shape[1])
        copy_params(ours, theirs, rng)
        ours.train(train)
        theirs.train(train)
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
        return Case(name, x, ours, theirs)

    def layer(name, ours_mod, theirs_mod, shape):
        theirs_mod.weight.data.copy_(torch.from_numpy(ours_mod.weight.data))
        if ours_mod.bias is not None:
            theirs_mod.bias.data.copy_(torch.from_numpy(ours_mod.bias.data))
        x = rng.standard_normal(shape).astype(np.float32)
        return Case(name, x, ours_mod, theirs_mod)

    def bn_spike(name, shape, fused):
        ours_bn, theirs_bn = nn.TokenBatchNorm(shape[1]), torch.nn.BatchNorm1d(shape[1])
        copy_params(ours_bn, theirs_bn, rng)
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
        slope = torch.full((shape[0], 1), 2.0)
        if fused:
            def ours(t):
                return batch_norm_spike(t, ours_bn, threshold=1.0, slope=2.0)
        else:
            def ours(t):
                return spike(ours_bn(t), slope=2.0, threshold=1.0)
        return Case(name, x, ours, lambda t: SpikeSigmoidSTE.apply(theirs_bn(t), slope, 1.0))

    tokens, big_n = 64 * 64 // s, 256 // s
    yield bn(f"BatchNorm1d train [{tokens}, 256]", (tokens, 256), True)
    yield bn(f"BatchNorm1d train [{big_n}, 384, 64]", (big_n, 384, 64), True)
    yield bn(f"BatchNorm2d train [{32 // s}, 192, 32, 32]", (32 // s, 192, 32, 32), True)
    yield bn(f"BatchNorm1d eval [{tokens}, 256]", (tokens, 256), False)
    yield bn(f"BatchNorm2d eval [{32 // s}, 192, 32, 32]", (32 // s, 192, 32, 32), False)
    for c in (128, 512):
        for fused in (False, True):
            yield bn_spike(f"BN1d->spike {'fused' if fused else 'layers'} [{8192 // s}, {c}]", (8192 // s, c), fused)
    yield layer(f"linear [{tokens}, 256] -> 1024", nn.Linear(256, 1024), torch.nn.Linear(256, 1024), (tokens, 256))
    yield layer(f"conv2d 3x3 96->192 [{32 // s}, 96, 32, 32]", nn.Conv2d(96, 192, 3, padding=1),
                torch.nn.Conv2d(96, 192, 3, padding=1), (32 // s, 96, 32, 32))
    for c, o, size in ((48, 96, 32), (96, 96, 32), (192, 192, 16)):
        yield layer(f"conv2d 3x3 {c}->{o} [{128 // s}, {c}, {size}, {size}]", nn.Conv2d(c, o, 3, padding=1),
                    torch.nn.Conv2d(c, o, 3, padding=1), (128 // s, c, size, size))
    yield layer(f"conv2d 1x1 192->192 [{32 // s}, 192, 32, 32]", nn.Conv2d(192, 192, 1),
                torch.nn.Conv2d(192, 192, 1), (32 // s, 192, 32, 32))
    for c, o, size in ((64, 64, 32), (128, 128, 16)):   # qkformer-tiny's stem at T·B = 128: small GEMMs
        yield layer(f"conv2d 3x3 {c}->{o} [{128 // s}, {c}, {size}, {size}]", nn.Conv2d(c, o, 3, padding=1),
                    torch.nn.Conv2d(c, o, 3, padding=1), (128 // s, c, size, size))
    for c, o, size in ((32, 32, 32), (128, 128, 8)):
        yield layer(f"conv2d 1x1 {c}->{o} [{128 // s}, {c}, {size}, {size}]", nn.Conv2d(c, o, 1),
                    torch.nn.Conv2d(c, o, 1), (128 // s, c, size, size))
    x = rng.standard_normal((32 // s, 192, 32, 32)).astype(np.float32)
    yield Case(f"max_pool2d 3/2/1 [{32 // s}, 192, 32, 32]", x,
               lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1))


def main():
    reps = 3 if ARGS.quick else ARGS.reps
    rng = np.random.default_rng(0)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__} (BLAS: {blas_info()}), "
          f"torch {torch.__version__}, minisnn {getattr(minisnn, '__version__', '?')} kernels={kernels.backend()}")
    print(f"threads: --threads {ARGS.threads}, torch {torch.get_num_threads()}, "
          f"numba {os.environ['NUMBA_NUM_THREADS']}; cpus {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.2f}; {reps} rounds, times in ms as median (best)")
    head = f"{'operation':<40}{'minisnn fwd':>16}{'torch fwd':>16}{'ratio':>7}{'minisnn f+b':>16}{'torch f+b':>16}{'ratio':>7}"
    print(head)
    print("-" * len(head))
    for case in cases(ARGS.quick, rng):
        if ARGS.only and ARGS.only.lower() not in case.name.lower():
            continue
        fo, ft = _forward_pair(case)
        bo, bt = _train_pair(case)
        t = measure({"fo": fo, "ft": ft, "bo": bo, "bt": bt}, reps)
        med = {k: statistics.median(v) for k, v in t.items()}
        best = {k: min(v) for k, v in t.items()}

        def cell(k):
            return f"{med[k]:8.2f} ({best[k]:5.2f})"

        print(f"{case.name:<40}{cell('fo'):>16}{cell('ft'):>16}{med['fo'] / med['ft']:7.2f}"
              f"{cell('bo'):>16}{cell('bt'):>16}{med['bo'] / med['bt']:7.2f}", flush=True)
    if ARGS.no_winograd:
        print("3×3 convs ran on im2col (--no-winograd)")
    else:
        print(f"3×3 convs: Winograd tiles up to {ARGS.winograd_tile}×{ARGS.winograd_tile} (--winograd-tile)")
    print(f"ratio = minisnn median / torch median (below 1: minisnn is faster); "
          f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
