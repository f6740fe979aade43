"""Figures for spiking networks (matplotlib, no display needed).

    from minisnn import viz
    fig = viz.spike_raster(s_seq, path="raster.png")

Every function returns a `matplotlib.figure.Figure`, draws into `ax=` when given
(an Axes, or a sequence of Axes for multi-panel plots) and saves a PNG when
`path=` is given.  New figures live on an Agg canvas: nothing is shown by the
library; in Jupyter a Figure left as the last expression of a cell is drawn inline.

- spikes:     spike_raster, membrane_trace
- surrogates: surrogate_curves
- rates:      firing_rate_bars, energy_bars
- attention:  attention_map
- slopes:     slope_heatmap, slope_histograms, upsample_grid
- curves:     training_curves, load_history
"""
from .attention import attention_map
from .curves import load_history, training_curves
from .rates import energy_bars, firing_rate_bars
from .slopes import slope_heatmap, slope_histograms, upsample_grid
from .spikes import membrane_trace, spike_raster
from .surrogates import surrogate_curves

__all__ = [
    "spike_raster", "membrane_trace", "surrogate_curves", "firing_rate_bars", "energy_bars",
    "attention_map", "slope_heatmap", "slope_histograms", "upsample_grid", "training_curves",
    "load_history",
]
