"""Run a minisnn model and its PyTorch oracle on the same input; compare every spike map and gradient.

    report = compare_with_oracle(model, oracle, images, name="msvit-cifar10")
    print(report.format())

Both networks run in the same dtype and mode: eval by default (BN uses its running statistics,
as when a checkpoint is used), or `train=True` (BN batch statistics; the running statistics
are then compared after the pass too).  Neurons are matched by module path: the minisnn
models use the upstream attribute names, so `stage1.0.tssa.q_lif` is the same neuron in both.
For each neuron the report holds its spikes and its input current; rows follow the oracle's
execution order.  Gradients are those of <v, logits> for one random cotangent v ~ N(0, 1),
for every parameter and for the input images.

Nothing here changes either model's outputs: minisnn neurons are observed through an
instance-level `forward` wrapper (removed afterwards), the oracle through forward hooks.
Needs torch (imported on first use, never by `import minisnn`).
"""
from __future__ import annotations

import numpy as np

from ..autograd.tensor import Tensor
from ..kernels.lif_params import LIFParams, charge, reset
from ..kernels.reference.pool import max_pool2d_forward
from ..models.monitor import is_neuron
from ..nn import MaxPool2d
from .report import CRITERIA, GradGroup, LayerRow, ParityReport, PoolRow, diff_stats, relative

DTYPES = ("float64", "float32")


def _torch():
    """PyTorch, imported on first use: it is an optional dependency, and `import minisnn.parity` must
    work without it (only running a comparison needs it)."""
    import torch

    return torch


def grad_group(name: str) -> str:
    """The part of the network a parameter belongs to, for the gradient table.

    `stage1.0.tssa.q_conv.weight` -> `stage1.0.tssa`; `patch_embed1.proj_bn.bias` -> `patch_embed1`;
    Dy-SViT slope hypernetworks are gathered per block: `blocks.0 slope hypernetworks`.
    """
    parts = name.split(".")
    indexed = len(parts) >= 3 and parts[1].isdigit()
    if "hyper" in parts:
        return (".".join(parts[:2]) if indexed else parts[0]) + " slope hypernetworks"
    return ".".join(parts[:3]) if indexed and len(parts) > 3 else parts[0]


def _minisnn_pools(model) -> dict:
    return {name: m for name, m in model.named_modules() if isinstance(m, MaxPool2d)}


def _minisnn_neurons(model) -> dict:
    return {name: m for name, m in model.named_modules() if name and is_neuron(m)}


def _torch_neurons(oracle) -> dict:
    from .oracles.calibrate import neuron_types  # imports torch and SpikingJelly: optional, so imported here

    return {name: m for name, m in oracle.named_modules() if isinstance(m, neuron_types())}


class _Observer:
    """Captures (input, output) of every neuron on both sides, and the Dy-SViT slopes."""

    def __init__(self, model, oracle):
        torch = _torch()
        self.ours_mods, self.theirs_mods = _minisnn_neurons(model), _torch_neurons(oracle)
        self.ours, self.theirs, self.their_slopes = {}, {}, {}
        self.pool_mods = _minisnn_pools(model)
        self.their_pool_mods = {n: m for n, m in oracle.named_modules() if isinstance(m, torch.nn.MaxPool2d)}
        self.pool_in, self.their_pool_in = {}, {}
        self._handles, self._wrapped, self._flags = [], [], []

    def __enter__(self):
        for path, m in self.theirs_mods.items():
            self._handles.append(m.register_forward_hook(self._torch_hook(path)))
            hyper = getattr(m, "hyper", None)
            if hyper is not None:
                self._handles.append(hyper.register_forward_hook(self._slope_hook(path)))
        for path, m in self.their_pool_mods.items():
            self._handles.append(m.register_forward_hook(self._pool_hook(path)))
        for path, m in self.pool_mods.items():
            m.forward = self._wrap_pool(path, m.forward)
            self._wrapped.append(m)
        for path, m in self.ours_mods.items():
            m.forward = self._wrap(path, m.forward)
            self._wrapped.append(m)
            if hasattr(m, "last_slope"):
                self._flags.append((m, m.record))
                m.record = True
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        for m in self._wrapped:
            del m.forward
        for m, flag in self._flags:
            m.record = flag

    def _torch_hook(self, path):
        def hook(_mod, inputs, out):
            self.theirs[path] = (inputs[0].detach().cpu().numpy().copy(), out.detach().cpu().numpy().copy())
        return hook

    def _slope_hook(self, path):
        def hook(_mod, _inputs, out):
            self.their_slopes[path] = out.detach().cpu().numpy().copy()
        return hook

    def _pool_hook(self, path):
        def hook(_mod, inputs, _out):
            self.their_pool_in[path] = inputs[0].detach().cpu().numpy().copy()
        return hook

    def _wrap_pool(self, path, forward):
        def observed_forward(x, *args, **kwargs):
            self.pool_in[path] = np.array(getattr(x, "data", x), copy=True)
            return forward(x, *args, **kwargs)
        return observed_forward

    def _wrap(self, path, forward):
        def observed_forward(x, *args, **kwargs):
            out = forward(x, *args, **kwargs)
            self.ours[path] = (np.array(getattr(x, "data", x), copy=True), np.array(out.data, copy=True))
            return out
        return observed_forward


def membrane_margin(neuron, x_seq: np.ndarray, s_seq: np.ndarray) -> np.ndarray:
    """|H − θ| of an oracle neuron at every element, from its input `x_seq` and its own spikes `s_seq`.

    LIF (SpikingJelly MultiStepLIFNode) over axis 0 of its input, in float64, with the kernels' own
    step functions (`kernels/lif_params.py`): H[t] = charge(V[t−1], X[t]), V[t] = reset(H[t], S[t]);
    the reset follows the oracle's own spikes, so the margin describes the oracle's decision.
    Dy-SViT neuron: |u − θ| (single step).
    """
    x = np.nan_to_num(np.asarray(x_seq, dtype=np.float64), nan=0.0, posinf=1e4, neginf=-1e4)
    s = np.asarray(s_seq, dtype=np.float64).reshape(x.shape)
    theta = float(getattr(neuron, "v_threshold", getattr(neuron, "threshold", 1.0)))
    if not hasattr(neuron, "tau"):
        return np.abs(x - theta)
    p = LIFParams.make(neuron.tau, theta, neuron.v_reset, getattr(neuron, "decay_input", True))
    v = np.full(x.shape[1:], p.v_rest)
    margin = np.empty_like(x)
    for t in range(x.shape[0]):
        h = charge(v, x[t], p.tau, p.v_rest, p.decay_input, p.leaky)
        margin[t] = np.abs(h - p.v_threshold)
        v = reset(h, s[t], p.v_threshold, p.v_rest, p.soft_reset, 1.0)
    return margin


def _origin_margin(neuron, x_raw: np.ndarray, s_raw: np.ndarray, s_ours: np.ndarray) -> float:
    """Largest oracle margin |H − θ| over the spikes where a difference starts.

    A LIF element that fires differently at step t also carries a different membrane into t+1, so only
    its first differing step is an origin; later differences of the same element are inherited.
    """
    m = membrane_margin(neuron, x_raw, s_raw)
    differ = s_ours.reshape(s_raw.shape) != s_raw
    if not hasattr(neuron, "tau"):
        return float(m[differ].max())
    first = np.argmax(differ, axis=0)                     # first differing step of every element
    any_diff = differ.any(axis=0)
    at_first = np.take_along_axis(m, first[None], axis=0)[0]
    return float(at_first[any_diff].max())


def _layer_rows(obs: _Observer) -> tuple[list, list]:
    rows, unmatched = [], []
    for path, (x_ref, s_ref) in obs.theirs.items():      # oracle execution order
        if path not in obs.ours:
            unmatched.append(f"{path} (oracle only)")
            continue
        x, s = obs.ours[path]
        if s.size != s_ref.size or x.size != x_ref.size:
            unmatched.append(f"{path} (shapes {s.shape} vs {s_ref.shape})")
            continue
        s_ref, x_ref = s_ref.reshape(s.shape), x_ref.reshape(x.shape)
        in_max, in_mean = diff_stats(x, x_ref)
        slope = None
        mod = obs.ours_mods[path]
        if path in obs.their_slopes and getattr(mod, "last_slope", None) is not None:
            slope = diff_stats(mod.last_slope, obs.their_slopes[path].reshape(mod.last_slope.shape))[0]
        differ = s != s_ref
        margin = None
        if differ.any():
            margin = _origin_margin(obs.theirs_mods[path], *obs.theirs[path], s)
        rows.append(LayerRow(path, tuple(s.shape), float(s.mean()), int(np.count_nonzero(differ)),
                             in_max, in_mean, slope, margin))
    unmatched += [f"{p} (minisnn only)" for p in obs.ours if p not in obs.theirs]
    return rows, unmatched


def _pool_rows(obs: _Observer) -> list:
    """Max-pool layers: in how many windows the two inputs have their maximum at a different position.

    Both inputs go through the same rule (PyTorch's: first maximum in row-major order), so a
    difference means the inputs order the window's candidates differently; `gap` is how far apart
    (in the oracle's input) the two chosen candidates are: rounding-level for near-equal candidates.
    """
    rows = []
    for path, x_ref in obs.their_pool_in.items():
        if path not in obs.pool_in or obs.pool_in[path].shape != x_ref.shape:
            continue
        mod = obs.pool_mods[path]
        k, st, pad = (int(np.ravel(v)[0]) for v in (mod.kernel_size, mod.stride, mod.padding))
        idx_ref = max_pool2d_forward(x_ref.astype(np.float64), k, k, st, st, pad, pad)[1]
        idx = max_pool2d_forward(obs.pool_in[path].astype(np.float64), k, k, st, st, pad, pad)[1]
        differ = idx != idx_ref
        gap = None
        if differ.any():
            planes = x_ref.reshape(x_ref.shape[0] * x_ref.shape[1], -1).astype(np.float64)
            flat = lambda ix: np.take_along_axis(planes, ix.reshape(planes.shape[0], -1), axis=1)  # noqa: E731
            gap = float(np.abs(flat(idx_ref) - flat(idx))[differ.reshape(planes.shape[0], -1)].max())
        rows.append(PoolRow(path, int(idx.size), int(np.count_nonzero(differ)), gap))
    return rows


def _compare_grads(report, model, oracle, dtype) -> None:
    theirs = {n: p.grad for n, p in oracle.named_parameters()}
    ours = dict(model.named_parameters())
    refs = {n: g.detach().cpu().numpy() for n, g in theirs.items() if g is not None}
    floor = CRITERIA[dtype]["grad_floor"] * max([report.grad_scale] + [float(np.abs(g).max()) for g in
                                                                         refs.values() if g.size])
    report.grad_scale = floor / CRITERIA[dtype]["grad_floor"]
    groups: dict[str, list] = {}
    for name, p in ours.items():
        g, ref = p.grad, refs.get(name)
        if g is None and ref is None:
            report.unused_params.append(name)
            continue
        if (g is None) != (ref is None):
            other = ref if g is None else g
            if np.any(other != 0):
                report.grad_presence_mismatch.append(f"{name} ({'oracle' if g is None else 'minisnn'} only)")
                continue
        g = np.zeros(p.shape) if g is None else g
        ref = np.zeros(p.shape) if ref is None else ref
        groups.setdefault(grad_group(name), []).append((name, relative(g, ref, floor), float(np.abs(ref).max())))
    for name in theirs:
        if name not in ours:
            report.grad_presence_mismatch.append(f"{name} (no such minisnn parameter)")
    for group, items in groups.items():
        worst = max(items, key=lambda t: t[1])
        report.grad_groups.append(GradGroup(group, len(items), max(t[2] for t in items), worst[1], worst[0]))
    report.grads_checked = True


def _compare_buffers(report, model, oracle) -> None:
    ref = {k: v.detach().cpu().numpy() for k, v in oracle.state_dict().items()
           if "running_" in k or "num_batches_tracked" in k}
    ours = model.state_dict()
    worst, worst_name = 0.0, ""
    for k, v in ref.items():
        rel = relative(ours[k], v) if k in ours else float("inf")
        if rel > worst or not worst_name:
            worst, worst_name = rel, k
    report.buffers_rel, report.worst_buffer = worst, worst_name


def oracle_spikes(oracle, images: np.ndarray) -> dict[str, np.ndarray]:
    """Output spikes of every oracle neuron on `images` (one forward pass in the oracle's dtype, no gradient)."""
    torch = _torch()
    out, handles = {}, []
    for path, m in _torch_neurons(oracle).items():
        handles.append(m.register_forward_hook(
            lambda _m, _i, o, path=path: out.__setitem__(path, o.detach().cpu().numpy().copy())))
    dtype = next(oracle.parameters()).dtype
    try:
        with torch.no_grad():
            oracle(torch.tensor(np.asarray(images)).to(dtype))
    finally:
        for h in handles:
            h.remove()
    return out


def spike_difference(a: dict, b: dict) -> tuple[int, int]:
    """(differing, total) spikes over the neurons present in both spike dicts."""
    differ = total = 0
    for path in a.keys() & b.keys():
        differ += int(np.count_nonzero(a[path] != b[path].reshape(a[path].shape)))
        total += a[path].size
    return differ, total


def compare_with_oracle(model, oracle, images: np.ndarray, name: str = "", dtype: str = "float64",
                        grads: bool = True, train: bool = False, seed: int = 0) -> ParityReport:
    """Forward (and backward) both networks on `images` [B, C, H, W]; returns a ParityReport.

    Both must hold the same weights already.  `model` and `oracle` are cast to `dtype` in place
    and left in the requested mode.  In training mode both update their BN running statistics.
    Every minisnn model starts its forward from neurons at rest, so nothing is reset here.
    """
    torch = _torch()
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must have shape [B, C, H, W], got {images.shape}")
    np_dtype = np.dtype(dtype)
    model.to_dtype(np_dtype)
    oracle.to(getattr(torch, dtype))
    model.train(train)
    oracle.train(train)
    x = images.astype(np_dtype)
    with _Observer(model, oracle) as obs:
        xt = torch.tensor(x, requires_grad=grads)
        xm = Tensor(x.copy(), requires_grad=grads)
        model.zero_grad()
        oracle.zero_grad()
        theirs = oracle(xt)
        ours = model(xm)
    ref_logits = theirs.detach().cpu().numpy()
    lmax, lmean = diff_stats(ours.data, ref_logits)
    report = ParityReport(name or type(model).__name__, dtype, len(images), train, tuple(ref_logits.shape),
                          lmax, lmean, relative(ours.data, ref_logits))
    report.layers, report.unmatched_neurons = _layer_rows(obs)
    report.pools = _pool_rows(obs)
    if grads:
        v = np.random.default_rng(seed).standard_normal(ref_logits.shape).astype(np_dtype)
        ours.backward(v)
        theirs.backward(torch.tensor(v))
        dx_ref = xt.grad.numpy()
        report.grad_scale = float(np.abs(dx_ref).max()) if dx_ref.size else 0.0
        _compare_grads(report, model, oracle, dtype)          # grad_scale: largest gradient anywhere
        report.input_grad_rel = relative(xm.grad, dx_ref, CRITERIA[dtype]["grad_floor"] * report.grad_scale)
    if train:
        _compare_buffers(report, model, oracle)
    return report
