"""The worker processes of `bench_train.py`: one implementation, one model, one process.

    python bench/_train_workers.py '{"impl": "compile", "model": "dysvit-tiny", "weights": "/tmp/w.npz",
                                     "batch_size": 64, "threads": 2, "repeats": 3, "warmup": 2,
                                     "no_winograd": false}'

prints one JSON line with the timed steps in seconds ("train", "infer") and the peak resident
memory of the training ("peak_rss_mib"). With "serve": true and "mode": "train" or "infer" the
worker instead warms up (training, then inference for "infer", as it times them), prints "ready" and
times one call of that mode per line "step" on its stdin (`bench_paired.py`, which alternates two
such workers). An implementation that fails in one mode writes a one-line message under "errors" and
still runs the other mode.

Implementations ("impl"):

* `weights`: builds the minisnn model (seed 0), sets its BatchNorms so that it fires at
  "firing_rate" on the benchmark's batch as a trained network would (`_firing.fire_like_trained`),
  and writes its config and state_dict to "weights" (an .npz) for the other workers; returns the
  parameter count, the forward's multiply-adds and the firing rate reached;
* `minisnn`: imported first (before NumPy), so its thread hand-off settings apply, as in the
  `minisnn` command; builds the model and loads those weights;
* `eager`: the PyTorch + SpikingJelly version of the model (`minisnn/torch/`, the parity oracles)
  with those weights, torch imported first with PyTorch's default settings.  Its model file is plain
  torch and SpikingJelly and is loaded by path, so this process does not import minisnn (nor Numba);
* `compile`: the same module under `torch.compile` (Inductor, default mode), float32;
* `compile-bf16`: the compiled module with forward and loss under
  `torch.autocast("cpu", dtype=torch.bfloat16)`; backward and AdamW step outside it, as usual;
* `gemm`: the best of 5 float32 4096³ products through NumPy on minisnn's thread settings.

A training step is forward + cross-entropy + backward + AdamW with neuron state reset first;
inference is a no-grad forward in eval mode.  The compiled peers use one compiled module for both,
as torch users do: `model.eval()` under `torch.no_grad()` makes Dynamo compile a second graph on
the first inference call.  Warm-up calls absorb every compilation: each mode keeps warming up
(beyond `warmup` calls, at most 10 more) until a call compiles nothing, and the worker reports
how much Dynamo/Inductor activity fell inside the timed steps (`compiled_during_timing`, 0 when
nothing was recompiled).

Memory: "peak_rss_mib" is `ru_maxrss` right after the timed training steps, before any inference:
the peak of this process (imports, model, optimizer state, the steps, and for the compiled peers
what compilation took).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import sys
import time


def main():
    spec = json.loads(sys.argv[1])
    workers = {"gemm": _gemm_rate, "weights": _write_weights, "minisnn": _minisnn_worker}
    result = workers.get(spec["impl"], _torch_worker)(spec)
    print(json.dumps(result))


def _serve(train, infer, spec, compile_activity=None) -> dict:
    """The paired mode of `bench_paired.py`: warm up training, and inference too when the spec's "mode" is
    "infer" (the order of `_measure`, so that the process is in the state it times inference in), print
    "ready", then time one call of that mode per line "step" read from stdin, printing its seconds, until
    the line "exit"."""
    _warm_up(train, spec["warmup"], compile_activity)
    fn = train
    if spec["mode"] == "infer":
        fn = infer
        _warm_up(infer, spec["warmup"], compile_activity)
    print("ready", flush=True)
    compiled = 0
    for line in sys.stdin:
        if line.strip() != "step":
            break
        before = compile_activity() if compile_activity else 0
        print(_timed(fn), flush=True)
        compiled += (compile_activity() - before) if compile_activity else 0
    return {"compiled_during_timing": compiled,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _gemm_rate(spec) -> dict:
    """Best of 5 float32 4096 x 4096 x 4096 products, in GFLOP/s."""
    import minisnn  # noqa: F401  (the same thread settings as the minisnn worker)
    import numpy as np

    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    best = min(_timed(lambda: np.matmul(a, a, out=out)) for _ in range(5))
    return {"gflops": 2 * 4096**3 / best / 1e9}


def _write_weights(spec) -> dict:
    """The model's config and state_dict into spec["weights"]; its parameters and forward multiply-adds."""
    import numpy as np
    from minisnn import models
    from minisnn.models.flops import count_flops
    from minisnn.nn import init
    from _firing import fire_like_trained  # bench/, this script's folder

    init.manual_seed(0)
    model = models.create(spec["model"])
    x, _ = _batch(np, model.num_classes, spec["batch_size"])
    rate = fire_like_trained(model, x, spec["firing_rate"])
    arrays = {k: np.array(v) for k, v in model.state_dict().items()}
    np.savez(spec["weights"], __config__=json.dumps(dict(model.config)), **arrays)
    macs = sum(r.flops for r in count_flops(model)) * model.config.get("T", 1)
    return {"params": model.num_parameters(), "macs": macs, "firing_rate": rate}


def _minisnn_worker(spec) -> dict:
    import minisnn  # before NumPy: its thread hand-off settings take effect, as in the `minisnn` command
    import numpy as np
    import numba
    from minisnn import F, models
    from minisnn.nn import init
    from minisnn.optim import AdamW
    from minisnn.spiking import reset_net

    numba.set_num_threads(spec["threads"])
    if spec["no_winograd"]:
        from minisnn.ops import winograd
        winograd.MIN_CHANNELS = 1 << 30
    init.manual_seed(0)
    model = models.create(spec["model"])
    with np.load(spec["weights"]) as saved:
        model.load_state_dict({k: saved[k] for k in saved.files if k != "__config__"})
    x, y = _batch(np, model.num_classes, spec["batch_size"])
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
    if spec.get("serve"):
        return _serve(train, infer, spec)
    return _measure(train, infer, spec)


def _torch_worker(spec) -> dict:
    train, infer, compile_activity = torch_steps(spec)
    if spec.get("serve"):
        return _serve(train, infer, spec, compile_activity)
    if compile_activity is None:
        return {**_measure(train, infer, spec), "imports_minisnn": "minisnn" in sys.modules}
    from torch._dynamo.utils import counters

    result = _measure(train, infer, spec, compile_activity)
    result["graphs"] = counters["stats"]["unique_graphs"]
    result["graph_breaks"] = sum(counters["graph_break"].values())
    result["imports_minisnn"] = "minisnn" in sys.modules  # False unless the model files start importing it
    return result


def torch_steps(spec):
    """(train, infer, compile_activity) of the PyTorch peer spec["impl"] (eager, compile or compile-bf16) on the
    weights in spec["weights"]: a training step and an inference call, as described above, and for a compiled
    peer a function counting Dynamo/AOTAutograd/Inductor activity (None for eager).  Also used by
    `profile_peer.py`.  Imports torch first, with PyTorch's default settings."""
    import torch
    import numpy as np

    torch.set_num_threads(spec["threads"])
    impl = spec["impl"]
    with np.load(spec["weights"]) as saved:
        config = json.loads(str(saved["__config__"]))
        state = {k: torch.from_numpy(saved[k]) for k in saved.files if k != "__config__"}
    family = spec["model"].split("-")[0]
    oracle = getattr(_torch_model_module(family), f"build_{family}")(**config).float()
    oracle.load_state_dict(state)
    x, y = _batch(np, config["num_classes"], spec["batch_size"])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    neurons = [m for m in oracle.modules() if type(m).__name__.endswith("Node") and hasattr(m, "reset")]
    net = torch.compile(oracle) if impl.startswith("compile") else oracle
    opt = torch.optim.AdamW(oracle.parameters(), lr=1e-4)

    def autocast():
        if impl == "compile-bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train():
        net.train()
        for m in neurons:
            m.reset()
        with autocast():
            loss = torch.nn.functional.cross_entropy(net(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer():
        net.eval()
        for m in neurons:
            m.reset()
        with torch.no_grad(), autocast():
            net(xt)

    compile_activity = None
    if impl.startswith("compile"):
        from torch._dynamo.utils import counters

        def compile_activity():
            """Every Dynamo/AOTAutograd/Inductor counter moves only while something is traced or compiled."""
            return sum(sum(c.values()) for c in counters.values())
    return train, infer, compile_activity


def _torch_model_module(family: str):
    """The file of minisnn's PyTorch models that holds `build_<family>` (`minisnn/torch/dysvit.py` or
    `upstream.py`, the parity suite's oracles), loaded by path: it imports only torch and SpikingJelly,
    while `import minisnn.torch` would import minisnn and Numba into this process and its memory."""
    folder = os.path.join(importlib.util.find_spec("minisnn").submodule_search_locations[0], "torch")
    name = "dysvit" if family == "dysvit" else "upstream"
    spec = importlib.util.spec_from_file_location(f"torch_models_{name}", os.path.join(folder, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _measure(train, infer, spec, compile_activity=None) -> dict:
    """Warm up and time training, read the memory peak, then warm up and time inference."""
    result = {"errors": {}, "peak_rss_mib": None}
    if compile_activity:
        result["compiled_during_timing"] = {}
    for mode, fn in (("train", train), ("infer", infer)):
        try:
            _warm_up(fn, spec["warmup"], compile_activity)
            before = compile_activity() if compile_activity else 0
            result[mode] = [_timed(fn) for _ in range(spec["repeats"])]
            if compile_activity:
                result["compiled_during_timing"][mode] = compile_activity() - before
            if mode == "train":
                result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        except Exception as e:  # a peer that cannot run one mode is a result, not a crash
            result[mode] = []
            result["errors"][mode] = _one_line(e)
    return result


def _warm_up(fn, calls: int, compile_activity=None):
    """`calls` calls, then more (at most 10) while the last one still compiled something."""
    for i in range(calls + 10):
        before = compile_activity() if compile_activity else 0
        fn()
        if i + 1 >= calls and (compile_activity is None or compile_activity() == before):
            return


def _one_line(e: Exception) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    text = " ".join(lines[:2]) if lines and lines[0].endswith(":") else (lines[0] if lines else "")
    return f"{type(e).__name__}: {text}"[:300]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _batch(np, num_classes, batch):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, num_classes, batch)


if __name__ == "__main__":
    main()
