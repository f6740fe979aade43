"""Solutions to the exercises of notebook 04 (surrogate gradients)."""
import numpy as np


# Exercise 1: Φ(x; α) = 1/α + x/(1 + α|x|)  =>  ∂Φ/∂α = −1/α² − x|x|/(1 + α|x|)².
def fast_sigmoid_d_alpha(x, alpha):
    return -1.0 / alpha ** 2 - x * np.abs(x) / (1.0 + alpha * np.abs(x)) ** 2


# Exercise 2: Φ_α(x) = P(αx), so ∫|Φ_α − Θ| dx = (1/α)∫|P(u) − Θ(u)| du = c/α, with c at α = 1:
#   sigmoid:  2∫_0^∞ (1 − σ(u)) du = 2 ln 2;
#   triangle: 2∫_0^1 (1 − u)²/2 du = 1/3;
#   box:      2∫_0^½ (½ − u) du = 1/4.
MISMATCH_CONSTANTS = {"sigmoid": 2 * np.log(2), "piecewise_linear": 1 / 3, "rectangular": 1 / 4}


# Exercise 3: one slope per channel; the sum runs over every axis the slope is shared along.
def channel_slope_grad(u, k, G, theta):
    x = u - theta
    sig = 0.5 * (1.0 + np.tanh(0.5 * k * x))                  # P(kx) for the sigmoid family
    return (G * x * sig * (1.0 - sig)).sum(axis=(0, 1), keepdims=True)   # x P'(kx), summed over B and N


CHECKED = {
    "check_04_fast_sigmoid_d_alpha": (fast_sigmoid_d_alpha,),
    "check_04_mismatch": (MISMATCH_CONSTANTS,),
    "check_04_channel_slope_grad": (channel_slope_grad,),
}
