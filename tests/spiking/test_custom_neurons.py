"""CustomNeuron and its two examples, ALIF and Synaptic.

* the mechanism: a LIF / IF written with CustomNeuron equals the built-in (spikes, gradients);
* BPTT: gradcheck in smooth mode, float64, through T >= 4 steps, reset attached;
* ALIF and Synaptic against PyTorch implementations written here from their docstrings,
  and Synaptic against snnTorch's own `snn.Synaptic`;
* detached vs attached reset, state across calls, the Neuron protocol, one-line errors.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from minisnn import Tensor, gradcheck, nn
from minisnn.kernels.lif_params import charge as lif_charge
from minisnn.spiking import (ALIF, IF, LIF, CustomNeuron, Neuron, Synaptic, is_neuron, named_neurons, reset_net,
                             surrogate)

from .neuron_runs import run_minisnn, run_torch

SHAPE = (6, 2, 5)  # [T, B, N]


class HandLIF(CustomNeuron):
    """LIF written with CustomNeuron (SpikingJelly's charge).  Spike when H >= v_threshold; hard or
    soft reset as chosen, detached when detach_reset=True."""

    def __init__(self, tau=2.0, decay_input=True, leaky=True, **settings):
        super().__init__(**settings)
        self.tau, self.decay_input, self.leaky = tau, decay_input, leaky

    def charge(self, x, state):
        return lif_charge(state["v"], x, self.tau, self.v_rest, self.decay_input, self.leaky), state


class GainIF(CustomNeuron):
    """H = V/2 + g·X with a gain g that may be a Tensor (learnable).  Spike when H >= v_threshold;
    reset as chosen, detached when detach_reset=True."""

    def __init__(self, gain, **settings):
        super().__init__(**settings)
        self.gain = gain

    def charge(self, x, state):
        return 0.5 * state["v"] + self.gain * x, state


def _inputs(seed=0, shape=SHAPE, mean=0.9):
    rng = np.random.default_rng(seed)
    return rng.normal(mean, 1.0, shape), rng.normal(size=shape)


_run = run_minisnn


def _assert_same(ours, theirs):
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert 0 < ours[0].mean() < 1  # some spikes and some silence, so the resets matter
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ the mechanism reproduces LIF / IF
LIF_VARIANTS = {
    "hard_detached": (dict(), dict()),
    "hard_attached": (dict(detach_reset=False), dict(detach_reset=False)),
    "soft_detached": (dict(v_reset=None), dict(reset="soft")),
    "soft_attached": (dict(v_reset=None, detach_reset=False), dict(reset="soft", detach_reset=False)),
    "reset_-0.2_tau_3_threshold_0.7": (dict(v_reset=-0.2, tau=3.0, v_threshold=0.7),
                                       dict(v_reset=-0.2, tau=3.0, v_threshold=0.7)),
    "no_decay_input_atan": (dict(decay_input=False, surrogate="atan"), dict(decay_input=False, surrogate="atan")),
}


@pytest.mark.parametrize("variant", sorted(LIF_VARIANTS))
def test_a_lif_written_with_custom_neuron_equals_the_built_in(variant):
    builtin_kw, custom_kw = LIF_VARIANTS[variant]
    x, g = _inputs()
    builtin = _run(LIF(**builtin_kw), x, g)
    for step in (False, True):
        _assert_same(_run(HandLIF(**custom_kw), x, g, step), builtin)


@pytest.mark.parametrize("soft", [False, True])
def test_an_if_written_with_custom_neuron_equals_the_built_in(soft):
    x, g = _inputs(seed=1, mean=0.4)
    builtin = _run(IF(v_reset=None if soft else 0.0, v_threshold=1.5), x, g)
    _assert_same(_run(HandLIF(leaky=False, reset="soft" if soft else "hard", v_threshold=1.5), x, g), builtin)


# ------------------------------------------------------------------ BPTT by finite differences (smooth mode)
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_alif_gradcheck_smooth(reset, decay_input):
    x = np.random.default_rng(2).normal(0.8, 0.8, (5, 2, 3))
    neuron = ALIF(tau=2.5, tau_adapt=3.0, beta=1.5, reset=reset, v_reset=-0.1, decay_input=decay_input,
                  detach_reset=False, smooth=True, surrogate=surrogate.Sigmoid(2.0))
    assert gradcheck(neuron, [x], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mechanism", ["subtract", "zero", "none"])
def test_synaptic_gradcheck_smooth(mechanism):
    x = np.random.default_rng(3).normal(0.4, 0.8, (5, 2, 3))
    neuron = Synaptic(alpha=0.8, beta=0.7, v_threshold=1.2, reset_mechanism=mechanism, detach_reset=False,
                      smooth=True)
    assert gradcheck(neuron, [x], atol=1e-6, rtol=1e-5)


def test_gradcheck_reaches_a_learnable_tensor_inside_charge():
    rng = np.random.default_rng(4)
    x, gain = rng.normal(0.8, 0.8, (4, 2, 3)), rng.uniform(0.5, 1.5, 3)
    fn = lambda x, gain: GainIF(gain, reset="soft", detach_reset=False, smooth=True)(x)  # noqa: E731
    assert gradcheck(fn, [x, gain], atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ detached vs attached reset
def test_detached_hard_reset_blocks_the_gradient_through_the_spike_and_attached_does_not():
    """IF, hard reset to 0, θ = 1, X = (1.5, 0.5): S[0] = 1, V[0] = 0, H[1] = 0.5, S[1] = 0.

    Detached: V[0] = H[0]·(1 − S[0]) with S[0] constant, so dS[1]/dX[0] = p'(H[1] − θ)·(1 − S[0]) = 0.
    Attached: dV[0]/dX[0] = (1 − S[0]) − H[0]·p'(H[0] − θ), so dS[1]/dX[0] = −1.5·p'(−0.5)·p'(0.5).
    """
    x = np.array([[1.5], [0.5]])
    g = np.array([[0.0], [1.0]])  # the loss is S[1]
    sg = surrogate.Sigmoid(4.0)
    detached = _run(HandLIF(leaky=False, surrogate=sg), x, g)
    attached = _run(HandLIF(leaky=False, surrogate=sg, detach_reset=False), x, g)
    np.testing.assert_array_equal(detached[0], [[1.0], [0.0]])
    np.testing.assert_array_equal(attached[0], detached[0])  # the forward does not change
    d = lambda u: float(sg.derivative(np.array([u]))[0])  # noqa: E731
    np.testing.assert_allclose(detached[1], [[0.0], [d(-0.5)]], rtol=1e-14, atol=0)
    np.testing.assert_allclose(attached[1], [[-1.5 * d(-0.5) * d(0.5)], [d(-0.5)]], rtol=1e-14)


@pytest.mark.parametrize("make", [lambda **kw: ALIF(tau_adapt=3.0, **kw), lambda **kw: Synaptic(0.8, 0.7, **kw)],
                         ids=["ALIF", "Synaptic"])
def test_finite_differences_see_the_attached_reset_not_the_detached_one(make):
    """detach_reset is a choice of gradient: central differences always see the full dependence."""
    x = np.random.default_rng(5).normal(0.8, 0.8, (4, 2, 3))
    assert gradcheck(make(detach_reset=False, smooth=True), [x], atol=1e-6, rtol=1e-5)
    assert not gradcheck(make(detach_reset=True, smooth=True), [x], atol=1e-6, rtol=1e-5, raise_exception=False)


# ------------------------------------------------------------------ state and the Neuron protocol
@pytest.mark.parametrize("make", [ALIF, lambda: Synaptic(0.9, 0.8), HandLIF], ids=["ALIF", "Synaptic", "HandLIF"])
def test_step_state_carries_and_reset_state_forgets_it(make):
    x, _ = _inputs(seed=6)
    neuron = make()
    whole = neuron(x).data
    assert neuron.state is None  # forward starts from rest and leaves the step state alone
    first = np.stack([neuron.step(x[t]).data for t in range(x.shape[0])])
    np.testing.assert_array_equal(first, whole)
    carried = np.stack([neuron.step(x[t]).data for t in range(x.shape[0])])
    assert not np.array_equal(carried, whole)  # without reset_state the second sequence starts charged
    state = neuron.state
    np.testing.assert_array_equal(neuron(x).data, whole)  # forward neither reads nor changes that state
    assert neuron.state is state
    neuron.reset_state()
    assert neuron.state is None and neuron.v is None
    np.testing.assert_array_equal(np.stack([neuron.step(x[t]).data for t in range(x.shape[0])]), whole)


def test_no_gradient_reaches_inputs_from_before_reset_state():
    neuron = ALIF(detach_reset=False)
    old = Tensor(np.full((2, 3), 1.2), requires_grad=True)
    neuron.step(old)
    neuron.reset_state()
    new = Tensor(np.full((2, 3), 0.7), requires_grad=True)
    neuron.step(new).sum().backward()
    assert old.grad is None and new.grad is not None


def test_custom_neurons_are_neurons_that_reset_net_and_record_find():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.alif = ALIF()
            self.syn = Synaptic(0.9, 0.8)

        def forward(self, x):
            return self.syn.step(self.alif.step(self.fc(x)))

    net = Net()
    assert all(is_neuron(m) and isinstance(m, Neuron) for m in (net.alif, net.syn, HandLIF()))
    assert [path for path, _ in named_neurons(net)] == ["alif", "syn"]
    net(Tensor(np.ones((2, 3), dtype=np.float32)))
    assert net.alif.state is not None and net.syn.state is not None
    assert reset_net(net) == 2 and net.alif.state is None and net.syn.state is None
    net.alif.record = True
    s_seq = net.alif(np.ones((4, 2, 3), dtype=np.float32))
    np.testing.assert_array_equal(net.alif.last_s_seq, s_seq.data)


def test_float32_stays_float32():
    x = np.random.default_rng(7).normal(1.0, 1.0, (4, 2, 3)).astype(np.float32)
    for neuron in (ALIF(), Synaptic(0.9, 0.8), HandLIF()):
        xt = Tensor(x, requires_grad=True)
        s = neuron(xt)
        s.sum().backward()
        assert s.dtype == np.float32 and xt.grad.dtype == np.float32
        assert neuron.step(x[0]).dtype == np.float32 and neuron.state["v"].dtype == np.float32


# ------------------------------------------------------------------ one-line errors
class _Returns(CustomNeuron):
    """Charge returns whatever `make(x, state)` gives (for the error tests).
    Spike when H >= 1; hard reset, detached."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def charge(self, x, state):
        return self.make(x, state)


class _Threshold(CustomNeuron):
    """θ of shape [4, 1, 1], which broadcasts against H but changes its shape.
    Spike when H >= θ; hard reset, detached."""

    def charge(self, x, state):
        return state["v"] + x, state

    def threshold(self, state):
        return np.ones((4, 1, 1))


class _BadExtra(CustomNeuron):
    extra_state = {"v": 0.0}

    def charge(self, x, state):
        return x, state


BAD = {
    "no charge": (lambda: CustomNeuron(), TypeError, "must define charge"),
    "unknown reset": (lambda: HandLIF(reset="hardd"), ValueError, "reset must be one of"),
    "nan threshold": (lambda: HandLIF(v_threshold=float("nan")), ValueError, "v_threshold must be finite"),
    "text threshold": (lambda: HandLIF(v_threshold="one"), TypeError, "v_threshold must be a number"),
    "extra state named v": (_BadExtra, ValueError, "not a valid name"),
    "unknown surrogate": (lambda: HandLIF(surrogate="nope"), ValueError, "unknown surrogate"),
    "alif tau": (lambda: ALIF(tau_adapt=0.0), ValueError, "tau and tau_adapt must be > 0"),
    "alif beta": (lambda: ALIF(beta=-1.0), ValueError, "beta"),
    "synaptic alpha": (lambda: Synaptic(1.5, 0.5), ValueError, r"in \[0, 1\]"),
    "synaptic threshold": (lambda: Synaptic(0.5, 0.5, v_threshold=0.0), ValueError, "v_threshold must be > 0"),
    "synaptic reset": (lambda: Synaptic(0.5, 0.5, reset_mechanism="hard"), ValueError, "reset_mechanism must be"),
    "integer input": (lambda: ALIF()(np.ones((3, 2), dtype=np.int64)), TypeError, "must be a floating-point"),
    "0-d input": (lambda: ALIF()(np.float64(1.0)), ValueError, r"must be \[T, \.\.\.\] with T >= 1"),
    "no time steps": (lambda: ALIF()(np.ones((0, 2))), ValueError, "T >= 1"),
    "nan input": (lambda: ALIF()(np.full((2, 3), np.nan)), ValueError, "not finite"),
    "charge returns an array": (lambda: _Returns(lambda x, st: (x.data, st))(np.ones((2, 3))), TypeError,
                                r"must return \(h, state\)"),
    "charge drops a name": (lambda: _Returns(lambda x, st: (x, {}))(np.ones((2, 3))), ValueError,
                            r"exactly the names \['v'\]"),
    "charge changes the shape": (lambda: _Returns(lambda x, st: (x.sum(), st))(np.ones((2, 3))), ValueError,
                                 "the membrane must have the input's shape"),
    "threshold of another shape": (lambda: _Threshold()(np.ones((2, 3))), ValueError,
                                   "does not broadcast to the membrane's shape"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_line_errors(case):
    make, error, match = BAD[case]
    with pytest.raises(error, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_changing_the_step_shape_without_reset_state_is_refused():
    neuron = Synaptic(0.9, 0.8)
    neuron.step(np.ones((2, 3)))
    with pytest.raises(ValueError, match="call reset_state") as info:
        neuron.step(np.ones((3, 3)))
    assert "\n" not in str(info.value)
    neuron.reset_state()
    assert neuron.step(np.ones((3, 3))).shape == (3, 3)


# ------------------------------------------------------------------ against PyTorch
def _torch_spike(torch, u, sg):
    """Θ(u) (Θ(0) = 1) whose gradient is p'(u): the step plus p − p.detach(), p written in torch."""
    if isinstance(sg, surrogate.Sigmoid):
        p = torch.sigmoid(sg.alpha * u)
    else:
        p = torch.atan(math.pi / 2 * sg.alpha * u) / math.pi + 0.5
    return (u >= 0).to(u.dtype) + (p - p.detach())


def torch_alif(torch, x_seq, tau, tau_adapt, beta, v_threshold, soft, v_reset, detach, sg):
    """ALIF from its docstring: LIF charge, θ = v_th + β·b, reset, b = ρ·b + (1 − ρ)·S."""
    rho = math.exp(-1.0 / tau_adapt)
    v_r = 0.0 if soft else v_reset
    v, b, out = torch.full_like(x_seq[0], v_r), torch.zeros_like(x_seq[0]), []
    for x in x_seq:
        h = v + (x - (v - v_r)) / tau
        theta = v_threshold + beta * b
        s = _torch_spike(torch, h - theta, sg)
        s_fed = s.detach() if detach else s
        v = h - theta * s_fed if soft else h * (1 - s_fed) + v_r * s_fed
        b = rho * b + (1 - rho) * s_fed
        out.append(s)
    return torch.stack(out)


def torch_synaptic(torch, x_seq, alpha, beta, v_threshold, mechanism, detach, sg):
    """snnTorch's Synaptic from its documentation: the reset of S[t − 1] inside step t's membrane update."""
    syn, mem, last, out = torch.zeros_like(x_seq[0]), torch.zeros_like(x_seq[0]), torch.zeros_like(x_seq[0]), []
    for x in x_seq:
        syn = alpha * syn + x
        mem = beta * mem + syn
        if mechanism == "subtract":
            mem = mem - v_threshold * last
        elif mechanism == "zero":
            mem = mem * (1 - last)
        s = _torch_spike(torch, mem - v_threshold, sg)
        last = s.detach() if detach else s
        out.append(s)
    return torch.stack(out)


_torch_run = run_torch


@pytest.mark.torch
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("sg", [surrogate.Sigmoid(4.0), surrogate.ATan(2.0)], ids=["sigmoid", "atan"])
def test_alif_against_pytorch(detach, reset, sg):
    torch = pytest.importorskip("torch")
    x, g = _inputs(seed=8)
    kw = dict(tau=2.0, tau_adapt=3.0, beta=1.5, v_threshold=1.0, v_reset=-0.2)
    theirs = _torch_run(torch, lambda xt: torch_alif(torch, xt, soft=reset == "soft", detach=detach, sg=sg, **kw), x, g)
    for step in (False, True):
        _assert_same(_run(ALIF(reset=reset, detach_reset=detach, surrogate=sg, **kw), x, g, step), theirs)


@pytest.mark.torch
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("mechanism", ["subtract", "zero", "none"])
def test_synaptic_against_pytorch(detach, mechanism):
    torch = pytest.importorskip("torch")
    x, g = _inputs(seed=9, mean=0.3)
    sg = surrogate.ATan(2.0)
    theirs = _torch_run(torch, lambda xt: torch_synaptic(torch, xt, 0.9, 0.8, 1.0, mechanism, detach, sg), x, g)
    for step in (False, True):
        ours = _run(Synaptic(0.9, 0.8, reset_mechanism=mechanism, detach_reset=detach), x, g, step)
        _assert_same(ours, theirs)


@pytest.mark.torch
@pytest.mark.parametrize("mechanism", ["subtract", "zero", "none"])
def test_synaptic_against_snntorch(mechanism):
    """snnTorch 1.0's own snn.Synaptic (reset_delay=True, atan surrogate, reset detached), float64."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    x, g = _inputs(seed=10, mean=0.3)
    g = g.astype(np.float32).astype(np.float64)  # snnTorch's spikes are float32: so is the gradient it takes in
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    layer = snn.Synaptic(alpha=f64(0.9), beta=f64(0.8), threshold=f64(1.0), reset_mechanism=mechanism)
    layer.reset_mem()

    def run(xt):
        return torch.stack([layer(xt[t])[0] for t in range(xt.shape[0])])

    _assert_same(_run(Synaptic(0.9, 0.8, reset_mechanism=mechanism), x, g), _torch_run(torch, run, x, g))
