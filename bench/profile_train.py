"""Where the time of a minisnn training step goes: cProfile of a few steps, grouped by operation.

    python bench/profile_train.py --model dysvit-cifar10 --batch-size 64 --steps 5
    python bench/profile_train.py --model dysvit-tiny --top 30        # also the 30 costliest functions
    python bench/profile_train.py --model spikformer-tiny --infer     # inference: eval-mode forwards, no graph

The network's BatchNorms are first set so that it fires at `--firing-rate` (default 15 %) on the
profiled batch, as a trained network does (`bench/_firing.py`); a fresh one would hardly fire.
A step is what the trainer does: forward, cross-entropy, backward, AdamW update.  The table
groups the time spent inside each autograd Function's forward and backward (kernels included)
by Function class, so "Linear backward 27 %" reads directly; the rest of the step (the optimizer,
the graph walk, Python glue) is the remainder.  Two warm-up steps run first, so compiling Numba
kernels is not counted.  cProfile adds a little overhead to every Python call, so shares of
Python-heavy parts read slightly high; the kernels themselves are not slowed down.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections import defaultdict

import minisnn  # first, so its thread settings apply
import numpy as np

from minisnn import functional as F, models, no_grad
from minisnn.autograd.function import Function
from minisnn.nn import init
from minisnn.optim import AdamW
from _firing import fire_like_trained  # bench/, this script's folder


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="dysvit-cifar10")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=0, help="also list the N functions with the most own time")
    p.add_argument("--infer", action="store_true", help="profile inference (eval mode, no graph) instead of training")
    p.add_argument("--firing-rate", type=float, default=0.15, help="the mean firing rate the network is set to")
    return p.parse_args()


def _step(model, optimizer, x, y):
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=0.1)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _infer(model, optimizer, x, y):
    with no_grad():
        model(x)


def _function_methods() -> dict[tuple[str, int], str]:
    """(file, first line) of every autograd Function's forward/backward -> "Class forward"."""
    out, todo = {}, list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        for method in ("forward", "backward"):
            fn = cls.__dict__.get(method)
            fn = getattr(fn, "__func__", fn)
            if fn is not None and hasattr(fn, "__code__"):
                out[(fn.__code__.co_filename, fn.__code__.co_firstlineno)] = f"{cls.__name__} {method}"
    return out


def _function_shares(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds inside each Function's forward/backward, keyed "Class forward" / "Class backward".

    A Function's forward/backward calls only kernels and NumPy (never another Function), so these
    cumulative times do not overlap."""
    methods = _function_methods()
    out: dict[str, float] = defaultdict(float)
    for (filename, line, _), (_, _, _, cumulative, _) in stats.stats.items():
        if (filename, line) in methods:
            out[methods[(filename, line)]] += cumulative
    return dict(out)


def main():
    args = _parse()
    init.manual_seed(0)
    model = models.create(args.model)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, model.num_classes, args.batch_size)
    rate = fire_like_trained(model, x, args.firing_rate)
    model.train(not args.infer)
    run = _infer if args.infer else _step
    optimizer = AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):
        run(model, optimizer, x, y)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for _ in range(args.steps):
        run(model, optimizer, x, y)
    profiler.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"{args.model}, batch {args.batch_size}, {'inference' if args.infer else 'training'}: "
          f"{args.steps} steps in {wall:.2f} s "
          f"({args.steps * args.batch_size / wall:.1f} img/s under the profiler), firing rate {rate:.1%}")
    shares = sorted(_function_shares(stats).items(), key=lambda kv: -kv[1])
    print(f"\n{'Function and pass':40s} {'s/step':>8s} {'share':>7s}")
    for key, seconds in shares:
        print(f"{key:40s} {seconds / args.steps:8.4f} {seconds / total:7.1%}")
    rest = total - sum(s for _, s in shares)
    print(f"{'rest (optimizer, graph walk, glue)':40s} {rest / args.steps:8.4f} {rest / total:7.1%}")
    if args.top:
        print()
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
