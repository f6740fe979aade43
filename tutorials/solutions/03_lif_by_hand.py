"""Solutions to the exercises of notebook 03 (the LIF neuron by hand)."""
import numpy as np


# Exercise 1: decay_input=False, H = V − (V − v_reset)/τ + X, hard reset.
# From rest H[0] = v_reset + X[0], so with v_reset = 0 the first step fires iff X[0] ≥ v_th.
def lif_no_decay(x_seq, tau, v_th, v_reset):
    v = np.full(x_seq.shape[1:], v_reset, dtype=x_seq.dtype)
    s_seq = np.empty_like(x_seq)
    for t in range(len(x_seq)):
        h = v - (v - v_reset) / tau + x_seq[t]
        s = (h >= v_th).astype(x_seq.dtype)
        v = h * (1 - s) + v_reset * s
        s_seq[t] = s
    return s_seq


# Exercise 2: there is no simple formula for LIF: simulate, skip the transient, count.
# (For IF, H = V + X, the soft reset conserves charge and the rate is exactly min(1, X/v_th).)
def soft_reset_rate(x, tau=2.0, v_th=1.0, steps=4000):
    v, count = 0.0, 0
    for t in range(steps):
        h = v + (x - v) / tau
        fired = h >= v_th
        v = h - v_th * fired
        if t >= steps // 2:
            count += fired
    return count / (steps - steps // 2)


# Exercise 3: adaptive threshold θ[t] = v_th + a[t−1]; a[t] = a[t−1](1 − 1/τ_a) + β S[t].
def lif_adaptive(x_seq, beta, tau_a, tau=2.0, v_th=1.0):
    v = np.zeros(x_seq.shape[1:])
    a = np.zeros(x_seq.shape[1:])
    s_seq, theta_seq = np.empty_like(x_seq), np.empty_like(x_seq)
    for t in range(len(x_seq)):
        theta = v_th + a
        h = v + (x_seq[t] - v) / tau
        s = (h >= theta).astype(x_seq.dtype)
        v = h * (1 - s)
        a = a * (1 - 1 / tau_a) + beta * s
        s_seq[t], theta_seq[t] = s, theta
    return s_seq, theta_seq


CHECKED = {
    "check_03_no_decay_input": (lif_no_decay,),
    "check_03_soft_rate": (soft_reset_rate,),
    "check_03_adaptive": (lif_adaptive,),
}
