"""Per-layer bar charts: firing rates, synaptic operations and the energy estimate.

Energy follows the usual 45 nm estimate for spiking networks:
    E = E_AC · SOPs + E_MAC · MACs,   E_AC = 0.9 pJ, E_MAC = 4.6 pJ,
where a synaptic operation (SOP) is one accumulate triggered by one spike
(SOPs = firing rate × T × fan-out MACs of the layer it drives), and MACs are
the multiply-accumulates of layers that see real-valued input (e.g. the first conv).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from ._figure import finish, get_axes


def _named_values(values, name: str, *, upper: float | None = None) -> dict[str, float]:
    if not isinstance(values, Mapping) or not values:
        raise TypeError(f"{name} must be a non-empty dict layer name -> number, got {type(values).__name__}")
    out = {}
    for key, val in values.items():
        try:
            v = float(np.asarray(getattr(val, "data", val)))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}[{key!r}] must be a number, got {type(val).__name__}") from exc
        if not np.isfinite(v) or v < 0 or (upper is not None and v > upper):
            limit = f"[0, {upper:g}]" if upper is not None else "a finite number >= 0"
            raise ValueError(f"{name}[{key!r}] = {v!r} is outside {limit}")
        out[str(key)] = v
    return out


def _label_bars(axis, bars, texts) -> None:
    for bar, text in zip(bars, texts):
        axis.text(bar.get_x() + bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + text,
                  va="center", ha="left", fontsize="small")


def firing_rate_bars(rates: Mapping[str, float], *, ax=None, path=None, title: str | None = None) -> Figure:
    """Horizontal bars of the firing rate of each layer, top to bottom in dict order.

    rates: layer name -> rate in [0, 1], the mean of its spikes over time, batch and neurons.
    A dashed line marks the unweighted mean over layers.
    """
    r = _named_values(rates, "rates", upper=1.0)
    names, vals = list(r), np.array(list(r.values()))
    fig, (axis,) = get_axes(ax, 1, panel_size=(6.0, 1.0 + 0.32 * len(names)))
    bars = axis.barh(np.arange(len(names)), vals, color="tab:blue")
    _label_bars(axis, bars, [f"{100 * v:.1f}%" for v in vals])
    mean = float(vals.mean())
    axis.axvline(mean, color="crimson", linestyle="--", linewidth=1.0, label=f"mean {100 * mean:.1f}%")
    axis.set_yticks(np.arange(len(names)), names)
    axis.invert_yaxis()
    axis.set_xlim(0.0, min(1.0, 1.25 * float(vals.max())) or 1.0)
    axis.set_xlabel("firing rate (spikes per neuron per time step)")
    axis.set_ylabel("layer")
    axis.set_title(title if title is not None else "firing rate per layer")
    axis.legend(fontsize="small", loc="lower right")
    return finish(fig, path)


def energy_bars(sops: Mapping[str, float], macs: Mapping[str, float] | None = None, *,
                e_ac_pj: float = 0.9, e_mac_pj: float = 4.6, ax=None, path=None,
                title: str | None = None) -> Figure:
    """Two panels per layer: operation counts (SOPs, MACs) and the energy estimate in µJ.

    sops: layer name -> synaptic operations per image; macs: layer name -> MACs per image
    (layers missing from one dict count 0 there).  Energy of a layer:
    E = (e_ac_pj · SOPs + e_mac_pj · MACs) · 1e-6 µJ, drawn stacked (AC part, MAC part).
    """
    s = _named_values(sops, "sops")
    m = _named_values(macs, "macs") if macs is not None else {}
    for name, val in (("e_ac_pj", e_ac_pj), ("e_mac_pj", e_mac_pj)):
        if not np.isfinite(val) or val < 0:
            raise ValueError(f"{name} must be a finite energy >= 0 in picojoules, got {val!r}")
    names = list(s) + [k for k in m if k not in s]
    sop = np.array([s.get(k, 0.0) for k in names])
    mac = np.array([m.get(k, 0.0) for k in names])
    e_ac, e_mac = sop * e_ac_pj * 1e-6, mac * e_mac_pj * 1e-6  # pJ -> µJ
    fig, (ax_ops, ax_e) = get_axes(ax, 2, panel_size=(5.0, 1.2 + 0.32 * len(names)))
    y = np.arange(len(names))
    height = 0.4 if m else 0.8
    ax_ops.barh(y - (height / 2 if m else 0.0), sop / 1e6, height=height, color="tab:blue", label="SOPs")
    if m:
        ax_ops.barh(y + height / 2, mac / 1e6, height=height, color="tab:orange", label="MACs")
    ax_ops.set_xlabel("operations per image (millions)")
    ax_ops.set_title("operations per layer")
    ax_e.barh(y, e_ac, color="tab:blue", label=f"AC ({e_ac_pj:g} pJ/SOP)")
    bars = ax_e.barh(y, e_mac, left=e_ac, color="tab:orange", label=f"MAC ({e_mac_pj:g} pJ/MAC)")
    _label_bars(ax_e, bars, [f"{v:.3g}" for v in e_ac + e_mac])
    total = float((e_ac + e_mac).sum())
    ax_e.set_xlim(0.0, 1.18 * float((e_ac + e_mac).max()) or 1.0)  # room for the value labels
    ax_e.set_xlabel("energy per image (µJ)")
    ax_e.set_title(f"energy estimate: total {total:.4g} µJ")
    for axis in (ax_ops, ax_e):
        axis.set_yticks(y, names)
        axis.invert_yaxis()
        axis.set_ylabel("layer")
        axis.legend(fontsize="small", loc="lower right")
    if title is not None:
        fig.suptitle(title)
    return finish(fig, path)
