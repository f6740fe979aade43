"""Training and inference throughput and memory: minisnn vs PyTorch + SpikingJelly, eager and compiled.

    python bench/bench_train.py                          # every CPU preset, batch 64, 2 threads, all peers
    python bench/bench_train.py --models dysvit-cifar10 --batch-size 64 --threads 2
    python bench/bench_train.py --peers eager            # only eager PyTorch + SpikingJelly
    python bench/bench_train.py --models qkformer-small --no-winograd    # minisnn's 3×3 convs on im2col
    python bench/bench_train.py --models dysvit-tiny --json results.json # every number, for the README

Every implementation gets the same architecture and weights (the PyTorch side is the model of
`minisnn/torch/`, the parity suite's oracle, loading the state_dict of minisnn's model, which a
first worker writes to a temporary file once per model), the same thread count (Numba/BLAS threads and
torch.set_num_threads), float32 parameters and the same random batch.  The weights are the fresh
network's, with the BatchNorms set so that it fires at `--firing-rate` (default 15 %) on that batch, as
a trained network does (`bench/_firing.py`; freshly initialised, it would hardly fire at all, and
every kernel whose work follows the spikes would be timed on the wrong input).  A training step is
forward + cross-entropy + backward + AdamW update, with neuron state reset before each step;
inference is a no-grad forward in eval mode.  The PyTorch peers (`--peers`):

* `eager`: the oracle as it is;
* `compile`: `torch.compile(oracle)`, Inductor, default mode, float32;
* `compile-bf16`: the same with forward and loss under `torch.autocast("cpu", dtype=torch.bfloat16)`.

The compiled peers use one compiled module for training and, after `model.eval()` under
`torch.no_grad()`, for inference (Dynamo compiles a second graph for it).  Compilation happens in
the warm-up calls and is not timed; a worker reports any compilation that still fell inside the
timed steps, and a peer that fails is reported as "failed: <message>" while the run goes on.
The first compilation of a model takes minutes on two cores; Inductor's on-disk cache makes the
later rounds' compilations shorter.

Each implementation runs in a process of its own, as a user runs it (`bench/_train_workers.py`):
the minisnn worker imports minisnn first (so its thread settings apply, as in the `minisnn`
command), the PyTorch workers import torch first with PyTorch's default settings.  Three thread
pools in one process (torch's OpenMP, Numba's, OpenBLAS's) on two cores would slow both sides.
Rounds of the workers alternate, so a busy moment of the machine hits all alike; the median over
all timed steps is reported.  Ratios are minisnn / peer: above 1 for images/s, minisnn is faster;
below 1 for memory, minisnn needs less.

Memory is the peak resident set of the training: `ru_maxrss` read in each worker right after
its timed training steps, before any inference, in a fresh process per implementation, model and
round.  It covers the imports (minisnn and Numba, or torch and SpikingJelly: the PyTorch workers
load the model's file by path without importing minisnn, and say so if minisnn got imported all
the same), the model, the optimizer state, the
steps and, for the compiled peers, what compilation took.  The median over rounds is printed.

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
import tempfile

DEFAULT_MODELS = ("dysvit-tiny", "spikformer-tiny", "qkformer-tiny", "msvit-tiny", "dysvit-cifar10")
PEERS = ("eager", "compile", "compile-bf16")
PEER_LABELS = {"eager": "torch+SJ eager", "compile": "torch.compile", "compile-bf16": "compile+bf16"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
WORKERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_train_workers.py")
# (label, key of the per-implementation summary, larger is better)
QUANTITIES = (("train img/s", "train_img_s", True), ("infer img/s", "infer_img_s", True),
              ("train peak MiB", "peak_rss_mib", False))


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS), help="PyTorch modes to time")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the workers")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per round and mode")
    p.add_argument("--warmup", type=int, default=2, help="warm-up calls per mode (more while one still compiles)")
    p.add_argument("--firing-rate", type=float, default=0.15,
                   help="mean firing rate the shared weights are set to on the batch (bench/_firing.py)")
    p.add_argument("--no-winograd", action="store_true", help="minisnn's 3x3 convolutions on im2col")
    p.add_argument("--json", metavar="PATH", help="write every number (medians and all samples) to this file")
    return p.parse_args()


def main():
    args = _parse()
    env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
    impls = ["minisnn", *(p for p in PEERS if p in args.peers)]
    machine = _machine(args.threads)
    print(f"machine: {machine['cpu']}, {machine['threads']} threads per implementation, "
          f"numpy {machine['numpy']} BLAS {machine['blas']}, torch {machine['torch']}")
    print(f"cpu flags: {' '.join(machine['flags']) or 'no AVX-512 or AMX'}")
    gemm = _run_worker("gemm", "", args, env, "").get("gflops")
    print(f"float32 GEMM (4096², {args.threads} threads): " + (f"{gemm:.0f} GFLOP/s" if gemm else "failed"))
    print(f"batch {args.batch_size}, float32 parameters, median of {args.rounds} x {args.repeats} steps, "
          "one process per implementation" + (", minisnn's 3x3 convolutions on im2col" if args.no_winograd else ""))
    print("(ratio) = minisnn / peer: above 1 minisnn is faster (img/s), below 1 it needs less memory (MiB); "
          "best torch: the fastest PyTorch mode, or the one needing the least memory\n")
    print(f"{'model':22s} {'params':>9s}  {'':16s} {'minisnn':>9s}"
          + "".join(f" {PEER_LABELS[p]:>20s}" for p in impls[1:]) + "  best torch")
    report = {"machine": machine, "settings": {k: v for k, v in vars(args).items() if k != "json"},
              "gemm_gflops": gemm, "models": {}}
    for name in args.models:
        with tempfile.TemporaryDirectory() as folder:
            weights = os.path.join(folder, "weights.npz")
            model = _run_worker("weights", name, args, env, weights)
            if "params" not in model:
                report["models"][name] = {"error": model["errors"]["worker"]}
                print(f"{name:22s} could not be built: {report['models'][name]['error']}")
                continue
            runs = {impl: [] for impl in impls}
            for _ in range(args.rounds):
                for impl in impls:
                    runs[impl].append(_run_worker(impl, name, args, env, weights))
        summary = {impl: _summarise(rs, args.batch_size) for impl, rs in runs.items()}
        params, macs = model["params"], model["macs"]
        limit = gemm * 1e9 / (6 * macs) if gemm and macs else None
        report["models"][name] = {"params": params, "forward_macs": macs, "gemm_limit_img_s": limit,
                                  "firing_rate": model["firing_rate"], "implementations": summary}
        _print_model(name, params, summary, impls[1:])
        print(f"{'':32s}  firing rate on the batch (eval): {model['firing_rate']:.1%}")
    print("\nagainst the GEMM rate: a training step is about 3 x 2 x the forward's multiply-adds")
    print(f"{'model':22s} {'fwd GMAC/img':>12s} {'limit img/s':>12s} {'minisnn':>8s} {'of limit':>9s}")
    for name, m in report["models"].items():
        mt = m["implementations"]["minisnn"]["train_img_s"] if "error" not in m else None
        if mt and m["gemm_limit_img_s"]:
            print(f"{name:22s} {m['forward_macs'] / 1e9:12.3f} {m['gemm_limit_img_s']:12.1f} {mt:8.1f} "
                  f"{mt / m['gemm_limit_img_s']:8.0%}")
        else:
            print(f"{name:22s} (no minisnn training result or GEMM rate)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"\nwrote {args.json}")


def _print_model(name: str, params, summary: dict, peers: list):
    """Three lines per model (train, infer, memory), then one line per failure."""
    for row, (label, key, larger_is_better) in enumerate(QUANTITIES):
        ours = summary["minisnn"][key]
        cells = []
        for peer in peers:
            theirs = summary[peer][key]
            if theirs is None:
                cells.append("failed" if summary[peer]["errors"] else "-")
            elif ours is None:
                cells.append(f"{theirs:.1f}")
            else:
                cells.append(f"{theirs:.1f} ({ours / theirs:.2f})")
        measured = [p for p in peers if summary[p][key] is not None]
        pick = max if larger_is_better else min
        best = pick(measured, key=lambda p: summary[p][key]) if measured else "-"
        head = f"{name:22s} {params:9,d}" if row == 0 else f"{'':32s}"
        print(f"{head}  {label:16s} {'failed' if ours is None else f'{ours:.1f}':>9s}"
              + "".join(f" {c:>20s}" for c in cells) + f"  {best}", flush=True)
    for impl, s in summary.items():
        for error in s["errors"]:
            print(f"{'':32s}  {impl} failed: {error}")
        if s.get("imports_minisnn"):
            print(f"{'':32s}  {impl}: this process imported minisnn too; its memory includes minisnn and Numba")
        if s.get("compiled_during_timing"):
            print(f"{'':32s}  {impl}: compilation inside the timed steps ({s['compiled_during_timing']} "
                  "counter increments); its times include it")


def _summarise(runs: list, batch_size: int) -> dict:
    """Medians over all rounds of one implementation, with every sample and every distinct error."""
    train = [t for r in runs for t in r.get("train", [])]
    infer = [t for r in runs for t in r.get("infer", [])]
    out = {"train_img_s": batch_size / statistics.median(train) if train else None,
           "infer_img_s": batch_size / statistics.median(infer) if infer else None,
           "train_s": train, "infer_s": infer}
    memory = [r["peak_rss_mib"] for r in runs if r.get("peak_rss_mib") is not None]
    out["peak_rss_mib"] = statistics.median(memory) if memory else None
    out["peak_rss_mib_samples"] = memory
    errors = [f"{mode}: {e}" for r in runs for mode, e in r.get("errors", {}).items()]
    out["errors"] = list(dict.fromkeys(errors))
    if any("imports_minisnn" in r for r in runs):  # a PyTorch peer
        out["imports_minisnn"] = any(r.get("imports_minisnn") for r in runs)
    if any("graphs" in r for r in runs):  # a compiled peer
        out["graphs"] = max(r.get("graphs", 0) for r in runs)
        out["graph_breaks"] = max(r.get("graph_breaks", 0) for r in runs)
        out["compiled_during_timing"] = sum(sum(r.get("compiled_during_timing", {}).values()) for r in runs)
    return out


def _run_worker(impl: str, name: str, args, env, weights: str) -> dict:
    """Run one worker process; a crash becomes {"errors": {"worker": <last line of its stderr>}}."""
    spec = {"impl": impl, "model": name, "weights": weights, "batch_size": args.batch_size, "threads": args.threads,
            "repeats": args.repeats, "warmup": args.warmup, "no_winograd": args.no_winograd,
            "firing_rate": args.firing_rate}
    out = subprocess.run([sys.executable, WORKERS, json.dumps(spec)], env=env, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = [s for s in out.stderr.strip().splitlines() if s.strip()] or [f"exit status {out.returncode}"]
    return {"errors": {"worker": tail[-1].strip()[:300]}}


def _machine(threads: int) -> dict:
    """CPU model and its AVX-512/AMX flags, NumPy's BLAS, torch's version (the parent process times nothing)."""
    cpu, flags = "unknown CPU", []
    try:
        with open("/proc/cpuinfo") as f:
            info = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}
        cpu = info.get("model name", cpu)  # the last CPU's fields
        flags = [f for f in info.get("flags", "").split() if f.startswith(("avx512", "amx"))]
    except OSError:
        pass
    import numpy

    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{p['internal_api']} {p['version']}" for p in threadpool_info() if p["user_api"] == "blas")
    except ImportError:
        try:
            dep = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
            blas = f"{dep['name']} {dep['version']}"
        except (TypeError, KeyError):
            blas = "unknown"
    try:
        import torch
        version = f"{torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()})"
    except ImportError:
        version = "not installed"
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "flags": flags, "threads": threads,
            "numpy": numpy.__version__, "blas": blas, "torch": version}


if __name__ == "__main__":
    main()
