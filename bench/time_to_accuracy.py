"""Time to accuracy: validation accuracy against wall-clock minutes, minisnn's presets and a PyTorch peer.

    python bench/time_to_accuracy.py --minutes 60 --data-dir DATA            # the default presets and the peer
    python bench/time_to_accuracy.py --minutes 60 --presets dysvit-tiny --data-dir DATA --out runs/tta
    python bench/time_to_accuracy.py --minutes 0.2 --out /tmp/tta            # a smoke test on the embedded sample
    python bench/time_to_accuracy.py --minutes 60 --reuse --data-dir DATA    # go on after an interruption

Every run is `minisnn train --model PRESET --time-budget MINUTES --threads THREADS` in a process of its own:
the preset's recipe (its family's, `minisnn train --help`), planned over the steps that fit in the budget,
validation after every epoch included.  The presets are, by default, the registered `speedrun-*` models whose
own budget is --minutes (speedrun-10 for 10, speedrun-60 for 60; every speedrun preset if none is) and
dysvit-tiny; a name that is not registered is skipped with a note.

The PyTorch peer trains the first preset (or --peer) with the same recipe, time budget and data through the
torch engine (`minisnn.torch.train`: the model converted by `minisnn.torch.to_torch`, the parity suite's
oracle) on the CPU, through `torch.compile`, with torch.set_num_threads(THREADS); when compilation fails, it
trains eagerly and the table says why.  Compilation time counts against its budget, as Numba's does for minisnn.

Both kinds of run write metrics.jsonl, whose records give the cumulative wall-clock minutes (`wall_minutes`)
and the validation accuracy after every epoch.  The script writes, under --out:

    time_to_accuracy.png   validation accuracy against minutes, one line per run, the CPU in the title
    time_to_accuracy.md    one row per run: minutes used, steps, epochs, final and best accuracy, minutes
                           to reach each --targets accuracy
    time_to_accuracy.json  every point, with the machine
    runs/LABEL/            each run's folder (checkpoints, metrics.jsonl, curves.png)

The runs take turns, one after another, so each has the cores to itself; the machine should be otherwise idle.
With --reuse, a run whose folder says it finished with the same settings (its `finished.json`: model, engine,
minutes, threads, seed, data, CPU) is read back instead of trained again, so an interrupted comparison goes on from
the run it stopped in, and hours of runs can be spread over several sittings.
Every process runs the minisnn of this checkout (the folder above bench/), whatever else is installed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench_train import THREAD_VARS, _machine  # noqa: E402  (this folder: the CPU, BLAS and torch versions)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # the minisnn of this checkout, here and in the runs (PYTHONPATH)

from minisnn import models  # noqa: E402
from minisnn.train.state import load_state  # noqa: E402
PEER_WORKER = "peer"           # `python bench/time_to_accuracy.py peer SPEC`: the PyTorch run, in its own process
FINISHED = "finished.json"     # written in a run's folder once it trained to its end: its settings (for --reuse)


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--minutes", type=float, default=60.0, help="time budget of every run (default: 60)")
    p.add_argument("--threads", type=int, default=2, help="threads of every run (default: 2)")
    p.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ (default: minisnn's search, then the "
                                      "embedded sample)")
    p.add_argument("--out", default="runs/time_to_accuracy", help="where the figure, the table and the runs go")
    p.add_argument("--presets", nargs="+", help="registered models to train (default: the speedrun-* presets made "
                                                "for --minutes, or all of them, and dysvit-tiny)")
    p.add_argument("--peer", help="the preset the PyTorch peer trains (default: the first preset; 'none': no peer)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--reuse", action="store_true", help="read back the runs in --out that finished with the same "
                                                        "settings instead of training them again")
    p.add_argument("--targets", type=float, nargs="*", default=[0.5, 0.6, 0.65],
                   help="accuracies whose time to reach the table gives (default: 0.5 0.6 0.65)")
    return p.parse_args(argv)


def default_presets(minutes: float) -> list[str]:
    """The speedrun presets made for `minutes` (all of them if none is), then dysvit-tiny."""
    speedruns = sorted(n for n in models.names() if n.startswith("speedrun-"))
    fitting = [n for n in speedruns if models.training_recipe(n).get("time_budget") == minutes]
    return (fitting or speedruns) + ["dysvit-tiny"]


def main(argv=None) -> None:
    args = _parse(argv)
    out = Path(args.out)
    env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS},
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    presets = args.presets or default_presets(args.minutes)
    notes = [] if args.presets or len(presets) > 1 else ["no speedrun-* preset is registered: dysvit-tiny only"]
    for name in [p for p in presets if p not in models.names()]:
        notes.append(f"skipped {name}: not a registered model (`minisnn models` lists them)")
    presets = [p for p in presets if p in models.names()]
    peer = presets[0] if args.peer is None and presets else args.peer
    if peer not in (None, "none") and peer not in models.names():
        notes.append(f"no PyTorch peer: {peer} is not a registered model")
        peer = None
    machine = _machine(args.threads)
    args.cpu = machine["cpu"]      # a run is reused only on the same CPU (--reuse)
    print(f"machine: {machine['cpu']}, {args.threads} threads per run, {args.minutes:g} minutes each")

    results = []
    for name in presets:
        results.append(_train_minisnn(name, args, out, env))
    if peer not in (None, "none"):
        result = _train_peer(peer, args, out, env, compile_model=True)
        if result["error"]:
            notes.append(f"torch.compile failed for the peer ({result['error']}); it trained eagerly")
            result = _train_peer(peer, args, out, env, compile_model=False)
        results.append(result)
    for r in results:
        if r["error"]:
            notes.append(f"{r['label']} failed: {r['error']}")
    results = [r for r in results if r["points"]]

    out.mkdir(parents=True, exist_ok=True)
    title = f"CIFAR-10 validation accuracy against wall clock\n{machine['cpu']}, {args.threads} threads"
    _plot(results, title, args.minutes, out / "time_to_accuracy.png")
    table = _table(results, args, machine, notes)
    (out / "time_to_accuracy.md").write_text(table)
    (out / "time_to_accuracy.json").write_text(json.dumps({"machine": machine, "settings": vars(args),
                                                           "notes": notes, "runs": results}, indent=1))
    print(table)
    print(f"wrote {out / 'time_to_accuracy.png'}, {out / 'time_to_accuracy.md'}, {out / 'time_to_accuracy.json'}")


# ------------------------------------------------------------------ the runs
def _common_options(args) -> list[str]:
    return ["--time-budget", str(args.minutes), "--threads", str(args.threads), "--seed", str(args.seed),
            *(["--data-dir", args.data_dir] if args.data_dir else [])]


def _settings(name: str, engine: str, args) -> dict:
    """What makes two runs of the same preset the same run (`finished.json`, for --reuse)."""
    return {"model": name, "engine": engine, "minutes": args.minutes, "threads": args.threads, "seed": args.seed,
            "data_dir": args.data_dir, "cpu": args.cpu}


def _run_once(label: str, engine: str, folder: Path, settings: dict, args, train) -> dict:
    """The result of `train()` (a finished subprocess) for the run in `folder`, marked once it trained to its end;
    with --reuse, the run already there if it finished with `settings` (a failed run is never marked)."""
    marker = folder / FINISHED
    if args.reuse and marker.is_file() and json.loads(marker.read_text()) == settings:
        print(f"\nreusing {folder} ({label}, finished with the same settings)", flush=True)
        return _collect(label, engine, folder, subprocess.CompletedProcess([], 0))
    result = _collect(label, engine, folder, train())
    if not result["error"]:
        marker.write_text(json.dumps(settings))
    return result


def _train_minisnn(name: str, args, out: Path, env) -> dict:
    """`minisnn train` of preset `name` (from this checkout), in its own process."""
    folder = out / "runs" / name
    command = [sys.executable, "-m", "minisnn", "train", "--model", name, *_common_options(args), "--out",
               str(folder), "--overwrite", "--no-progress"]

    def train():
        print(f"\n$ {' '.join(command[1:])}", flush=True)
        return subprocess.run(command, cwd=ROOT, env=env)

    return _run_once(name, "minisnn", folder, _settings(name, "minisnn", args), args, train)


def _train_peer(name: str, args, out: Path, env, compile_model: bool) -> dict:
    """The PyTorch peer of preset `name`: `peer_worker` in its own process."""
    label = f"{name} (PyTorch{', torch.compile' if compile_model else ', eager'})"
    folder = out / "runs" / f"{name}-torch"
    spec = {"model": name, "minutes": args.minutes, "threads": args.threads, "data_dir": args.data_dir,
            "seed": args.seed, "out": str(folder), "compile_model": compile_model}

    def train():
        print(f"\n$ PyTorch peer: {label}", flush=True)
        done = subprocess.run([sys.executable, os.path.abspath(__file__), PEER_WORKER, json.dumps(spec)], cwd=ROOT,
                              env=env, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(done.stderr[-4000:])
        return done

    settings = _settings(name, "PyTorch, torch.compile" if compile_model else "PyTorch, eager", args)
    return _run_once(label, "PyTorch", folder, settings, args, train)


def peer_worker(spec: dict) -> None:
    """Train `spec["model"]` with the torch engine: the config `minisnn train` would build from the same options."""
    from minisnn.torch import train  # optional dependency: torch is imported in the peer's process only
    from minisnn.train import config_for

    shutil.rmtree(spec["out"], ignore_errors=True)
    config = config_for(spec["model"], time_budget=spec["minutes"], threads=spec["threads"], seed=spec["seed"],
                        data_dir=spec["data_dir"], out=spec["out"])
    train(config, device="cpu", progress=False, compile_model=spec["compile_model"])


def _collect(label: str, engine: str, folder: Path, done: subprocess.CompletedProcess) -> dict:
    """The run's points from its metrics.jsonl, its length from last.npz, or the error that stopped it."""
    result = {"label": label, "engine": engine, "folder": str(folder), "points": [], "error": None}
    if done.returncode != 0:
        tail = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
        result["error"] = tail[-1].strip()[:300] if tail else f"exit status {done.returncode}"
        return result
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    state = load_state(folder / "last.npz")
    steps_per_epoch = state["train_images"] // state["config"]["batch_size"]
    result.update(points=[(r["wall_minutes"], r["val_acc"]) for r in records],
                  steps=records[-1]["steps"], epochs=records[-1]["steps"] / steps_per_epoch,
                  minutes=records[-1]["wall_minutes"], budget=state["config"]["time_budget"],
                  plan=state.get("budget", {}).get("notes", []))
    return result


# ------------------------------------------------------------------ the figure and the table
def _plot(results: list[dict], title: str, budget: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.axvline(budget, color="0.6", linewidth=1, linestyle=":", label=f"budget, {budget:g} min")
    for r in results:
        minutes, acc = zip(*r["points"])
        ax.plot(minutes, [100 * a for a in acc], marker="o", markersize=3,
                linestyle="--" if r["engine"] == "PyTorch" else "-", label=r["label"])
    ax.set_xlabel("wall-clock minutes (training and validation)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def minutes_to(points: list, target: float) -> float | None:
    """The wall-clock minutes of the first validation at or above `target` accuracy; None if none is."""
    return next((m for m, acc in points if acc is not None and acc >= target), None)


def _table(results: list[dict], args, machine: dict, notes: list[str]) -> str:
    targets = " | ".join(f"min to {100 * t:g} %" for t in args.targets)
    lines = [f"Machine: {machine['cpu']}, {args.threads} threads per run; time budget {args.minutes:g} minutes per "
             "run, validation included.", "",
             f"| run | minutes used | steps | epochs | final val acc | best val acc | {targets} |",
             "|" + "---|" * (6 + len(args.targets))]
    for r in results:
        accs = [a for _, a in r["points"] if a is not None]
        reached = " | ".join("-" if minutes_to(r["points"], t) is None else f"{minutes_to(r['points'], t):.1f}"
                             for t in args.targets)
        lines.append(f"| {r['label']} | {r['minutes']:.1f} | {r['steps']:,} | {r['epochs']:.2f} | "
                     f"{100 * accs[-1]:.2f} % | {100 * max(accs):.2f} % | {reached} |")
    lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == PEER_WORKER:
        peer_worker(json.loads(sys.argv[2]))
    else:
        main()
