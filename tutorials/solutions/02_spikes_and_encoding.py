"""Solutions to the exercises of notebook 02 (spikes and encoding)."""
import numpy as np


# Exercise 1: latency code, one spike per pixel at t = round((1 − p)(T − 1)).
def latency_encode(p, T):
    """p in [0, 1], any shape -> spikes [T, *p.shape]; bright pixels fire first. Firing rate 1/T."""
    p = np.asarray(p)
    t_spike = np.round((1.0 - p) * (T - 1)).astype(int)
    return (np.arange(T).reshape((T,) + (1,) * p.ndim) == t_spike).astype(np.float32)


# Exercise 2: from rest, H[t] = X(1 − 2^-(t+1)) for a silent τ = 2 neuron, which grows with t,
# so the neuron fires within T steps iff X(1 − 2^-T) ≥ θ.
def min_firing_input(T, v_th):
    return v_th / (1.0 - 2.0 ** -T)


# Exercise 3: a bin is silent when the Poisson draw is 0, with probability e^-p.
def expected_count(p, T):
    return T * (1.0 - np.exp(-np.asarray(p, dtype=np.float64)))


CHECKED = {
    "check_02_latency": (latency_encode,),
    "check_02_threshold": (min_firing_input,),
    "check_02_poisson_count": (expected_count,),
}
