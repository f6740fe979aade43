"""Paired timing: minisnn and one PyTorch peer alive side by side, timed in alternating turns.

    python bench/bench_paired.py --model spikformer-tiny --peer compile --mode infer --pairs 30
    python bench/bench_paired.py --model dysvit-tiny --peer compile-bf16 --mode train --pairs 20

`bench_train.py` times each implementation in rounds of a few steps in a fresh process, one after the
other; on a shared machine whose speed drifts by tens of percent from minute to minute (a cloud VM), a
slow minute can fall on one side of a round and decide a close ratio.  Here both workers start once
(`_train_workers.py` in its "serve" mode: same model, weights, batch, threads and settings as
`bench_train.py`, warmed up as it warms them) and then take turns, one computing at a time.  A turn is
one untimed step, which absorbs the hand-over from the other process (its caches, its threads going to
sleep), and then `--turn` timed steps back to back, as in a loop over batches; the turn's median is its
time.  A pair is a turn of each, in the order minisnn, peer and then peer, minisnn (so a steady drift
favours neither), with a pause of `--gap` seconds after every turn.

It prints both sides' median turn time and images/s, and the ratio of every pair, peer time / minisnn
time (above 1: minisnn is faster), as its median, quartiles and the share of pairs minisnn won.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_train import PEERS, PEER_LABELS, THREAD_VARS, WORKERS, _machine  # this folder


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="spikformer-tiny")
    p.add_argument("--peer", choices=PEERS, default="compile")
    p.add_argument("--mode", choices=("train", "infer"), default="infer")
    p.add_argument("--pairs", type=int, default=30, help="turns per side")
    p.add_argument("--turn", type=int, default=3, help="timed steps per turn, after one untimed step")
    p.add_argument("--gap", type=float, default=0.3, help="seconds of rest after every turn")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls (more while one still compiles)")
    p.add_argument("--firing-rate", type=float, default=0.15)
    p.add_argument("--peer-env", nargs="*", default=[], metavar="NAME=VALUE",
                   help="environment variables for the peer's process only (e.g. glibc's MALLOC_MMAP_THRESHOLD_)")
    p.add_argument("--json", metavar="PATH", help="write every step time to this file")
    return p.parse_args()


def _spec(args, impl: str, weights: str, serve: bool) -> dict:
    return {"impl": impl, "model": args.model, "weights": weights, "batch_size": args.batch_size,
            "threads": args.threads, "repeats": 1, "warmup": args.warmup, "no_winograd": False,
            "firing_rate": args.firing_rate, "serve": serve, "mode": args.mode}


class Worker:
    """One serving worker process: `step()` times one call, `close()` returns its final report."""

    def __init__(self, spec: dict, env: dict):
        self.name = spec["impl"]
        self.proc = subprocess.Popen([sys.executable, WORKERS, json.dumps(spec)], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def wait_ready(self) -> None:
        for line in self.proc.stdout:
            if line.strip() == "ready":
                return
        raise SystemExit(f"{self.name} worker ended before it was ready (exit status {self.proc.wait()})")

    def step(self) -> float:
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} worker ended during the timing (exit status {self.proc.wait()})")
        return float(line)

    def close(self) -> dict:
        self.proc.stdin.write("exit\n")
        self.proc.stdin.flush()
        lines = self.proc.stdout.read().strip().splitlines()
        self.proc.wait()
        return json.loads(lines[-1]) if lines else {}


def main():
    args = _parse()
    env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
    machine = _machine(args.threads)
    print(f"machine: {machine['cpu']}, {args.threads} threads per implementation, numpy {machine['numpy']} "
          f"BLAS {machine['blas']}, torch {machine['torch']}")
    print(f"{args.model}, {args.mode}, batch {args.batch_size}: minisnn against {PEER_LABELS[args.peer]}"
          + (f" (with {' '.join(args.peer_env)})" if args.peer_env else "")
          + f", {args.pairs} pairs of turns of 1 + {args.turn} steps, {args.gap} s apart")
    with tempfile.TemporaryDirectory() as folder:
        weights = os.path.join(folder, "weights.npz")
        made = subprocess.run([sys.executable, WORKERS, json.dumps(_spec(args, "weights", weights, False))],
                              env=env, capture_output=True, text=True)
        if made.returncode != 0:
            raise SystemExit(f"could not build {args.model}: {made.stderr.strip().splitlines()[-1:]}")
        peer_env = dict(env, **dict(item.split("=", 1) for item in args.peer_env))
        workers = {"minisnn": Worker(_spec(args, "minisnn", weights, True), env),
                   args.peer: Worker(_spec(args, args.peer, weights, True), peer_env)}
        for w in workers.values():     # one at a time: the warm-ups (and a compilation) do not overlap
            w.wait_ready()
        ours, theirs = workers["minisnn"], workers[args.peer]
        times = {"minisnn": [], args.peer: []}
        for i in range(args.pairs):
            for w in ((ours, theirs) if i % 2 == 0 else (theirs, ours)):
                turn = [w.step() for _ in range(args.turn + 1)][1:]     # the first step of a turn settles
                times[w.name].append(statistics.median(turn))
                time.sleep(args.gap)
            print(f"\rpair {i + 1}/{args.pairs}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        reports = {impl: w.close() for impl, w in workers.items()}
    ratios = [p / m for m, p in zip(times["minisnn"], times[args.peer])]
    median = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (median,) * 3
    for impl, ts in times.items():
        t = statistics.median(ts)
        print(f"{impl:>14s}: median turn {t * 1e3:.1f} ms a step ({args.batch_size / t:.1f} img/s), "
              f"range {min(ts) * 1e3:.1f}-{max(ts) * 1e3:.1f} ms")
    won = sum(r > 1 for r in ratios)
    print(f"pair ratio {PEER_LABELS[args.peer]} time / minisnn time: median {median:.3f}, quartiles {q1:.3f}-{q3:.3f}; "
          f"minisnn faster in {won} of {len(ratios)} pairs")
    compiled = reports.get(args.peer, {}).get("compiled_during_timing")
    if compiled:
        print(f"note: {args.peer} compiled during the timed steps ({compiled} counter events)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "settings": vars(args), "times_s": times, "reports": reports}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
