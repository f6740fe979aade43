"""Shared plumbing for the figure functions: axes creation, saving, input checks.

Figures are built with matplotlib's object-oriented API on an Agg canvas
(`matplotlib.figure.Figure` + `FigureCanvasAgg`), so no display, GUI backend or
`pyplot` state is involved and nothing is ever shown by library code.  In
Jupyter, a returned Figure left as the last expression of a cell is drawn inline.
"""
from __future__ import annotations

import io
import math
import os
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..autograd.tensor import Tensor


def as_array(x, name: str, *, ndims: Sequence[int] | None = None) -> np.ndarray:
    """`x` (np.ndarray, minisnn/torch Tensor, list) as a finite float64 array.

    ndims: allowed numbers of dimensions; a ValueError names what was expected.
    """
    if isinstance(x, Tensor):
        x = x.data
    elif hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from exc
    if ndims is not None and arr.ndim not in ndims:
        allowed = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {allowed}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


class NotebookFigure(Figure):
    """A Figure that Jupyter draws inline as PNG even when no pyplot backend was activated."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def new_figure(figsize: tuple[float, float]) -> Figure:
    """An empty Figure bound to an Agg canvas (never shown, can always be saved)."""
    fig = NotebookFigure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def get_axes(ax, n: int, *, ncols: int | None = None, panel_size=(4.0, 3.2)) -> tuple[Figure, list[Axes]]:
    """The Figure and `n` Axes to draw into.

    ax: None (a new figure with an `n`-panel grid of `ncols` columns is made),
        one Axes (allowed when n == 1), or a sequence of exactly n Axes.
    """
    if ax is None:
        ncols = n if ncols is None else max(1, min(ncols, n))
        nrows = math.ceil(n / ncols)
        fig = new_figure((panel_size[0] * ncols, panel_size[1] * nrows))
        grid = fig.subplots(nrows, ncols, squeeze=False)
        axes = list(grid.ravel())
        for extra in axes[n:]:
            extra.remove()
        return fig, axes[:n]
    if isinstance(ax, Axes):
        if n != 1:
            raise ValueError(f"this plot needs {n} axes; pass ax=None or a sequence of {n} Axes, got one Axes")
        return ax.figure, [ax]
    axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else None
    if axes is None or not all(isinstance(a, Axes) for a in axes):
        raise TypeError(f"ax must be None, a matplotlib Axes or a sequence of Axes, got {type(ax).__name__}")
    if len(axes) != n:
        raise ValueError(f"this plot needs {n} axes, got a sequence of {len(axes)}")
    return axes[0].figure, axes


def finish(fig: Figure, path) -> Figure:
    """Save `fig` as an image at `path` (format from the suffix, PNG usual) when a path is given."""
    if path is not None:
        path = os.fspath(path)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig
