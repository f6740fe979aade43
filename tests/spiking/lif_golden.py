"""Golden LIF results: spikes and gradients that the kernels and neurons must reproduce bit for bit.

    python -m tests.spiking.lif_golden          # writes tests/spiking/data/lif_golden.npz

The file was written once, by the code as it stood before a refactoring that must not
change a single bit; `test_lif_golden.py` recomputes every array with the current code
and compares bit patterns.  Regenerate it only when a change of results is intended
(and say so in the commit).  It was regenerated once so far: when `spike()` began summing the
slope gradient over each row in float64 (`kernels.spike_backward_rows`), which changed the two
float32 arrays `*.module.lif_step.float32.dslope` (the step-by-step LIF, which fires through
`spike`) by at most 3 ulp and nothing else.

What is recorded, for both kernel backends (`jit`, `reference`), float32 and float64, on
seeded inputs:

* kernel cases (`KERNEL_CASES`, arrays [T, M]): `lif_forward` spikes, q = ±ψ of
  `lif_forward_with_psi`, `lif_backward` (dL/dx, dL/dα per element, dL/dτ) and, where it
  applies, `lif_backward_saved` (the test also checks that `lif_forward_with_psi` gives the
  same spikes and `lif_backward` without α and τ the same dL/dx);
* module cases (`MODULE_CASES`): LIF / IF / ParametricLIF on Tensors through autograd, fused
  and step by step: spikes and the gradients of x, the slope Tensor and w.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from minisnn import Tensor, kernels
from minisnn import functional as F
from minisnn.kernels.jit import lif as jit_lif
from minisnn.kernels.lif_params import LIFParams
from minisnn.kernels.reference import lif as ref_lif
from minisnn.spiking import IF, LIF, ParametricLIF

PATH = Path(__file__).resolve().parent / "data" / "lif_golden.npz"
BACKENDS = {"jit": jit_lif, "reference": ref_lif}
DTYPES = (np.float32, np.float64)
T = 4
WIDE = 64  # wider cases (several blocks of the jit kernel) keep only spikes and dL/dτ
SIGMOID, ATAN, PIECEWISE_LINEAR, RECTANGULAR, FAST_SIGMOID = range(5)

# name: (neuron settings, slope layout, M); v_reset=None is the soft reset
KERNEL_CASES = {
    "lif_hard_sigmoid": (dict(tau=2.0, v_threshold=1.0, v_reset=0.0, kind=SIGMOID), "one", 16),
    "lif_hard_atan_per_neuron": (dict(tau=2.0, v_threshold=1.0, v_reset=0.0, kind=ATAN), "per_neuron", 16),
    "lif_soft_triangle": (dict(tau=3.0, v_threshold=0.9, v_reset=None, kind=PIECEWISE_LINEAR), "one", 16),
    "lif_no_decay_rect": (dict(tau=1.7, v_threshold=1.0, v_reset=-0.3, decay_input=False, kind=RECTANGULAR),
                          "one", 16),
    "if_hard_fast_sigmoid": (dict(v_threshold=1.0, v_reset=0.0, leaky=False, kind=FAST_SIGMOID), "one", 16),
    "if_soft_sigmoid_smooth": (dict(v_threshold=0.7, v_reset=None, leaky=False, smooth=True, detach_reset=False),
                               "one", 16),
    "lif_hard_atan_smooth_full": (dict(tau=2.5, v_threshold=1.0, v_reset=0.0, kind=ATAN, smooth=True,
                                       detach_reset=False), "per_step_neuron", 16),
    "lif_soft_fast_sigmoid_smooth": (dict(tau=3.7, v_threshold=1.2, v_reset=None, kind=FAST_SIGMOID, smooth=True,
                                          detach_reset=False), "one", 16),
    "lif_no_decay_soft_sigmoid": (dict(tau=2.2, v_threshold=1.0, v_reset=None, decay_input=False,
                                       detach_reset=False), "per_neuron", 16),
    "lif_hard_triangle_not_detached": (dict(tau=1.5, v_threshold=0.8, v_reset=0.2, kind=PIECEWISE_LINEAR,
                                            detach_reset=False), "one", 16),
    "lif_hard_rect_smooth": (dict(tau=2.0, v_threshold=1.0, v_reset=0.0, kind=RECTANGULAR, smooth=True),
                             "per_neuron", 16),
    "lif_hard_sigmoid_many_blocks": (dict(tau=2.0, v_threshold=1.0, v_reset=0.0, kind=SIGMOID), "one", 1100),
}
DEFAULTS = dict(tau=2.0, decay_input=True, leaky=True, detach_reset=True, kind=SIGMOID, smooth=False)


def kernel_inputs(name: str, dtype):
    """(settings, x_seq, g_seq, alpha) of a kernel case, seeded by the case's position."""
    settings, layout, M = KERNEL_CASES[name]
    settings = dict(DEFAULTS, **settings)
    rng = np.random.default_rng(list(KERNEL_CASES).index(name))
    x_seq = rng.normal(0.7, 1.2, (T, M)).astype(dtype)
    x_seq[:, ::7] *= 1e4  # far above the threshold: ψ underflows to 0 where the neuron fires
    g_seq = rng.normal(size=(T, M)).astype(dtype)
    shape = {"one": (1, 1), "per_neuron": (1, M), "per_step_neuron": (T, M)}[layout]
    alpha = rng.uniform(0.5, 6.0, shape).astype(dtype)
    return settings, x_seq, g_seq, alpha


def kernel_results(mod, name: str, dtype) -> dict:
    s, x_seq, g_seq, alpha = kernel_inputs(name, dtype)
    params = LIFParams.make(**s)
    out = {"spikes": mod.lif_forward(x_seq, alpha, params)}
    out["q"] = mod.lif_forward_with_psi(x_seq, alpha, params)[1]
    dx, dalpha, dtau = mod.lif_backward(g_seq, x_seq, alpha, params, True, True)
    out.update(dx=dx, dalpha=dalpha, dtau=np.float64(dtau))
    if x_seq.shape[1] > WIDE:  # only the τ sum depends on how the columns are split into blocks
        return {"spikes": out["spikes"], "dtau": out["dtau"]}
    if params.soft_reset or (params.detach_reset and not params.smooth):
        out["dx_saved"] = mod.lif_backward_saved(g_seq, out["q"], params)
    return out


# name: (neuron factory, per-token slope Tensor?, step by step?)
MODULE_CASES = {
    "lif_default": (lambda: LIF(), False, False),
    "lif_soft_atan": (lambda: LIF(v_reset=None, detach_reset=False, surrogate="atan"), False, False),
    "lif_not_detached": (lambda: LIF(tau=2.5, v_reset=-0.1, detach_reset=False), False, False),
    "if_triangle": (lambda: IF(v_reset=-0.2, surrogate="piecewise_linear"), False, False),
    "plif_no_decay": (lambda: ParametricLIF(init_tau=2.5, decay_input=False), False, False),
    "lif_smooth_slope": (lambda: LIF(smooth=True, surrogate="fast_sigmoid", detach_reset=False), True, False),
    "lif_step": (lambda: LIF(tau=2.5, v_reset=-0.1, detach_reset=False), True, True),
    "plif_step_soft": (lambda: ParametricLIF(init_tau=3.0, v_reset=None), False, True),
}


def module_results(name: str, dtype) -> dict:
    factory, with_slope, stepwise = MODULE_CASES[name]
    neuron = factory()
    neuron.to_dtype(dtype)
    rng = np.random.default_rng(100 + list(MODULE_CASES).index(name))
    x = Tensor(rng.normal(0.8, 1.0, (T, 2, 5)).astype(dtype), requires_grad=True)
    k = Tensor(rng.uniform(1.0, 5.0, (T, 2, 1)).astype(dtype), requires_grad=True) if with_slope else None
    g = rng.normal(size=x.shape).astype(dtype)
    if stepwise:
        neuron.reset_state()
        s = F.stack([neuron.step(x[t], None if k is None else k[t]) for t in range(T)], 0)
    else:
        s = neuron(x, k)
    s.backward(g)
    out = {"spikes": s.data, "dx": x.grad}
    if k is not None:
        out["dslope"] = k.grad
    if isinstance(neuron, ParametricLIF):
        out["dw"] = np.asarray(neuron.w.grad)
    return out


def compute() -> dict[str, np.ndarray]:
    """Every golden array, keyed "<backend>.<kernel|module>.<case>.<dtype>.<result>"."""
    arrays = {}
    before = kernels.backend()
    try:
        for backend, mod in BACKENDS.items():
            kernels.set_backend(backend)
            for dtype in DTYPES:
                dname = np.dtype(dtype).name
                for name in KERNEL_CASES:
                    for what, value in kernel_results(mod, name, dtype).items():
                        arrays[f"{backend}.kernel.{name}.{dname}.{what}"] = np.asarray(value)
                for name in MODULE_CASES:
                    for what, value in module_results(name, dtype).items():
                        arrays[f"{backend}.module.{name}.{dname}.{what}"] = np.asarray(value)
    finally:
        kernels.set_backend(before)
    return arrays


def main():
    PATH.parent.mkdir(exist_ok=True)
    np.savez_compressed(PATH, **compute())
    print(f"wrote {PATH} ({PATH.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
