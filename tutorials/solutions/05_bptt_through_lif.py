"""Solutions to the exercises of notebook 05 (BPTT through LIF)."""
import numpy as np


def _sigmoid_surrogate(x, alpha):
    sig = 0.5 * (1.0 + np.tanh(0.5 * alpha * x))
    return alpha * sig * (1.0 - sig)


# Exercise 1: dL/dτ. τ is shared by every neuron and step: dL/dτ = Σ_t Σ_n g_H[t]·∂H[t]/∂τ, with the
# direct derivative ∂H[t]/∂τ = −(X[t] − (V[t−1] − v_r))/τ² (the path through V[t−1] is already in g_H).
def tau_grad(g_seq, x_seq, tau, v_th=1.0, v_r=0.0, alpha=4.0):
    v = np.full(x_seq.shape[1:], v_r)
    h_seq, s_seq, dh_dtau = (np.empty_like(x_seq) for _ in range(3))
    for t in range(len(x_seq)):
        h = v + (x_seq[t] - (v - v_r)) / tau
        dh_dtau[t] = -(x_seq[t] - (v - v_r)) / tau ** 2
        s = (h >= v_th).astype(x_seq.dtype)
        v = h * (1 - s) + v_r * s
        h_seq[t], s_seq[t] = h, s
    total, g_h_next = 0.0, np.zeros(x_seq.shape[1:])
    for t in reversed(range(len(x_seq))):
        g_h = g_seq[t] * _sigmoid_surrogate(h_seq[t] - v_th, alpha) + g_h_next * (1 - 1 / tau) * (1 - s_seq[t])
        total += float(np.sum(g_h * dh_dtau[t]))
        g_h_next = g_h
    return total


# Exercise 2: soft reset V = H − θS. With S held fixed ∂V/∂H = 1, so the memory path keeps (1 − 1/τ)
# after a spike: spikes no longer cut the gradient. The reset path adds −θ·g_V·σ' when not detached.
def soft_backward(g_seq, x_seq, tau, v_th, alpha, detach_reset=True):
    v = np.zeros(x_seq.shape[1:])
    h_seq = np.empty_like(x_seq)
    for t in range(len(x_seq)):
        h = v + (x_seq[t] - v) / tau
        v = h - v_th * (h >= v_th)
        h_seq[t] = h
    gx_seq, g_h_next = np.empty_like(g_seq), np.zeros(g_seq.shape[1:])
    for t in reversed(range(len(g_seq))):
        g_v = g_h_next * (1 - 1 / tau)
        g_s = g_seq[t] if detach_reset else g_seq[t] - v_th * g_v
        g_h = g_s * _sigmoid_surrogate(h_seq[t] - v_th, alpha) + g_v
        gx_seq[t] = g_h / tau
        g_h_next = g_h
    return gx_seq


CHECKED = {
    "check_05_tau_grad": (tau_grad,),
    "check_05_soft_backward": (soft_backward,),
}
