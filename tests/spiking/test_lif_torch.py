"""Against PyTorch: a plain-torch LIF written from the spec, and SpikingJelly's own neurons."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sj_neuron = pytest.importorskip("spikingjelly.clock_driven.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.clock_driven.surrogate")

from minisnn import Tensor  # noqa: E402
from minisnn.kernels.lif_params import LIFParams  # noqa: E402
from minisnn.kernels.reference import lif as ref_lif  # noqa: E402
from minisnn.spiking import IF, LIF, ParametricLIF, surrogate  # noqa: E402

from .neuron_runs import run_minisnn, run_torch  # noqa: E402

SHAPE = (4, 2, 8, 16)  # [T, B, C, N]


# ------------------------------------------------------------------ plain-torch oracle (spec §1.1)
class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, family):
        ctx.save_for_backward(x)
        ctx.alpha, ctx.family = alpha, family
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        if ctx.family == "sigmoid":
            sg = torch.sigmoid(a * x)
            return g * a * sg * (1 - sg), None, None
        return g * a / (2 * (1 + (math.pi / 2 * a * x) ** 2)), None, None


def torch_lif(x_seq, tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
              family="sigmoid", alpha=4.0, leaky=True):
    """Charge, fire, reset, written from upstream_models.md §1.1; autograd does the BPTT."""
    v_r = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x_seq[0], v_r)
    out = []
    for x in x_seq:
        if not leaky:
            h = v + x
        elif decay_input:
            h = v + (x - (v - v_r)) / tau
        else:
            h = v - (v - v_r) / tau + x
        s = _Spike.apply(h - v_threshold, alpha, family)
        s_r = s.detach() if detach_reset else s
        v = h - s_r * v_threshold if v_reset is None else h * (1 - s_r) + s_r * v_r
        out.append(s)
    return torch.stack(out)


def _inputs(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 1.0, SHAPE).astype(dtype), rng.normal(size=SHAPE).astype(dtype)


def _torch_run(fn, x, g):
    return run_torch(torch, fn, x, g)


def _compare(ours, theirs, x, dtype, v_threshold, neuron_kw):
    (s1, g1), (s2, g2) = ours, theirs
    assert s1.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)
    else:  # float32: spikes may differ only for neurons that came within 1e-6 of the threshold
        params = LIFParams.make(**dict(neuron_kw, v_threshold=v_threshold)).in_dtype(dtype)
        h_seq, _ = ref_lif._run(x.reshape(x.shape[0], -1), np.full((1, 1), 4.0, dtype), params)
        ok = ~np.any(np.abs(h_seq - dtype(v_threshold)) < 1e-6, axis=0)
        flat = lambda a: a.reshape(a.shape[0], -1)[:, ok]  # noqa: E731
        np.testing.assert_array_equal(flat(s1), flat(s2))
        np.testing.assert_allclose(flat(g1), flat(g2), rtol=1e-4, atol=1e-5)


VARIANTS = {
    "default": {},
    "threshold_0.5": dict(v_threshold=0.5),
    "no_decay_input": dict(decay_input=False),
    "soft_reset": dict(v_reset=None),
    "no_detach": dict(detach_reset=False),
    "soft_no_detach": dict(v_reset=None, detach_reset=False),
    "tau_3_reset_-0.2": dict(tau=3.0, v_reset=-0.2),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("family", ["sigmoid", "atan"])
def test_plain_torch_oracle(dtype, variant, family):
    kw = VARIANTS[variant]
    x, g = _inputs(dtype)
    alpha = 4.0 if family == "sigmoid" else 2.0
    theirs = _torch_run(lambda xt: torch_lif(xt, family=family, alpha=alpha, **kw), x, g)
    sg = surrogate.Sigmoid(alpha) if family == "sigmoid" else surrogate.ATan(alpha)
    for step in (False, True):
        neuron = LIF(surrogate=sg, **kw)
        _compare(run_minisnn(neuron, x, g, step), theirs, x, dtype, kw.get("v_threshold", 1.0), kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("soft", [False, True])
def test_plain_torch_oracle_if(dtype, soft):
    kw = dict(v_reset=None if soft else 0.0, v_threshold=1.5)
    x, g = _inputs(dtype, seed=1)
    theirs = _torch_run(lambda xt: torch_lif(xt, leaky=False, **kw), x, g)
    _compare(run_minisnn(IF(**kw), x, g), theirs, x, dtype, 1.5, dict(kw, leaky=False))


# ------------------------------------------------------------------ SpikingJelly
SJ_VARIANTS = {
    "spec_default": dict(tau=2.0, detach_reset=True),
    "threshold_0.5": dict(tau=2.0, detach_reset=True, v_threshold=0.5),
    "no_decay_input": dict(tau=2.0, detach_reset=True, decay_input=False),
    "soft_reset": dict(tau=2.0, detach_reset=True, v_reset=None),
    "no_detach": dict(tau=2.0, detach_reset=False),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("variant", sorted(SJ_VARIANTS))
@pytest.mark.parametrize("family", ["sigmoid", "atan"])
def test_spikingjelly_multistep_lif(dtype, variant, family):
    kw = SJ_VARIANTS[variant]
    x, g = _inputs(dtype, seed=2)
    sj_sg = sj_surrogate.Sigmoid() if family == "sigmoid" else sj_surrogate.ATan()
    node = sj_neuron.MultiStepLIFNode(surrogate_function=sj_sg, backend="torch", **kw)
    node.reset()
    theirs = _torch_run(node, x, g)
    sg = surrogate.Sigmoid() if family == "sigmoid" else surrogate.ATan()
    _compare(run_minisnn(LIF(surrogate=sg, **kw), x, g), theirs, x, dtype, kw.get("v_threshold", 1.0), kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spikingjelly_multistep_if(dtype):
    x, g = _inputs(dtype, seed=3)
    node = sj_neuron.MultiStepIFNode(detach_reset=True, backend="torch")
    node.reset()
    theirs = _torch_run(node, x, g)
    _compare(run_minisnn(IF(), x, g), theirs, x, dtype, 1.0, dict(leaky=False))


def test_spikingjelly_parametric_lif_and_w_gradient():
    x, g = _inputs(np.float64, seed=4)
    node = sj_neuron.MultiStepParametricLIFNode(init_tau=3.0, detach_reset=True, backend="torch").double()
    node.reset()
    xt = torch.tensor(x, requires_grad=True)
    s = node(xt)
    s.backward(torch.tensor(g))
    plif = ParametricLIF(init_tau=3.0)
    plif.to_dtype(np.float64)
    plif.load_state_dict({"w": node.w.detach().numpy()})
    ours = Tensor(x, requires_grad=True)
    out = plif(ours)
    out.backward(g)
    # SpikingJelly charges with (x − v)·sigmoid(w), we divide by τ = 1 + exp(−w): equal up to rounding
    np.testing.assert_array_equal(out.data, s.detach().numpy())
    np.testing.assert_allclose(ours.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert float(plif.w.grad) == pytest.approx(float(node.w.grad), rel=1e-9)


@pytest.mark.parametrize("name, ours", [("Sigmoid", surrogate.Sigmoid), ("ATan", surrogate.ATan)])
@pytest.mark.parametrize("alpha", [0.5, 2.0, 4.0, 7.5])
def test_spikingjelly_surrogate_functions(name, ours, alpha):
    x = np.random.default_rng(5).normal(0, 1.5, 200)
    theirs = getattr(sj_surrogate, name)(alpha=alpha)
    xt = torch.tensor(x, requires_grad=True)
    s = theirs(xt)
    s.backward(torch.ones_like(xt))
    np.testing.assert_array_equal(s.detach().numpy(), (x >= 0).astype(float))
    # SpikingJelly forms σ(1 − σ), which loses ~1e-10 relative in the tails; we use e/(1+e)²
    np.testing.assert_allclose(ours(alpha).derivative(x), xt.grad.numpy(), rtol=1e-9, atol=1e-15)
    theirs.set_spiking_mode(False)
    np.testing.assert_allclose(ours(alpha).primitive(x), theirs(torch.tensor(x)).numpy(), rtol=1e-13, atol=1e-15)
