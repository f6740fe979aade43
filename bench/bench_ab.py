"""A/B: minisnn training (or inference) throughput of two source trees (two commits), alternating, same machine.

    git worktree add /tmp/before <commit>            # or: git archive <commit> minisnn | tar -x -C /tmp/before
    python bench/bench_ab.py --a /tmp/before --b . --models dysvit-tiny spikformer-tiny qkformer-tiny

Each measurement is a fresh process that imports `minisnn` from the given tree (PYTHONPATH), builds
the model with seed 0, sets its BatchNorms so that it fires at `--firing-rate` (default 15 %) on the
batch (`bench/_firing.py`, this checkout's, on either tree), runs `--warmup` training steps (forward,
cross-entropy, backward, AdamW) and times `--repeats` more on one fixed random batch; with `--infer`,
no-grad forward passes in eval mode instead.  Rounds alternate A and B, so a busy moment
of the machine hits both alike; the medians and the ratio B/A (above 1: B is faster) are printed,
and the median peak resident memory of the processes (`ru_maxrss` after the timed steps: the model,
the optimizer state, the steps).

A freshly initialised network on random images fires at rates unlike a trained one's (dysvit-conv's
blocks do not fire at all there), which misleads any change whose speed depends on the firing rate:
hence `--firing-rate`.  `--weights FILE` (a checkpoint or `minisnn export` file of each --models
network, or a shipped name such as speedrun-60-cifar10) starts from those weights, on the embedded
sample's images normalised as the file records, so the spikes are those of that stage of training.
Set the thread count with --threads (Numba, BLAS and OpenMP variables); pin cores with taskset.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

WORKER = """
import json, resource, sys, time
import minisnn
import numpy as np
from minisnn import functional as F, models
from minisnn.nn import init
from minisnn.optim import AdamW
name, batch, warmup, repeats, weights = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
infer, firing_rate = sys.argv[6] == "infer", float(sys.argv[7])
sys.path.insert(0, sys.argv[8])   # the folder of bench_ab.py, for _firing
init.manual_seed(0)
rng = np.random.default_rng(0)
if weights:
    from minisnn.data import load_sample, normalize
    from minisnn.train.export import load_trained, pretrained_names, pretrained_path
    model, state = load_trained(pretrained_path(weights) if weights in pretrained_names() else weights)
    if name not in (state["model_name"], models.network_of(state["model_name"])):
        raise SystemExit(f"--weights holds a {state['model_name']}, not a {name}")
    images, labels = load_sample()["train"]
    pick = rng.choice(len(labels), batch, replace=len(labels) < batch)
    x = normalize(images[pick], state["normalization"]).astype(np.float32)
    y = labels[pick]
else:
    from _firing import fire_like_trained
    model = models.create(name)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, model.num_classes, batch)
    fire_like_trained(model, x, firing_rate)
model.eval() if infer else model.train()
opt = AdamW(model.parameters(), lr=1e-3)
times = []
for i in range(warmup + repeats):
    t0 = time.perf_counter()
    if infer:
        with minisnn.no_grad():
            model(x)
    else:
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        del loss   # an older tree's graph keeps its saved arrays as long as the loss lives
    if i >= warmup:
        times.append(time.perf_counter() - t0)
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
print(json.dumps({"file": minisnn.__file__, "times": times, "peak_rss_mib": peak_mib}))
"""


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="source tree A (holds the minisnn package)")
    p.add_argument("--b", required=True, help="source tree B")
    p.add_argument("--models", nargs="+", default=["dysvit-tiny", "spikformer-tiny", "qkformer-tiny"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--weights", default="", help="start from these trained weights, on the embedded sample's images "
                                                  "(a checkpoint or export file, or a shipped name)")
    p.add_argument("--firing-rate", type=float, default=0.15,
                   help="without --weights: the mean firing rate the fresh network is set to (bench/_firing.py)")
    p.add_argument("--infer", action="store_true", help="time no-grad eval forward passes instead of training steps")
    return p.parse_args()


def _measure(tree: str, name: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), **{v: str(args.threads) for v in THREAD_VARS})
    out = subprocess.run([sys.executable, "-c", WORKER, name, str(args.batch_size), str(args.warmup),
                          str(args.repeats), args.weights, "infer" if args.infer else "train", str(args.firing_rate),
                          os.path.dirname(os.path.abspath(__file__))], env=env, cwd=os.path.abspath(tree), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{tree}: the {name} worker failed:\n{out.stderr.strip()}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = os.path.join(os.path.abspath(tree), "minisnn")
    if not result["file"].startswith(expected):
        raise RuntimeError(f"{tree}: imported minisnn from {result['file']}, not from the tree")
    return result


def main():
    args = _parse()
    print(f"A = {args.a}, B = {args.b}; batch {args.batch_size}, {args.threads} threads, "
          f"{args.rounds} alternating rounds x {args.repeats} timed {'forward passes' if args.infer else 'steps'}")
    print(f"{'model':22s} {'A img/s':>9s} {'B img/s':>9s} {'B/A':>6s} {'A peak MiB':>11s} {'B peak MiB':>11s} {'B/A':>6s}")
    for name in args.models:
        samples, peaks = {"a": [], "b": []}, {"a": [], "b": []}
        for _ in range(args.rounds):
            for side in ("a", "b"):
                result = _measure(getattr(args, side), name, args)
                samples[side] += result["times"]
                peaks[side].append(result["peak_rss_mib"])
        a, b = (args.batch_size / statistics.median(samples[s]) for s in ("a", "b"))
        mem_a, mem_b = (statistics.median(peaks[s]) for s in ("a", "b"))
        print(f"{name:22s} {a:9.1f} {b:9.1f} {b / a:6.3f} {mem_a:11.0f} {mem_b:11.0f} {mem_b / mem_a:6.3f}", flush=True)


if __name__ == "__main__":
    main()
