"""Checkers for the exercises of the tutorial notebooks.

Call a checker with your answer: it prints ``right: ...`` or ``wrong: ...`` (saying where and why)
and returns True or False.  Every checker works out the expected answer itself, from NumPy or from
the library object the exercise is about, on inputs you do not choose.  A function that still
raises ``NotImplementedError`` (the notebooks' empty exercise cells do) is reported as not
attempted, so the notebooks run from top to bottom before you solve anything.

The worked solutions live in ``solutions/NN_*.py`` next to this file;
``tests/test_tutorial_solutions.py`` runs each of them through its checker, and a wrong answer
through the same checker, so both verdicts are tested.
"""
from __future__ import annotations

import functools
import os
import pickletools
import struct
import tempfile
import zipfile

import numpy as np

from minisnn import GradcheckError, Tensor, gradcheck
from minisnn.attention import ssa
from minisnn.io import UnsafeCheckpointError, load_checkpoint, save_checkpoint
from minisnn.kernels.lif_params import LIFParams
from minisnn.kernels.reference import lif as ref_lif
from minisnn.optim import AdamW, TimmCosine, WarmupCosine
from minisnn.spiking import LIF, spike, surrogate

__all__ = [
    "check_01_silu", "check_01_forward_difference", "check_01_accumulate",
    "check_02_latency", "check_02_threshold", "check_02_poisson_count",
    "check_03_no_decay_input", "check_03_soft_rate", "check_03_adaptive",
    "check_04_fast_sigmoid_d_alpha", "check_04_mismatch", "check_04_channel_slope_grad",
    "check_05_tau_grad", "check_05_soft_backward",
    "check_06_soft_kernel",
    "check_07_max_entry", "check_07_costs", "check_07_ssa_backward",
    "check_08_attention_trains",
    "check_09_atan_d_alpha",
    "check_10_cutmix", "check_10_schedule_gap",
    "check_11_storage_classes", "check_11_global_names",
]


class Wrong(Exception):
    """Raised inside a checker with the reason the answer is wrong."""


def checker(fn):
    """Turn `fn` (raises Wrong, returns a short note) into a checker that prints and returns a verdict."""
    @functools.wraps(fn)
    def run(*args, **kwargs) -> bool:
        try:
            note = fn(*args, **kwargs)
        except NotImplementedError:
            print(f"{fn.__name__}: not attempted yet (your function still raises NotImplementedError)")
            return False
        except Wrong as why:
            print(f"wrong: {why}")
            return False
        print(f"right: {note}")
        return True
    return run


def _close(name, got, expected, rtol=1e-7, atol=1e-10):
    """Wrong unless `got` has `expected`'s shape and values (within tolerance)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise Wrong(f"{name}: expected shape {expected.shape}, got {got.shape}")
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        i = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
        raise Wrong(f"{name}: at index {tuple(int(j) for j in i)} expected {expected[i]:.6g}, got {got[i]:.6g}")


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# ----------------------------------------------------------------------------- 01 autograd

@checker
def check_01_silu(silu_function):
    """`silu_function`: a minisnn Function class for y = x·σ(x); checked on values and by gradcheck."""
    x = np.linspace(-6.0, 6.0, 25)
    y = silu_function.apply(Tensor(x))
    _close("SiLU forward", y.data, x * _sigmoid(x))
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
    f, f2 = np.logaddexp(0.0, x), _sigmoid(x) * (1 - _sigmoid(x))
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
        _close(f"gradient with {n_micro} micro-batches", got, expected)
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
        _close(f"T = {T}, spike times", s.argmax(axis=0), expected)
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
        _close(f"T = {T}", expected_count(p, T), T * (1 - np.exp(-p)))
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
        _close(f"beta = {beta}, tau_a = {tau_a}: theta_seq", got_th, expected_th)
        _close(f"beta = {beta}, tau_a = {tau_a}: s_seq", got_s, expected_s)
    rate0, rate1 = _adaptive(x_seq, 0.0, 5.0)[0].mean(), _adaptive(x_seq, 1.0, 5.0)[0].mean()
    return f"thresholds and spikes match; adaptation lowers the firing rate ({rate0:.2f} -> {rate1:.2f})"


# ----------------------------------------------------------------------------- 04 surrogates

@checker
def check_04_fast_sigmoid_d_alpha(d_alpha):
    """`d_alpha(x, alpha)`: ∂Φ/∂α of the fast sigmoid Φ(x; α) = 1/α + x/(1 + α|x|)."""
    x = np.linspace(-3, 3, 61)
    family = surrogate.FastSigmoid()
    for alpha in (0.5, 2.0, 25.0):
        got = d_alpha(x, alpha)
        _close(f"alpha = {alpha}", got, family.d_alpha(x, alpha))
        h = 1e-6 * alpha
        fd = (family.primitive(x, alpha + h) - family.primitive(x, alpha - h)) / (2 * h)
        _close(f"alpha = {alpha}, against finite differences", got, fd, rtol=1e-5, atol=1e-7)
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
    _close("dL/dk", slope_grad(u, k, G, 1.0), k_leaf.grad)
    return "the slope gradient sums x·P'(kx)·G over the batch and token axes, one number per channel"


# ----------------------------------------------------------------------------- 05 BPTT

@checker
def check_05_tau_grad(tau_grad):
    """`tau_grad(g_seq, x_seq, tau)`: dL/dτ of the detached hard-reset LIF (v_th 1, v_reset 0, sigmoid α = 4)."""
    rng = np.random.default_rng(7)
    x_seq, g_seq = 1.5 * rng.standard_normal((8, 200)) + 1.0, rng.standard_normal((8, 200))
    for tau in (2.0, 3.5):
        expected = ref_lif.lif_backward(g_seq, x_seq, np.full((1, 1), 4.0), LIFParams.make(tau=tau), False, True)[2]
        _close(f"dL/dtau at tau = {tau}", float(tau_grad(g_seq, x_seq, tau)), expected, rtol=1e-9)
    return "dL/dτ = Σ_t Σ_n g_H[t]·∂H[t]/∂τ, equal to the reference kernel's third output"


@checker
def check_05_soft_backward(soft_backward):
    """`soft_backward(g_seq, x_seq, tau, v_th, alpha, detach_reset)`: dL/dX of the soft-reset LIF."""
    rng = np.random.default_rng(8)
    x_seq, g_seq = 1.5 * rng.standard_normal((8, 200)) + 1.0, rng.standard_normal((8, 200))
    for detach in (True, False):
        params = LIFParams.make(tau=2.0, v_threshold=1.0, v_reset=None, detach_reset=detach)
        expected = ref_lif.lif_backward(g_seq, x_seq, np.full((1, 1), 4.0), params, False, False)[0]
        _close(f"dL/dX with detach_reset={detach}", soft_backward(g_seq, x_seq, 2.0, 1.0, 4.0, detach), expected)
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


# ----------------------------------------------------------------------------- 07 attention

@checker
def check_07_max_entry(largest):
    """`largest`: the largest possible entry of (QKᵀ)V for binary Q, K, V with N = 64 tokens and d = 32."""
    if int(largest) != 64 * 32:
        raise Wrong(f"{largest}: each entry of QKᵀ is at most d = 32 and (QKᵀ)V sums N = 64 of them")
    return "N·d = 2048 = 2^11: exact in float32 (24 bits) and, only just, in float16 (11 bits)"


@checker
def check_07_costs(costs):
    """`costs(nq, nk, d, dv)` -> (multiply-adds of (QKᵀ)V, of Q(KᵀV))."""
    for nq, nk, d, dv in ((64, 64, 32, 32), (16, 256, 32, 32), (8, 8, 64, 16), (100, 3, 5, 7)):
        got = tuple(int(c) for c in costs(nq, nk, d, dv))
        expected = (nq * nk * d + nq * nk * dv, nk * d * dv + nq * d * dv)
        if got != expected:
            raise Wrong(f"Nq={nq}, Nk={nk}, d={d}, dv={dv}: expected {expected}, got {got}")
    return "(QKᵀ)V costs Nq·Nk·(d + dv), Q(KᵀV) costs (Nq + Nk)·d·dv; for Nq = 16, Nk = 256 QKᵀ first is cheaper"


@checker
def check_07_ssa_backward(ssa_backward_kv):
    """`ssa_backward_kv(q, k, v, g, scale)` -> (dq, dk, dv) of z = scale·(QKᵀ)V, without an N×N array."""
    rng = np.random.default_rng(10)
    q, k, v = (rng.standard_normal((2, 12, 4)) for _ in range(3))
    g = rng.standard_normal((2, 12, 4))
    leaves = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    ssa(*leaves, scale=0.25).backward(g)
    for name, got, leaf in zip("qkv", ssa_backward_kv(q, k, v, g, 0.25), leaves):
        _close(f"d{name}", got, leaf.grad)
    return "dQ = s·G·Mᵀ with M = KᵀV, dK = s·V·(GᵀQ)ᵀ, dV = s·K·(QᵀG): only d×d products"


# ----------------------------------------------------------------------------- 08 MSViT

@checker
def check_08_attention_trains(trains):
    """`trains`: {1.0: spikes [4], 0.5: spikes [4]} of a τ = 2 LIF under the constant input 1."""
    x = Tensor(np.ones((4, 1)))
    for threshold in (1.0, 0.5):
        expected = LIF(tau=2.0, v_threshold=threshold)(x).data[:, 0]
        if threshold not in trains:
            raise Wrong(f"give the spike train for threshold {threshold}")
        _close(f"threshold {threshold}", np.asarray(trains[threshold], dtype=np.float64).ravel(), expected)
    return "threshold 1.0: H climbs 0.5, 0.75, 0.875, 0.9375 and never fires; threshold 0.5: fires every step"


# ----------------------------------------------------------------------------- 09 Dy-SViT

@checker
def check_09_atan_d_alpha(d_k):
    """`d_k(x, k)`: ∂p_k/∂k for p_k(x) = arctan(πkx/2)/π + 1/2."""
    x = np.linspace(-3, 3, 61)
    family = surrogate.ATan()
    for k in (1.0, 2.0, 5.0):
        got = d_k(x, k)
        _close(f"k = {k}", got, family.d_alpha(x, k))
        h = 1e-6
        _close(f"k = {k}, against finite differences", got,
               (family.primitive(x, k + h) - family.primitive(x, k - h)) / (2 * h), rtol=1e-5, atol=1e-8)
    return "∂p/∂k = x / (2(1 + (πkx/2)²)), equal to ATan().d_alpha and to finite differences"


# ----------------------------------------------------------------------------- 10 training

@checker
def check_10_cutmix(cutmix):
    """`cutmix(x, y_soft, perm, box)` -> (mixed images, mixed targets) for box = (top, bottom, left, right)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 3, 8, 8))
    y = np.eye(10)[[1, 4, 4, 9]]
    perm = np.array([2, 0, 3, 1])
    for box in ((2, 6, 1, 4), (0, 8, 0, 8), (3, 3, 0, 8)):
        top, bottom, left, right = box
        expected_x = x.copy()
        expected_x[:, :, top:bottom, left:right] = x[perm][:, :, top:bottom, left:right]
        lam = 1 - (bottom - top) * (right - left) / 64
        got_x, got_y = cutmix(x.copy(), y.copy(), perm, box)
        _close(f"box {box}: images", got_x, expected_x)
        _close(f"box {box}: targets (weight of the own label = 1 − box area / image area)", got_y,
               lam * y + (1 - lam) * y[perm])
    return "the pasted box's true area sets the label weight, also when the box is clipped at the border"


@checker
def check_10_schedule_gap(epoch):
    """`epoch`: where WarmupCosine and TimmCosine (300 epochs, 20 warm-up, 1e-3 -> 1e-5) differ the most."""
    opt = AdamW([Tensor(np.zeros(1), requires_grad=True)], lr=1e-3)
    ours = WarmupCosine(opt, warmup=20, total=300, base_lr=1e-3, min_lr=1e-5)
    timm = TimmCosine(opt, base_lr=1e-3, t_initial=300, lr_min=1e-5, warmup_t=20)
    gap = np.array([abs(ours.lr_at(e) - timm.lr_at(e)) for e in range(300)])
    if int(epoch) != int(gap.argmax()):
        raise Wrong(f"epoch {epoch}: the gap there is {gap[int(epoch)]:.2e}, the largest is {gap.max():.2e} "
                    f"at epoch {gap.argmax()}")
    return (f"epoch {gap.argmax()}: timm's cosine runs over all 300 epochs from epoch 0, ours over the 280 after "
            f"warm-up, so timm's is ahead in the middle")


# ----------------------------------------------------------------------------- 11 checkpoints

def _data_pkl(path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return next(archive.read(name) for name in archive.namelist() if name.endswith("data.pkl"))


@checker
def check_11_storage_classes(names):
    """`names`: the storage classes a float16 and a bool tensor name in a checkpoint's data.pkl."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "two.pt")
        save_checkpoint({"h": np.zeros(2, np.float16), "b": np.zeros(2, bool)}, path)
        pkl = _data_pkl(path)
    found = {arg.split()[-1] for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL" and "Storage" in arg}
    if set(names) != found:
        raise Wrong(f"data.pkl names {sorted(found)}, you gave {sorted(set(names))}")
    return f"{sorted(found)}: the storage class carries the dtype"


@checker
def check_11_global_names(global_names):
    """`global_names`: {"eval": ..., "Popen": ...}, the global_name UnsafeCheckpointError reports for each."""
    expected = {}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "hostile.pt")
        for key, module in (("eval", "builtins"), ("Popen", "subprocess")):
            call = f"c{module}\n{key}\n".encode() + b"X" + struct.pack("<I", 1) + b"1" + b"\x85R."
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("archive/data.pkl", b"\x80\x02" + call)
            try:
                load_checkpoint(path)
            except UnsafeCheckpointError as err:
                expected[key] = err.global_name
    for key, name in expected.items():
        if global_names.get(key) != name:
            raise Wrong(f"{key}: the error reports {name!r}, you gave {global_names.get(key)!r}")
    return f"{expected}: refused by name before anything runs"
