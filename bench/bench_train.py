"""Training and inference throughput: minisnn vs PyTorch + SpikingJelly on the same model.

    python bench/bench_train.py                          # every CPU preset, batch 64, 2 threads
    python bench/bench_train.py --models dysvit-cifar10 --batch-size 64 --threads 2

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
    p.add_argument("--worker", choices=("minisnn", "torch"), help=argparse.SUPPRESS)
    return p.parse_args()


def main():
    args = _parse()
    if args.worker:
        print(json.dumps(_worker(args)))
        return
    env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
    print(f"threads {args.threads} per implementation, batch {args.batch_size}, float32, "
          f"median of {args.rounds} x {args.repeats} steps, one process per implementation")
    print(f"{'model':22s} {'params':>9s} | {'train img/s':>24s} {'ratio':>6s} | {'infer img/s':>24s} {'ratio':>6s}")
    print(f"{'':22s} {'':>9s} | {'minisnn':>11s} {'torch+SJ':>12s} {'':>6s} | {'minisnn':>11s} {'torch+SJ':>12s}")
    for name in args.models:
        times = {"minisnn": {"train": [], "infer": []}, "torch": {"train": [], "infer": []}}
        params = 0
        for _ in range(args.rounds):
            for impl in ("minisnn", "torch"):
                cmd = [sys.executable, __file__, "--worker", impl, "--models", name, "--batch-size",
                       str(args.batch_size), "--threads", str(args.threads), "--repeats", str(args.repeats),
                       "--warmup", str(args.warmup)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{impl} worker failed on {name}:\n{out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                params = r["params"]
                for mode in ("train", "infer"):
                    times[impl][mode] += r[mode]
        ips = {impl: {m: args.batch_size / statistics.median(t) for m, t in d.items()} for impl, d in times.items()}
        mt, tt = ips["minisnn"]["train"], ips["torch"]["train"]
        mi, ti = ips["minisnn"]["infer"], ips["torch"]["infer"]
        print(f"{name:22s} {params:9,d} | {mt:11.1f} {tt:12.1f} {mt / tt:6.2f} | {mi:11.1f} {ti:12.1f} {mi / ti:6.2f}",
              flush=True)


def _worker(args) -> dict:
    name = args.models[0]
    if args.worker == "minisnn":
        import minisnn  # before NumPy: its thread hand-off settings take effect, as in the `minisnn` command
        import numpy as np
        import numba
        from minisnn import F, models
        from minisnn.nn import init
        from minisnn.optim import AdamW
        from minisnn.spiking import reset_net

        numba.set_num_threads(args.threads)
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
