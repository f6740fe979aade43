"""Run a minisnn model and its PyTorch oracle on the same input; compare every spike map and gradient.

    report = compare_with_oracle(model, oracle, images, name="msvit-cifar10")
    print(report.format())

Both networks run in the same dtype and mode (eval by default: BN uses its running
statistics, as when a checkpoint is used).  Neuron outputs are matched by module path:
the minisnn models use the upstream attribute names, so `stage1.0.tssa.q_lif` is the
same neuron in both.  Gradients are those of <v, logits> for one random cotangent v.
Needs torch (imported here, never by `import minisnn`).
"""
from __future__ import annotations

import numpy as np

from .report import LayerRow, ParityReport, diff_stats

_TORCH_DTYPES = {"float64": "float64", "float32": "float32"}


def _minisnn_neurons(model) -> dict:
    from ..models.monitor import is_neuron

    return {name: m for name, m in model.named_modules() if name and is_neuron(m)}


def _torch_neurons(oracle, paths) -> dict:
    mods = dict(oracle.named_modules())
    return {p: mods[p] for p in paths if p in mods}


def compare_with_oracle(model, oracle, images: np.ndarray, name: str = "", dtype: str = "float64",
                        grads: bool = True, train: bool = False, seed: int = 0) -> ParityReport:
    """Forward (and backward) both networks on `images` [B, 3, H, W]; returns a ParityReport."""
    import torch

    from ..autograd.tensor import Tensor
    from ..spiking import reset_net

    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    np_dtype = np.dtype(dtype)
    model.to_dtype(np_dtype)
    oracle.to(getattr(torch, dtype))
    model.train(train)
    oracle.train(train)

    neurons = _minisnn_neurons(model)
    torch_neurons = _torch_neurons(oracle, neurons)
    captured: dict[str, np.ndarray] = {}

    def hook(path):
        def fn(_mod, _inp, out):
            captured[path] = out.detach().cpu().numpy().copy()
        return fn

    handles = [m.register_forward_hook(hook(p)) for p, m in torch_neurons.items()]
    saved_flags = {p: m.record for p, m in neurons.items()}
    try:
        for m in neurons.values():
            m.record = True
        x = images.astype(np_dtype)
        reset_net(model)
        _reset_torch(oracle)
        ours = model(Tensor(x))
        theirs = oracle(torch.tensor(x))
        layers = []
        for path, m in neurons.items():
            if path not in captured or m.last_s_seq is None:
                continue
            a = np.asarray(m.last_s_seq)
            b = captured[path].reshape(a.shape) if captured[path].size == a.size else None
            if b is None:
                continue
            mx, mean = diff_stats(a, b)
            layers.append(LayerRow(path, tuple(a.shape), float(np.mean(a == b)), mx, mean, float(a.mean())))
        lmax, lmean = diff_stats(ours.data, theirs.detach().numpy())
        report = ParityReport(name, dtype, len(images), lmax, lmean, layers)
        missing = sorted(set(neurons) - {r.name for r in layers})
        if missing:
            report.notes.append(f"{len(missing)} neuron layer(s) without a counterpart: {', '.join(missing[:5])}")
        if grads:
            v = np.random.default_rng(seed).standard_normal(ours.shape).astype(np_dtype)
            model.zero_grad()
            ours.backward(v)
            theirs.backward(torch.tensor(v))
            tgrads = {n: p.grad for n, p in oracle.named_parameters()}
            worst, worst_name = 0.0, ""
            for n, p in model.named_parameters():
                tg = tgrads.get(n)
                if tg is None and p.grad is None:
                    continue
                tg = np.zeros(p.shape) if tg is None else tg.detach().numpy()
                g = np.zeros(p.shape) if p.grad is None else p.grad
                rel = float(np.abs(g - tg).max() / (np.abs(tg).max() + 1e-30)) if g.size else 0.0
                if rel > worst:
                    worst, worst_name = rel, n
            report.grads_max_rel, report.worst_grad = worst, worst_name
        return report
    finally:
        for h in handles:
            h.remove()
        for p, m in neurons.items():
            m.record = saved_flags[p]
        reset_net(model)
        _reset_torch(oracle)


def _reset_torch(oracle) -> None:
    for m in oracle.modules():
        if hasattr(m, "reset") and callable(m.reset) and type(m).__name__.endswith("Node"):
            m.reset()
