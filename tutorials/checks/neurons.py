"""Checkers for notebooks 01-06: autograd, encoding, the LIF neuron, surrogates, BPTT, Numba."""
from __future__ import annotations

import numpy as np

from minisnn import GradcheckError, Tensor, gradcheck
from minisnn.kernels.lif_params import LIFParams
from minisnn.kernels.reference import lif as ref_lif
from minisnn.spiking import LIF, spike, surrogate

from .verdict import Wrong, checker, close, close_to_d_alpha, sigmoid


# ----------------------------------------------------------------------------- 01 autograd

@checker
def check_01_silu(silu_function):
    """`silu_function`: a minisnn Function class for y = x·σ(x); checked on values and by gradcheck."""
    x = np.linspace(-6.0, 6.0, 25)
    y = silu_function.apply(Tensor(x))
    close("SiLU forward", y.data, x * sigmoid(x))
    try:
        gradcheck(lambda t: silu_function.apply(t), [np.random.default_rng(1).standard_normal((3, 4))])
    except GradcheckError as err:
        raise Wrong(f"the backward does not match central differences: {err}") from None
    return "forward equals x·σ(x) and the backward passes gradcheck in float64"


@checker
def check_01_forward_difference(slope, best_eps):
    """`slope`: the log-log slope of the forward difference's truncation error; `best_eps`: its best ε in float64."""
    if not np.isclose(slope, 1.0):
        raise Wrong(f"slope {slope}: the forward difference's error is ε·|f''|/2 + O(ε²), a line of slope 1 "
                    f"on log-log axes (the central difference's is ε²|f'''|/6, slope 2)")
    x, u = 0.7, np.finfo(np.float64).eps / 2
    f, f2 = np.logaddexp(0.0, x), sigmoid(x) * (1 - sigmoid(x))
    optimum = 2.0 * np.sqrt(u * f / f2)                    # minimises ε|f''|/2 + 2u|f|/ε
    if not optimum / 10 <= best_eps <= optimum * 10:
        raise Wrong(f"best eps {best_eps:.1e}: balancing ε|f''|/2 against the rounding 2u|f|/ε gives "
                    f"ε ≈ 2·sqrt(u|f|/|f''|) ≈ {optimum:.1e} (u = 2^-53), near sqrt(u), not u^(1/3)")
    return f"slope 1, best ε ≈ {optimum:.1e} (about sqrt(u)); the central difference's is near u^(1/3) ≈ 5e-6"


@checker
def check_01_accumulate(accumulated_grad):
    """`accumulated_grad(w, X, y, n_micro)`: dL/dw of L = mean((X w − y)²) summed over n_micro backward calls."""
    rng = np.random.default_rng(3)
    X, y, w = rng.standard_normal((12, 3)), rng.standard_normal(12), rng.standard_normal(3)
    expected = 2.0 * X.T @ (X @ w - y) / len(y)
    for n_micro in (1, 3, 4):
        got = accumulated_grad(w.copy(), X, y, n_micro)
        close(f"gradient with {n_micro} micro-batches", got, expected)
    return "the accumulated gradient equals the full batch's for 1, 3 and 4 micro-batches"


# ----------------------------------------------------------------------------- 02 encoding

@checker
def check_02_latency(latency_encode):
    """`latency_encode(p, T)`: one spike per pixel at t = round((1 − p)(T − 1))."""
    p = np.array([[0.0, 0.2, 0.5], [0.74, 0.9, 1.0]])
    for T in (1, 4, 9):
        s = np.asarray(latency_encode(p, T))
        if s.shape != (T,) + p.shape:
            raise Wrong(f"T = {T}: expected shape {(T,) + p.shape} (time first), got {s.shape}")
        if not np.all(s.sum(axis=0) == 1):
            raise Wrong(f"T = {T}: every pixel must spike exactly once, counts {s.sum(axis=0).tolist()}")
        expected = np.round((1 - p) * (T - 1))
        close(f"T = {T}, spike times", s.argmax(axis=0), expected)
    return "one spike per pixel, bright pixels first; the firing rate is always 1/T"


@checker
def check_02_threshold(min_firing_input):
    """`min_firing_input(T, v_th)`: the smallest constant input that fires a τ = 2 LIF neuron within T steps."""
    for T, v_th in ((1, 1.0), (2, 1.0), (4, 1.0), (4, 0.5), (8, 1.0)):
        x = float(min_firing_input(T, v_th))
        expected = v_th / (1 - 2.0 ** -T)
        fires = LIF(tau=2.0, v_threshold=v_th)(Tensor(np.full((T, 2), [x * (1 + 1e-9), x * (1 - 1e-6)]))).data
        if not np.isclose(x, expected, rtol=1e-9):
            raise Wrong(f"T = {T}, v_th = {v_th}: expected {expected:.6g}, got {x:.6g}"
                        + ("" if fires[:, 0].any() else " (the LIF neuron does not even fire at your input)"))
        if not fires[:, 0].any() or fires[:, 1].any():
            raise Wrong(f"T = {T}: the library's LIF disagrees with the formula")
    return "θ/(1 − 2^-T): H[T−1] = X(1 − 2^-T) is the largest charge a silent neuron reaches"


@checker
def check_02_poisson_count(expected_count):
    """`expected_count(p, T)`: the mean spike count of `poisson_encode(p, T, rng)` (rate_max_dt = 1)."""
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    for T in (1, 16):
        close(f"T = {T}", expected_count(p, T), T * (1 - np.exp(-p)))
    return "T(1 − e^-p): a bin is silent with probability e^-p; at p = 1 the rate saturates at 0.63, not 1"


# ----------------------------------------------------------------------------- 03 LIF

def _random_drive(shape, seed):
    return (1.2 * np.random.default_rng(seed).standard_normal(shape) + 0.8).astype(np.float64)


@checker
def check_03_no_decay_input(lif_no_decay):
    """`lif_no_decay(x_seq, tau, v_th, v_reset)`: spikes of H = V − (V − v_reset)/τ + X, hard reset."""
    x_seq = _random_drive((10, 3, 50), 4)
    for tau, v_th, v_reset in ((2.0, 1.0, 0.0), (3.0, 0.5, 0.0), (4.0, 1.0, -0.2)):
        expected = LIF(tau=tau, v_threshold=v_th, v_reset=v_reset, decay_input=False)(Tensor(x_seq)).data
        got = np.asarray(lif_no_decay(x_seq, tau, v_th, v_reset))
        if got.shape != expected.shape:
            raise Wrong(f"expected spikes of shape {expected.shape}, got {got.shape}")
        if not np.array_equal(got, expected):
            t, *_ = np.argwhere(got != expected)[0]
            raise Wrong(f"tau = {tau}, v_th = {v_th}, v_reset = {v_reset}: first different spike at t = {t}")
    return "identical to LIF(decay_input=False); from rest the first step now fires iff X ≥ v_th"


def _soft_rate(x, tau, v_th, steps=6000):
    v, count = 0.0, 0
    for t in range(steps):
        h = v + (x - v) / tau
        fired = h >= v_th
        v = h - v_th * fired
        count += fired and t >= steps // 2
    return count / (steps - steps // 2)


@checker
def check_03_soft_rate(soft_reset_rate):
    """`soft_reset_rate(x, tau, v_th)`: the long-run firing rate of a soft-reset LIF under constant input x."""
    cases = [(1.01, 2.0, 1.0), (1.1, 2.0, 1.0), (1.2, 2.0, 1.0), (1.5, 2.0, 1.0), (1.8, 2.0, 1.0),
             (1.9, 2.0, 1.0), (2.5, 2.0, 1.0), (0.6, 2.0, 0.5), (1.3, 3.0, 1.0), (0.9, 2.0, 1.0)]
    for x, tau, v_th in cases:
        expected, got = _soft_rate(x, tau, v_th), float(soft_reset_rate(x, tau, v_th))
        if abs(got - expected) > 2e-3:
            raise Wrong(f"at X = {x}, tau = {tau}, v_th = {v_th} expected {expected:.4f}, got {got:.4f}"
                        + (" (min(1, X/v_th) is the IF neuron's rate, not LIF's)" if np.isclose(got, min(1, x / v_th))
                           else ""))
    return "a staircase of fractions (1/7, 1/4, 1/3, 1/2, 2/3, 3/4, 1 for tau = 2), not a formula in X"


def _adaptive(x_seq, beta, tau_a, tau=2.0, v_th=1.0):
    a = np.zeros(x_seq.shape[1:])
    v = np.zeros(x_seq.shape[1:])
    s_seq, th_seq = np.empty_like(x_seq), np.empty_like(x_seq)
    for t in range(len(x_seq)):
        theta = v_th + a
        h = v + (x_seq[t] - v) / tau
        s = (h >= theta).astype(x_seq.dtype)
        v = h * (1 - s)
        a = a * (1 - 1 / tau_a) + beta * s
        s_seq[t], th_seq[t] = s, theta
    return s_seq, th_seq


@checker
def check_03_adaptive(lif_adaptive):
    """`lif_adaptive(x_seq, beta, tau_a)` -> (s_seq, theta_seq) as specified in notebook 3's exercise."""
    x_seq = _random_drive((16, 40), 5) + 0.5
    for beta, tau_a in ((0.0, 5.0), (0.3, 5.0), (1.0, 2.0)):
        expected_s, expected_th = _adaptive(x_seq, beta, tau_a)
        got_s, got_th = lif_adaptive(x_seq, beta, tau_a)
        close(f"beta = {beta}, tau_a = {tau_a}: theta_seq", got_th, expected_th)
        close(f"beta = {beta}, tau_a = {tau_a}: s_seq", got_s, expected_s)
    rate0, rate1 = _adaptive(x_seq, 0.0, 5.0)[0].mean(), _adaptive(x_seq, 1.0, 5.0)[0].mean()
    return f"thresholds and spikes match; adaptation lowers the firing rate ({rate0:.2f} -> {rate1:.2f})"


# ----------------------------------------------------------------------------- 04 surrogates

@checker
def check_04_fast_sigmoid_d_alpha(d_alpha):
    """`d_alpha(x, alpha)`: ∂Φ/∂α of the fast sigmoid Φ(x; α) = 1/α + x/(1 + α|x|)."""
    close_to_d_alpha(d_alpha, surrogate.FastSigmoid(), (0.5, 2.0, 25.0), atol=1e-7)
    return "∂Φ/∂α = −1/α² − x|x|/(1 + α|x|)², equal to the library and to finite differences"


@checker
def check_04_mismatch(constants):
    """`constants`: {"sigmoid", "piecewise_linear", "rectangular"} -> c with ∫|Φ_α − Θ| dx = c/α."""
    x = np.linspace(-60, 60, 1_200_001)
    dx = x[1] - x[0]
    families = {"sigmoid": surrogate.Sigmoid(), "piecewise_linear": surrogate.PiecewiseLinear(),
                "rectangular": surrogate.Rectangular()}
    missing = sorted(set(families) - set(constants))
    if missing:
        raise Wrong(f"give a constant for {missing}")
    for name, family in families.items():
        expected = float(np.sum(np.abs(family.primitive(x, 1.0) - (x >= 0))) * dx)
        if not np.isclose(float(constants[name]), expected, rtol=1e-4):
            raise Wrong(f"{name}: the integral at alpha = 1 is {expected:.5f}, you gave {float(constants[name]):.5f}")
    return "c = 2 ln 2 (sigmoid), 1/3 (triangle), 1/4 (box); for ATan the integral diverges"


@checker
def check_04_channel_slope_grad(slope_grad):
    """`slope_grad(u, k, G, theta)`: dL/dk for per-channel slopes k [1, 1, C], L = Σ G·spike(u; k), sigmoid family."""
    rng = np.random.default_rng(6)
    u = 1.0 + 0.8 * rng.standard_normal((2, 5, 4))
    k = rng.uniform(1.0, 5.0, size=(1, 1, 4))
    G = rng.standard_normal((2, 5, 4))
    k_leaf = Tensor(k, requires_grad=True)
    spike(Tensor(u), slope=k_leaf, threshold=1.0, surrogate="sigmoid").backward(G)
    close("dL/dk", slope_grad(u, k, G, 1.0), k_leaf.grad)
    return "the slope gradient sums x·P'(kx)·G over the batch and token axes, one number per channel"


# ----------------------------------------------------------------------------- 05 BPTT

@checker
def check_05_tau_grad(tau_grad):
    """`tau_grad(g_seq, x_seq, tau)`: dL/dτ of the detached hard-reset LIF (v_th 1, v_reset 0, sigmoid α = 4)."""
    rng = np.random.default_rng(7)
    x_seq, g_seq = 1.5 * rng.standard_normal((8, 200)) + 1.0, rng.standard_normal((8, 200))
    for tau in (2.0, 3.5):
        expected = ref_lif.lif_backward(g_seq, x_seq, np.full((1, 1), 4.0), LIFParams.make(tau=tau), False, True)[2]
        close(f"dL/dtau at tau = {tau}", float(tau_grad(g_seq, x_seq, tau)), expected, rtol=1e-9)
    return "dL/dτ = Σ_t Σ_n g_H[t]·∂H[t]/∂τ, equal to the reference kernel's third output"


@checker
def check_05_soft_backward(soft_backward):
    """`soft_backward(g_seq, x_seq, tau, v_th, alpha, detach_reset)`: dL/dX of the soft-reset LIF."""
    rng = np.random.default_rng(8)
    x_seq, g_seq = 1.5 * rng.standard_normal((8, 200)) + 1.0, rng.standard_normal((8, 200))
    for detach in (True, False):
        params = LIFParams.make(tau=2.0, v_threshold=1.0, v_reset=None, detach_reset=detach)
        expected = ref_lif.lif_backward(g_seq, x_seq, np.full((1, 1), 4.0), params, False, False)[0]
        close(f"dL/dX with detach_reset={detach}", soft_backward(g_seq, x_seq, 2.0, 1.0, 4.0, detach), expected)
    return "with a soft reset the memory path keeps the factor (1 − 1/τ) after a spike: spikes no longer cut it"


# ----------------------------------------------------------------------------- 06 Numba

@checker
def check_06_soft_kernel(lif_soft_forward):
    """`lif_soft_forward(x_seq, tau, v_th)`: soft-reset spikes, bit for bit the reference kernel's (float32)."""
    x_seq = (1.5 * np.random.default_rng(9).standard_normal((8, 4096)) + 1.0).astype(np.float32)
    for tau, v_th in ((2.0, 1.0), (3.0, 0.5)):
        expected = ref_lif.lif_forward(x_seq, np.full((1, 1), 4.0, np.float32),
                                       LIFParams.make(tau=tau, v_threshold=v_th, v_reset=None))
        got = np.asarray(lif_soft_forward(x_seq, tau, v_th))
        if got.dtype != np.float32:
            raise Wrong(f"spikes must stay float32 like the input, got {got.dtype}")
        if not np.array_equal(got, expected):
            raise Wrong(f"tau = {tau}, v_th = {v_th}: {int((got != expected).sum())} spikes differ from the reference")
    return "bit-identical to ref_lif.lif_forward with LIFParams.make(v_reset=None)"
