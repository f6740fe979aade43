"""Solutions to the exercises of notebook 09 (Dy-SViT)."""
import numpy as np


# Exercise 1: p_k(x) = arctan(πkx/2)/π + 1/2
#   =>  ∂p/∂k = (1/π)·(πx/2)/(1 + (πkx/2)²) = x / (2(1 + (πkx/2)²)).
def atan_d_k(x, k):
    return x / (2.0 * (1.0 + (0.5 * np.pi * k * x) ** 2))


CHECKED = {"check_09_atan_d_alpha": (atan_d_k,)}
