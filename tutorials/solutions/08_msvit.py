"""Solutions to the exercises of notebook 08 (MSViT)."""

# Exercise 1: constant input 1, τ = 2, from rest: H[t] = 1 − 2^-(t+1) = 0.5, 0.75, 0.875, 0.9375 while silent.
# Threshold 1.0: H never reaches 1, no spike in 4 steps. Threshold 0.5: H[0] = 0.5 fires, the reset returns
# the membrane to 0 and the same happens at every step.
ATTENTION_TRAINS = {1.0: [0, 0, 0, 0], 0.5: [1, 1, 1, 1]}

CHECKED = {"check_08_attention_trains": (ATTENTION_TRAINS,)}
