"""Spike rasters and membrane-potential traces for time-major sequences.

Both functions take a sequence `[T, N]` (one sample, N neurons) or `[T, B, ...]`
(a batch: `sample` picks one item and its trailing axes are flattened row-major
into the neuron index).  `membrane_trace` also takes `[T]` for a single neuron.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ._figure import as_array, finish, get_axes


def _neurons_over_time(arr: np.ndarray, name: str, sample: int) -> np.ndarray:
    """[T, N] view of a [T], [T, N] or [T, B, ...] sequence."""
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim == 2:
        return arr
    batch = arr.shape[1]
    if not -batch <= sample < batch:
        raise ValueError(f"sample={sample} is out of range for {name} with batch size {batch} (shape {arr.shape})")
    return arr[:, sample].reshape(arr.shape[0], -1)


def _check_binary(s: np.ndarray, name: str) -> None:
    if not np.all((s == 0) | (s == 1)):
        bad = s[(s != 0) & (s != 1)].ravel()[0]
        raise ValueError(f"{name} must hold binary spikes (0 or 1), found the value {bad:g}")


def spike_raster(s_seq, *, sample: int = 0, max_neurons: int = 256, ax=None, path=None,
                 title: str | None = None) -> Figure:
    """Raster of spikes: time step on x, neuron on y, a dark cell where a neuron fired.

    s_seq: binary spikes [T, N] or [T, B, ...] (array or Tensor).
    max_neurons: draw at most the first `max_neurons` neurons (the title says so).
    The title reports the firing rate  r = Σ_{t,n} s[t, n] / (T·N)  of the drawn sample.
    """
    arr = as_array(s_seq, "s_seq")
    if arr.ndim < 2:
        raise ValueError(f"s_seq must be [T, N] or [T, B, ...], got shape {arr.shape}")
    if max_neurons < 1:
        raise ValueError(f"max_neurons must be >= 1, got {max_neurons}")
    s = _neurons_over_time(arr, "s_seq", sample)
    _check_binary(s, "s_seq")
    T, N = s.shape
    shown = s[:, :max_neurons]
    fig, (axis,) = get_axes(ax, 1, panel_size=(max(3.5, min(8.0, 1.0 + 0.15 * T)), 4.0))
    axis.imshow(shown.T, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0.0, vmax=1.0,
                origin="lower", extent=(-0.5, T - 0.5, -0.5, shown.shape[1] - 0.5))
    axis.set_xlabel("time step t")
    axis.set_ylabel("neuron")
    if T <= 16:
        axis.set_xticks(range(T))
    rate = float(s.mean())
    head = title if title is not None else "spike raster"
    extra = f", first {max_neurons} of {N} neurons" if N > max_neurons else f", {N} neurons"
    axis.set_title(f"{head}\nfiring rate {100 * rate:.1f}%{extra}")
    return finish(fig, path)


def membrane_trace(v_seq, s_seq=None, v_threshold: float = 1.0, *, v_reset: float | None = None,
                   sample: int = 0, neurons=None, max_lines: int = 5, ax=None, path=None,
                   title: str | None = None) -> Figure:
    """Membrane potential of a few neurons over time, with the threshold and the spikes.

    v_seq: potentials [T], [T, N] or [T, B, ...].  Pass the charge before reset
        (h_seq) to see the crossings of θ; the stored v_seq is already reset.
    s_seq: optional binary spikes of the same shape; each spike is marked by a
        star on its neuron's trace at the step where it fired.
    v_threshold: θ, drawn as a dashed line (spike when h ≥ θ).  v_reset: drawn dotted if given.
    neurons: indices into the flattened neuron axis (default: the first `max_lines`).
    """
    v_arr = as_array(v_seq, "v_seq")
    v = _neurons_over_time(v_arr, "v_seq", sample)
    s = None
    if s_seq is not None:
        s_arr = as_array(s_seq, "s_seq")
        if s_arr.shape != v_arr.shape:
            raise ValueError(f"s_seq shape {s_arr.shape} must equal v_seq shape {v_arr.shape}")
        s = _neurons_over_time(s_arr, "s_seq", sample)
        _check_binary(s, "s_seq")
    T, N = v.shape
    if neurons is None:
        idx = np.arange(min(N, max_lines))
    else:
        idx = np.atleast_1d(np.asarray(neurons))
        if idx.dtype.kind not in "iu" or idx.ndim != 1 or idx.size == 0:
            raise TypeError(f"neurons must be a non-empty sequence of integer indices, got {neurons!r}")
        if idx.min() < -N or idx.max() >= N:
            raise ValueError(f"neurons {idx.tolist()} out of range for {N} neurons")
    fig, (axis,) = get_axes(ax, 1, panel_size=(6.0, 3.5))
    t = np.arange(T)
    for n in idx:
        (line,) = axis.plot(t, v[:, n], marker="o", markersize=3, linewidth=1.2, label=f"neuron {int(n)}")
        if s is not None:
            fired = np.flatnonzero(s[:, n])
            axis.plot(fired, v[fired, n], linestyle="none", marker="*", markersize=13,
                      markeredgecolor="black", markeredgewidth=0.6, color=line.get_color())
    axis.axhline(float(v_threshold), color="crimson", linestyle="--", linewidth=1.0, label=f"threshold θ={v_threshold:g}")
    if v_reset is not None:
        axis.axhline(float(v_reset), color="grey", linestyle=":", linewidth=1.0, label=f"reset {v_reset:g}")
    axis.set_xlabel("time step t")
    axis.set_ylabel("membrane potential")
    if T <= 16:
        axis.set_xticks(range(T))
    head = title if title is not None else "membrane potential"
    if s is not None:
        head += f"  (★ = spike, {int(s[:, idx].sum())} shown)"
    axis.set_title(head)
    axis.legend(fontsize="small", loc="best")
    return finish(fig, path)
