"""BatchNorm followed by a spike on a token matrix, as one kernel pair (NumPy reference).

In the T = 1 models the most frequent pattern is BatchNorm over the channels of tokens [M, C]
(rows: tokens, columns: channels) feeding a spiking neuron.  Run as two layers it writes the
BatchNorm output y, reads it back to fire, keeps it for the backward pass, writes the surrogate
gradient and reads that twice for the BatchNorm gradient.  This pair never stores y: it
recomputes y from x wherever it is needed (`minisnn/spiking/norm_spike.md` has the measurements).

    forward:   y = (x − centre[c])·scale[c] + shift[c];   u = guard(y) (when asked);   s = H(u − θ)
    backward:  du = g·∂p/∂x(u − θ; α), 0 where the guard replaced y, and the two per-channel sums
               the BatchNorm gradient needs: Σ du and Σ du·(x − mean[c]), in float64;
               with a slope per row (Dy-SViT's per-token slopes), also Σ_c g·∂p/∂α(u − θ; α) per row

Training mode passes centre = μ, scale = γ·invstd, shift = β; eval mode centre = 0,
scale = γ·invstd, shift = β − μ·scale: the vectors of `batch_norm_train_forward` /
`batch_norm_eval_forward`, in x's dtype, so y is the BatchNorm output.  `mean` (float64 [C]) is
the statistic the sums are centred on (the batch or running mean).  The guard is the models'
NaN guard: NaN → 0, ±inf → ±GUARD, with gradient 0 where it replaced a value.  The spike
condition `fires` and the surrogate families are those of `reference.spike`.
"""
from __future__ import annotations

import numpy as np

from ..lif_params import fires
from .surrogate import surrogate_d_alpha, surrogate_derivative

__all__ = ["bn_spike_forward", "bn_spike_backward"]

GUARD = 1e4  # the NaN guard's stand-in for ±inf


def membrane(x: np.ndarray, centre, scale, shift, nan_guard: bool):
    """(u, replaced): u = guard(y) (or y) for y = (x − centre)·scale + shift, and where the guard
    replaced a value (NaN or ±inf).  A helper, not a kernel (not in `__all__`)."""
    y = (x - centre) * scale + shift
    replaced = ~np.isfinite(y) if nan_guard else np.zeros(y.shape, dtype=bool)
    if nan_guard:
        y = np.nan_to_num(y, nan=0.0, posinf=GUARD, neginf=-GUARD)
    return y, replaced


def bn_spike_forward(x: np.ndarray, centre: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                     threshold: float, nan_guard: bool):
    """(s, n_nan, n_replaced): s = H(u − θ) as 0/1 [M, C] in x's dtype for u = guard(BN(x)) (u ≥ θ fires),
    the number of NaN in u (always 0 with the guard), which the caller refuses, and the number of values
    the guard replaced (0 without it).  x [M, C]; vectors [C]."""
    u, replaced = membrane(x, centre, scale, shift, nan_guard)
    s = fires(u, x.dtype.type(threshold)).astype(x.dtype)
    return s, int(np.count_nonzero(np.isnan(u))), int(np.count_nonzero(replaced))


def bn_spike_backward(g: np.ndarray, x: np.ndarray, centre: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                      mean: np.ndarray, threshold: float, alpha: np.ndarray, kind: int, nan_guard: bool,
                      need_alpha: bool):
    """Surrogate gradient into the BatchNorm output, the sums of the BatchNorm gradient, and the slope's.

    g = dL/ds [M, C]; x [M, C]; centre, scale, shift [C] in x's dtype; mean float64 [C]; alpha, the
    slope, in x's dtype: [1] (one for every row) or [M] (one per row).  Returns (du [M, C] in g's dtype,
    Σ du float64 [C], Σ du·(x − mean) float64 [C], dα): dα [M] = Σ_c g·∂p/∂α(u − θ; α) per row, summed in
    float64 and returned in x's dtype (at the guarded u, as `spike` on guard(y) computes it), when
    need_alpha, else an empty array.
    """
    u, replaced = membrane(x, centre, scale, shift, nan_guard)
    slope = alpha.reshape(-1, 1)
    z = u - x.dtype.type(threshold)
    du = g * surrogate_derivative(z, slope, kind)
    du[replaced] = 0
    centred = x - mean.astype(x.dtype)
    d_alpha = np.empty(0, x.dtype)
    if need_alpha:
        d_alpha = (g * surrogate_d_alpha(z, slope, kind)).sum(axis=1, dtype=np.float64).astype(x.dtype)
    with np.errstate(invalid="ignore"):              # 0·inf where x was infinite: NaN, as BatchNorm's own sums
        return du, du.sum(axis=0, dtype=np.float64), (du * centred).sum(axis=0, dtype=np.float64), d_alpha
