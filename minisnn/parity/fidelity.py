"""How far a float32 forward sits from float64: minisnn against PyTorch's own float32 (docs/parity.md).

    result = float32_distance("spikformer-cifar10", batches=4, batch_size=2, seed=0)
    print(result.format())
    result.logits["minisnn"], result.logits["torch"]    # per batch: ‖logits32 − logits64‖ / ‖logits64‖

    python -m minisnn.parity.fidelity spikformer-cifar10 msvit-cifar10 --batches 4

float32 cannot match float64 exactly, and in a spiking network a rounding-level change of a
membrane that sits at its threshold flips a spike, which then moves everything downstream.
So the fair yardstick for minisnn's float32 is PyTorch's float32: each is measured against its
own float64 forward, with the same weights, on the same batches, and minisnn's distance should
be no larger than PyTorch's.  (minisnn's and PyTorch's float64 forwards agree spike for spike,
which the parity suite checks, so both distances measure the same thing.)

Three distances per batch and run:

* logits: ‖logits32 − logits64‖ / ‖logits64‖;
* spikes: the fraction of all spikes (every neuron, step and element) that differ;
* currents: the input current I of every neuron layer, ‖I32 − I64‖ / ‖I64‖, over the *clean*
  layers: those that run before any spike of any run differs, plus the first one that has a
  differing spike (`clean_prefix`).  Their inputs differ by rounding only, so this is the
  arithmetic's own distance, stable from batch to batch.  The logits and spikes, in contrast,
  mostly count how far the first flips spread, and vary by orders of magnitude between batches.

The network is the registered model `name` (with `overrides`) and its PyTorch oracle, with random
weights whose BatchNorms are calibrated on a held-out batch of CIFAR-10 sample images
(`oracles.calibrate`, so that neurons fire at sensible rates), then rounded to float32 once, as a
checkpoint holds them: float32 and float64 use exactly the same weight values.  Eval mode, no
gradients.  `variants` adds minisnn float32 runs under a setting, e.g. `IM2COL` (no Winograd).
Needs torch (and SpikingJelly for the upstream families).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import time

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..data.augment import normalize
from ..data.sample import load_sample
from ..ops import winograd
from ..spiking.protocol import named_neurons
from . import _torch
from .infer import model_class, registered_config
from .verify import build_oracle

QUANTITIES = ("logits", "spikes", "currents")


@contextlib.contextmanager
def patched(module, **values):
    """Set attributes of `module` for the duration of the block, then restore them."""
    before = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(module, name, value)


IM2COL = {"im2col": lambda: patched(winograd, MIN_CHANNELS=1 << 30)}              # no Winograd at all
WINOGRAD_FLOAT32 = {"wino-f32": lambda: patched(winograd, FORWARD_DTYPE=np.float32)}  # float32 tiles and GEMMs


@dataclasses.dataclass
class Fidelity:
    """Per-batch float32 distances of one model; keys "minisnn", "torch" and any minisnn variants."""

    name: str
    batch_size: int
    logits: dict[str, list[float]]
    spikes: dict[str, list[float]]
    currents: dict[str, list[float]]                 # mean over the batch's clean layers
    layer_currents: dict[str, dict[str, list[float]]]  # key -> clean layer path -> one value per batch it was clean
    clean_layers: list[int]                          # number of clean layers, per batch
    rates: list[float]                               # mean float64 firing rate of all neurons, per batch

    def mean(self, quantity: str, key: str) -> float:
        """Mean over batches of `quantity` ("logits", "spikes" or "currents") for run `key`."""
        return float(np.mean(getattr(self, quantity)[key]))

    def layer_mean(self, key: str, path: str) -> float:
        """Mean input-current distance of neuron layer `path` over the batches where it was clean."""
        return float(np.mean(self.layer_currents[key][path]))

    def format(self, layers: bool = False) -> str:
        lines = [f"{self.name}: {len(self.rates)} batches of {self.batch_size}, mean firing rate "
                 f"{np.mean(self.rates):.3f}, clean layers per batch {self.clean_layers}",
                 f"  {'':<9} {'logits':>9} {'spikes':>9} {'currents':>9}   logits per batch"]
        for key in self.logits:
            per = " ".join(f"{v:.1e}" for v in self.logits[key])
            lines.append(f"  {key:<9} " + " ".join(f"{self.mean(q, key):>9.2e}" for q in QUANTITIES) + f"   {per}")
        if layers:
            lines.append("  input currents of the clean layers: " + "  ".join(self.layer_currents))
            for path in self.layer_currents["torch"]:
                values = " ".join(f"{self.layer_mean(k, path):.2e}" for k in self.layer_currents)
                lines.append(f"    {path:<36} {values}")
        return "\n".join(lines)


def relative_distance(a: np.ndarray, reference: np.ndarray) -> float:
    """‖a − reference‖ / ‖reference‖ (Frobenius norms, in float64; a reshaped like reference; 0 if both are 0)."""
    reference = np.asarray(reference, dtype=np.float64)
    diff = np.linalg.norm(np.asarray(a, dtype=np.float64).reshape(reference.shape) - reference)
    norm = np.linalg.norm(reference)
    return float(diff / norm) if norm > 0 else (0.0 if diff == 0 else float("inf"))


def spike_fraction(spikes: dict, reference: dict) -> float:
    """Fraction of all spikes that differ between two {path: spikes} dicts with the same paths."""
    differ = sum(int(np.count_nonzero(spikes[k].reshape(reference[k].shape) != reference[k])) for k in reference)
    return differ / sum(reference[k].size for k in reference)


def clean_prefix(order: list, runs: dict, references: dict) -> list:
    """The paths of `order` up to and including the first one where any run's spikes differ from its reference.

    runs, references: {key: {path: spikes}}.  The input currents of these layers differ by rounding only.
    """
    for i, path in enumerate(order):
        if any(np.any(runs[k][path].reshape(references[k][path].shape) != references[k][path]) for k in runs):
            return order[:i + 1]
    return list(order)


def _calibration():
    """The `oracles.calibrate` module (it imports torch and SpikingJelly, so only when a measurement runs)."""
    from .oracles import calibrate  # optional dependencies: loaded only when a measurement runs

    return calibrate


def observe_minisnn(model, images: np.ndarray) -> tuple[np.ndarray, dict]:
    """(logits, {path: (input current, spikes)}) of a minisnn model on `images`, no graph recorded.

    Neurons are observed through an instance-level `forward` wrapper, removed afterwards.
    """
    seen = {}

    def observed(path, forward):
        def observed_forward(x, *args, **kwargs):
            out = forward(x, *args, **kwargs)
            seen[path] = (np.array(getattr(x, "data", x), copy=True), np.array(out.data, copy=True))
            return out
        return observed_forward

    neurons = named_neurons(model)
    for path, neuron in neurons:
        neuron.forward = observed(path, neuron.forward)
    try:
        with no_grad():
            logits = model(Tensor(images.astype(model.dtype))).data
    finally:
        for _, neuron in neurons:
            del neuron.forward
    return logits, seen


def observe_oracle(oracle, images: np.ndarray) -> tuple[np.ndarray, dict]:
    """(logits, {path: (input current, spikes)}) of a PyTorch oracle on `images`, in the oracle's dtype,
    neurons in the order they ran."""
    torch = _torch.torch()
    neuron_types = _calibration().neuron_types()
    seen, handles = {}, []
    for path, m in oracle.named_modules():
        if isinstance(m, neuron_types):
            handles.append(m.register_forward_hook(lambda _m, inputs, out, path=path: seen.__setitem__(
                path, (inputs[0].detach().numpy().copy(), out.detach().numpy().copy()))))
    dtype = next(oracle.parameters()).dtype
    try:
        with torch.no_grad():
            logits = oracle(torch.from_numpy(images).to(dtype)).numpy().copy()
    finally:
        for h in handles:
            h.remove()
    return logits, seen


def sample_batches(count: int, batch_size: int, seed: int, normalization: str) -> list[np.ndarray]:
    """`count` disjoint float64 batches of normalised CIFAR-10 sample images (validation split), drawn by `seed`."""
    x, _ = load_sample()["val"]
    idx = np.random.default_rng(seed).choice(len(x), size=count * batch_size, replace=False)
    images = normalize(x[idx], normalization).astype(np.float64)
    return [images[i * batch_size:(i + 1) * batch_size] for i in range(count)]


def calibrated_pair(name: str, calibration: np.ndarray, seed: int, overrides: dict | None = None):
    """(minisnn model, PyTorch oracle), both float64 in eval mode, with the same float32-representable weights.

    The oracle gets random weights (torch seed `seed`) and BatchNorms calibrated on `calibration`.
    """
    torch = _torch.torch()
    family, cfg = registered_config(name)
    cfg = {**cfg, **(overrides or {})}
    torch.manual_seed(seed)
    oracle = build_oracle(family, cfg).double()
    calibrate = _calibration()
    if family == "dysvit":
        calibrate.perturb_hypernetworks(oracle, seed=seed)
    calibrate.calibrate(oracle, torch.from_numpy(calibration), seed=seed)
    state = {k: v.float().double() if v.is_floating_point() else v for k, v in oracle.state_dict().items()}
    oracle.load_state_dict(state)
    model = model_class(family)(**cfg).to_dtype(np.float64)
    model.load_state_dict({k: v.numpy() for k, v in state.items()})
    return model.eval(), oracle.eval()


def float32_distance(name: str, batches: int = 4, batch_size: int = 2, seed: int = 0,
                     overrides: dict | None = None, variants: dict | None = None) -> Fidelity:
    """Distances of float32 from float64 forwards, minisnn and PyTorch, on `batches` batches (module doc).

    name: a registered model (`minisnn models`); overrides: constructor values (e.g. {"T": 2}).
    variants: {label: factory of a context manager} for extra minisnn float32 runs (IM2COL, WINOGRAD_FLOAT32).
    """
    family, _ = registered_config(name)
    normalization = "dysvit" if family == "dysvit" else "upstream"
    calibration, *tests = sample_batches(batches + 1, batch_size, seed, normalization)
    model64, oracle64 = calibrated_pair(name, calibration, seed, overrides)
    model32 = copy.deepcopy(model64).to_dtype(np.float32)
    oracle32 = copy.deepcopy(oracle64).float()
    runs = {"minisnn": (observe_minisnn, model32, contextlib.nullcontext),
            "torch": (observe_oracle, oracle32, contextlib.nullcontext)}
    runs.update({label: (observe_minisnn, model32, factory) for label, factory in (variants or {}).items()})
    result = Fidelity(name, batch_size, {k: [] for k in runs}, {k: [] for k in runs}, {k: [] for k in runs},
                      {k: {} for k in runs}, [], [])
    for images in tests:
        ours64, theirs64 = observe_minisnn(model64, images), observe_oracle(oracle64, images)
        outputs = {}
        for key, (observe, net, context) in runs.items():
            with context():
                outputs[key] = observe(net, images)
        references = {key: theirs64 if key == "torch" else ours64 for key in runs}
        spikes = {key: {p: s for p, (_, s) in out[1].items()} for key, out in outputs.items()}
        ref_spikes = {key: {p: s for p, (_, s) in ref[1].items()} for key, ref in references.items()}
        clean = clean_prefix(list(theirs64[1]), spikes, ref_spikes)
        result.clean_layers.append(len(clean))
        fired = ref_spikes["minisnn"].values()
        result.rates.append(float(sum(s.sum() for s in fired) / sum(s.size for s in fired)))
        for key, (logits, layers) in outputs.items():
            ref_logits, ref_layers = references[key]
            result.logits[key].append(relative_distance(logits, ref_logits))
            result.spikes[key].append(spike_fraction(spikes[key], ref_spikes[key]))
            per_layer = {p: relative_distance(layers[p][0], ref_layers[p][0]) for p in clean}
            result.currents[key].append(float(np.mean(list(per_layer.values()))))
            for p, value in per_layer.items():
                result.layer_currents[key].setdefault(p, []).append(value)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="float32 distance from float64: minisnn and PyTorch")
    parser.add_argument("models", nargs="+", help="registered model names, e.g. spikformer-cifar10")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", action="store_true", help="also print every clean layer's current distance")
    args = parser.parse_args(argv)
    for name in args.models:
        start = time.perf_counter()
        result = float32_distance(name, args.batches, args.batch_size, args.seed,
                                  variants={**WINOGRAD_FLOAT32, **IM2COL})
        print(result.format(args.layers), f"\n  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
