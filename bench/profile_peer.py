"""Where the time of a PyTorch peer's training step goes: `torch.profiler` over a few steps of a
`bench_train.py` peer, split into matrix products, the other kernels and the optimizer.

    python bench/profile_peer.py --model dysvit-cifar10 --peer compile-bf16

The peer is built as `bench_train.py` builds it (`_train_workers.torch_steps`: the same weights, set to
fire at --firing-rate, the same batch, AdamW, the compiled module warmed up until it compiles nothing
more), in this process, with PyTorch's default settings.  Printed: the median time of a training step
without the profiler, then for the profiled steps the self time of

* matrix products: `aten::mm`, `addmm`, `bmm`, `baddbmm` and the convolutions (oneDNN), which bf16 autocast
  runs in bf16;
* other kernels: everything else outside the optimizer (Inductor's generated kernels for a compiled peer,
  the elementwise ATen operators for eager);
* optimizer: `Optimizer.step` and `zero_grad`, with everything they call.

Set beside `profile_train.py --model M` (minisnn's step by operation), it says which part of a step a
peer is faster at: with bf16 autocast, the matrix products run at about twice float32's rate on a CPU
with AVX512-BF16 or AMX, while the other kernels cost about what they cost in float32.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import _train_workers as workers  # bench/, this script's folder

MATRIX = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution",
          "aten::convolution_backward", "aten::_convolution_backward"}
OPTIMIZER = ("Optimizer.step", "Optimizer.zero_grad")


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dysvit-cifar10")
    p.add_argument("--peer", choices=("eager", "compile", "compile-bf16"), default="compile-bf16")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="profiled training steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--firing-rate", type=float, default=0.15)
    return p.parse_args()


def main():
    args = _args()
    import torch  # first, with PyTorch's default settings, as the peer's own worker
    from torch.profiler import ProfilerActivity, profile

    with tempfile.TemporaryDirectory() as folder:
        spec = {"impl": args.peer, "model": args.model, "weights": os.path.join(folder, "w.npz"),
                "batch_size": args.batch_size, "threads": args.threads, "warmup": args.warmup,
                "firing_rate": args.firing_rate}
        made = subprocess.run([sys.executable, workers.__file__, json.dumps({**spec, "impl": "weights"})],
                              capture_output=True, text=True, check=True)
        firing = json.loads(made.stdout.splitlines()[-1])["firing_rate"]
        train, _, compile_activity = workers.torch_steps(spec)
    workers._warm_up(train, args.warmup, compile_activity)
    step_ms = statistics.median(workers._timed(train) for _ in range(max(5, args.steps))) * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            train()
    events = prof.events()
    total = sum(e.self_cpu_time_total for e in events)
    optimizer = sum(e.cpu_time_total for e in events if e.name.startswith(OPTIMIZER) and not _inside(e, OPTIMIZER))
    matrix = sum(e.self_cpu_time_total for e in events if e.name in MATRIX and not _inside(e, OPTIMIZER))
    other = total - matrix - optimizer
    per_step = 1e-3 / args.steps   # µs over all steps -> ms a step
    print(f"{args.model}, {args.peer}, batch {args.batch_size}, {args.threads} threads, torch {torch.__version__}, "
          f"firing rate {100 * firing:.1f} %")
    print(f"training step: {step_ms:.1f} ms (median, no profiler); {args.steps} profiled steps:")
    for name, us in (("matrix products", matrix), ("other kernels", other), ("optimizer", optimizer)):
        print(f"  {name:<16} {us * per_step:8.1f} ms a step  {100 * us / total:5.1f} %")


def _inside(event, names) -> bool:
    """Whether an enclosing event is one of `names` (prefixes)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(names):
            return True
        parent = parent.cpu_parent
    return False


if __name__ == "__main__":
    main()
