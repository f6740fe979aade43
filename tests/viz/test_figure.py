"""Shared figure plumbing: Agg canvas, no pyplot state, ax= handling, saving."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from minisnn import viz
from minisnn.viz._figure import get_axes, new_figure

from .helpers import check_png


def test_figures_use_agg_and_leave_pyplot_alone(tmp_path):
    before = plt.get_fignums()
    fig = viz.firing_rate_bars({"a": 0.1})
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert plt.get_fignums() == before  # nothing registered with pyplot, nothing to show or leak


def test_path_creates_missing_folders(tmp_path):
    path = tmp_path / "figures" / "nested" / "rates.png"
    viz.firing_rate_bars({"a": 0.1, "b": 0.2}, path=path)
    check_png(path)


def test_grid_has_exactly_n_axes():
    fig, axes = get_axes(None, 5, ncols=2)
    assert len(axes) == 5 and len(fig.axes) == 5


@pytest.mark.parametrize(
    "ax, err, match",
    [
        ("left", TypeError, "matplotlib Axes"),
        ([1, 2], TypeError, "matplotlib Axes"),
    ],
)
def test_bad_ax_is_rejected(ax, err, match):
    with pytest.raises(err, match=match):
        viz.spike_raster(np.zeros((3, 4)), ax=ax)


def test_wrong_number_of_axes_is_rejected():
    axes = new_figure((6, 3)).subplots(1, 3)
    with pytest.raises(ValueError, match="needs 2 axes, got a sequence of 3"):
        viz.energy_bars({"a": 1.0}, ax=axes)
