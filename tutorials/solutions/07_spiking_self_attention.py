"""Solutions to the exercises of notebook 07 (spiking self-attention)."""
import numpy as np

# Exercise 1: every entry of QKᵀ counts matching ones, at most d = 32; (QKᵀ)V adds N = 64 of them.
LARGEST_ENTRY = 64 * 32          # 2048 = 2^11: every partial sum is an integer <= 2^11, exact even in float16


# Exercise 2: multiply-adds of the two product orders for cross-attention.
def costs(nq, nk, d, dv):
    qk_first = nq * nk * d + nq * nk * dv        # A = QKᵀ [Nq, Nk], then A V
    kv_first = nk * d * dv + nq * d * dv         # M = KᵀV [d, dv], then Q M
    return qk_first, kv_first


# Exercise 3: the backward from M = KᵀV. z = s·Q M  =>  dQ = s·G Mᵀ, dM = s·Qᵀ G, dK = V dMᵀ, dV = K dM.
def ssa_backward_kv(q, k, v, g, scale):
    t = lambda a: np.swapaxes(a, -1, -2)
    m = t(k) @ v
    dm = scale * (t(q) @ g)
    return scale * (g @ t(m)), v @ t(dm), k @ dm


CHECKED = {
    "check_07_max_entry": (LARGEST_ENTRY,),
    "check_07_costs": (costs,),
    "check_07_ssa_backward": (ssa_backward_kv,),
}
