"""Training and inference throughput: minisnn vs PyTorch + SpikingJelly on the same model.

    python bench/bench_train.py                          # every CPU preset, batch 64, 2 threads
    python bench/bench_train.py --models dysvit-cifar10 --batch-size 64 --threads 2

For each model both implementations get the same architecture and weights (the PyTorch
side is the oracle in `minisnn.parity.oracles`, state_dict copied over), the same thread
count (Numba/BLAS and torch.set_num_threads), float32, and the same random batch.
A training step is forward + cross-entropy + backward + AdamW update, with neuron state
reset before each step; inference is a no-grad forward in eval mode.  Repetitions of the
two implementations are interleaved and the median is reported.  The ratio column is
minisnn images/s divided by PyTorch images/s (above 1: minisnn is faster).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_MODELS = ("dysvit-tiny", "spikformer-tiny", "qkformer-tiny", "msvit-tiny", "dysvit-cifar10")


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    return p.parse_args()


def main():
    args = _parse()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        if os.environ.get(var) != str(args.threads):  # BLAS reads these at start-up: re-exec once
            env = dict(os.environ, **{v: str(args.threads) for v in
                                      ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                       "NUMBA_NUM_THREADS")})
            os.execve(sys.executable, [sys.executable, *sys.argv], env)

    import numpy as np
    import torch

    import minisnn
    from minisnn import F, models
    from minisnn.optim import AdamW
    from minisnn.parity import build_oracle
    from minisnn.spiking import reset_net

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    B = args.batch_size
    print(f"threads {args.threads} (torch {torch.get_num_threads()}, numba {_numba_threads()}), "
          f"batch {B}, float32, median of {args.repeats}")
    header = f"{'model':18s} {'params':>9s} | {'train img/s':>24s} {'ratio':>6s} | {'infer img/s':>24s} {'ratio':>6s}"
    print(header)
    print(f"{'':18s} {'':>9s} | {'minisnn':>11s} {'torch+SJ':>12s} {'':>6s} | {'minisnn':>11s} {'torch+SJ':>12s}")
    for name in args.models:
        model = models.create(name)
        oracle = build_oracle(name, dict(model.config)).float()
        oracle.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
        x = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, model.num_classes, B)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        opt = AdamW(model.parameters(), lr=1e-4)
        topt = torch.optim.AdamW(oracle.parameters(), lr=1e-4)

        def ours_train():
            model.train()
            reset_net(model)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def torch_train():
            oracle.train()
            _reset_torch(oracle)
            loss = torch.nn.functional.cross_entropy(oracle(xt), yt)
            topt.zero_grad()
            loss.backward()
            topt.step()

        def ours_infer():
            model.eval()
            reset_net(model)
            with minisnn.no_grad():
                model(x)

        def torch_infer():
            oracle.eval()
            _reset_torch(oracle)
            with torch.no_grad():
                oracle(xt)

        tr = _interleaved(ours_train, torch_train, args.warmup, args.repeats)
        inf = _interleaved(ours_infer, torch_infer, args.warmup, args.repeats)
        ips = [B / t for t in tr + inf]
        print(f"{name:18s} {model.num_parameters():9,d} | {ips[0]:11.1f} {ips[1]:12.1f} {ips[0] / ips[1]:6.2f} | "
              f"{ips[2]:11.1f} {ips[3]:12.1f} {ips[2] / ips[3]:6.2f}", flush=True)


def _numba_threads():
    import numba
    return numba.get_num_threads()


def _reset_torch(oracle):
    for m in oracle.modules():
        if type(m).__name__.endswith("Node") and hasattr(m, "reset"):
            m.reset()


def _interleaved(f_a, f_b, warmup, repeats):
    import numpy as np

    for _ in range(warmup):
        f_a()
        f_b()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f_a()
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        f_b()
        tb.append(time.perf_counter() - t0)
    return float(np.median(ta)), float(np.median(tb))


if __name__ == "__main__":
    main()
