"""Training and inference throughput: minisnn vs PyTorch + SpikingJelly on the same model.

    python bench/bench_train.py                          # every CPU preset, batch 64, 2 threads
    python bench/bench_train.py --models dysvit-cifar10 --batch-size 64 --threads 2
    python bench/bench_train.py --models qkformer-small --no-winograd    # minisnn's 3×3 convs on im2col

Both implementations get the same architecture and weights (the PyTorch side is the oracle
in `minisnn.parity.oracles`, state_dict copied over), the same thread count (Numba/BLAS
threads and torch.set_num_threads), float32 and the same random batch.  A training step is
forward + cross-entropy + backward + AdamW update, with neuron state reset before each
step; inference is a no-grad forward in eval mode.

Each implementation runs in a process of its own, as a user runs it: the minisnn worker
imports minisnn first (so its thread settings apply, as in the `minisnn` command), the
PyTorch worker imports torch first with PyTorch's default settings.  Three thread pools in
one process (torch's OpenMP, Numba's, OpenBLAS's) on two cores would slow both sides.
Rounds of the two workers alternate, so a busy moment of the machine hits both alike; the
median over all timed steps is reported.  The ratio is minisnn images/s divided by
PyTorch images/s (above 1: minisnn is faster).

Against the hardware: the script also times a large float32 GEMM on the same threads (the
most this BLAS gets out of the cores) and divides it by each model's training arithmetic,
3 passes × 2 FLOPs × the multiply-adds of one forward (`count_flops` × T), to give the
images/s a training step could reach if it did nothing but GEMMs at that rate.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DEFAULT_MODELS = ("dysvit-tiny", "spikformer-tiny", "qkformer-tiny", "msvit-tiny", "dysvit-cifar10")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the two workers")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per round and mode")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-winograd", action="store_true", help="minisnn's 3x3 convolutions on im2col")
    p.add_argument("--worker", choices=("minisnn", "torch", "gemm"), help=argparse.SUPPRESS)
    return p.parse_args()


def main():
    args = _parse()
    if args.worker:
        print(json.dumps(_worker(args)))
        return
    env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
    gemm = _run_worker("gemm", "", args, env)["gflops"]
    print(f"float32 GEMM (4096², {args.threads} threads): {gemm:.0f} GFLOP/s")
    limits = []
    print(f"threads {args.threads} per implementation, batch {args.batch_size}, float32, "
          f"median of {args.rounds} x {args.repeats} steps, one process per implementation"
          + (", minisnn's 3x3 convolutions on im2col" if args.no_winograd else ""))
    print(f"{'model':22s} {'params':>9s} | {'train img/s':>24s} {'ratio':>6s} | {'infer img/s':>24s} {'ratio':>6s}")
    print(f"{'':22s} {'':>9s} | {'minisnn':>11s} {'torch+SJ':>12s} {'':>6s} | {'minisnn':>11s} {'torch+SJ':>12s}")
    for name in args.models:
        times = {"minisnn": {"train": [], "infer": []}, "torch": {"train": [], "infer": []}}
        params = macs = 0
        for _ in range(args.rounds):
            for impl in ("minisnn", "torch"):
                r = _run_worker(impl, name, args, env)
                params = r["params"]
                macs = r.get("macs", macs)
                for mode in ("train", "infer"):
                    times[impl][mode] += r[mode]
        ips = {impl: {m: args.batch_size / statistics.median(t) for m, t in d.items()} for impl, d in times.items()}
        mt, tt = ips["minisnn"]["train"], ips["torch"]["train"]
        mi, ti = ips["minisnn"]["infer"], ips["torch"]["infer"]
        print(f"{name:22s} {params:9,d} | {mt:11.1f} {tt:12.1f} {mt / tt:6.2f} | {mi:11.1f} {ti:12.1f} {mi / ti:6.2f}",
              flush=True)
        limits.append((name, macs, gemm * 1e9 / (6 * macs), mt))
    print("\nagainst the GEMM rate: a training step is about 3 x 2 x the forward's multiply-adds")
    print(f"{'model':22s} {'fwd GMAC/img':>12s} {'limit img/s':>12s} {'minisnn':>8s} {'of limit':>9s}")
    for name, macs, limit, mt in limits:
        print(f"{name:22s} {macs / 1e9:12.3f} {limit:12.1f} {mt:8.1f} {mt / limit:8.0%}")


def _run_worker(impl: str, name: str, args, env) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, "--models", name or "-", "--batch-size", str(args.batch_size),
           "--threads", str(args.threads), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    cmd += ["--no-winograd"] if args.no_winograd else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{impl} worker failed on {name}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _gemm_rate() -> dict:
    """Best of 5 float32 4096 x 4096 x 4096 products, in GFLOP/s."""
    import minisnn  # noqa: F401  (the same thread settings as the minisnn worker)
    import numpy as np

    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    best = min(_timed(lambda: np.matmul(a, a, out=out)) for _ in range(5))
    return {"gflops": 2 * 4096**3 / best / 1e9}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _worker(args) -> dict:
    name = args.models[0]
    if args.worker == "gemm":
        return _gemm_rate()
    if args.worker == "minisnn":
        import minisnn  # before NumPy: its thread hand-off settings take effect, as in the `minisnn` command
        import numpy as np
        import numba
        from minisnn import F, models
        from minisnn.nn import init
        from minisnn.optim import AdamW
        from minisnn.spiking import reset_net

        numba.set_num_threads(args.threads)
        if args.no_winograd:
            from minisnn.ops import winograd
            winograd.MIN_CHANNELS = 1 << 30
        init.manual_seed(0)
        model = models.create(name)
        x, y = _batch(np, model.num_classes, args.batch_size)
        opt = AdamW(model.parameters(), lr=1e-4)

        def train():
            model.train()
            reset_net(model)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def infer():
            model.eval()
            reset_net(model)
            with minisnn.no_grad():
                model(x)
        params = model.num_parameters()
        from minisnn.models.flops import count_flops
        macs = sum(r.flops for r in count_flops(model)) * model.config.get("T", 1)
    else:
        import torch  # first, with PyTorch's default settings
        import numpy as np

        torch.set_num_threads(args.threads)
        from minisnn import models
        from minisnn.nn import init
        from minisnn.parity import build_oracle

        init.manual_seed(0)
        ours = models.create(name)
        oracle = build_oracle(name, dict(ours.config)).float()
        oracle.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
        params = ours.num_parameters()
        x, y = _batch(np, ours.num_classes, args.batch_size)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        opt = torch.optim.AdamW(oracle.parameters(), lr=1e-4)
        del ours

        def reset():
            for m in oracle.modules():
                if type(m).__name__.endswith("Node") and hasattr(m, "reset"):
                    m.reset()

        def train():
            oracle.train()
            reset()
            loss = torch.nn.functional.cross_entropy(oracle(xt), yt)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def infer():
            oracle.eval()
            reset()
            with torch.no_grad():
                oracle(xt)
    result = {"params": params}
    if args.worker == "minisnn":
        result["macs"] = macs
    for mode, fn in (("train", train), ("infer", infer)):
        for _ in range(args.warmup):
            fn()
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        result[mode] = ts
    return result


def _batch(np, num_classes, batch):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, num_classes, batch)


if __name__ == "__main__":
    main()
