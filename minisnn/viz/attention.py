"""Heatmaps of attention: token-to-token maps and per-head token masks.

- Spikformer/MSViT spiking self-attention has, per head, a map A = q kᵀ of shape
  [N, N] (row: query token, column: key token) counting coincident spikes.
- QKFormer's token attention keeps, per head, a binary mask over the N = H·W
  tokens; drawn on the patch grid it shows which image regions pass through.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from ._figure import as_array, finish, get_axes

KINDS = ("attention", "token_mask")


def _as_panels(arr: np.ndarray, kind: str) -> np.ndarray:
    """[panels, rows, cols] from the accepted layouts of each kind."""
    if kind == "attention":
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
            raise ValueError(
                f"attention map must be [N, N] or [heads, N, N] (select one sample first), got shape {arr.shape}; "
                "for a token mask on the patch grid pass kind='token_mask'"
            )
        return arr
    if arr.ndim == 2 and arr.shape[0] != arr.shape[1]:  # [heads, N] with N = side²
        side = math.isqrt(arr.shape[1])
        if side * side != arr.shape[1]:
            raise ValueError(
                f"token mask [heads, N] needs N to be a square number of patches, got N = {arr.shape[1]}; "
                "pass [heads, H, W] instead"
            )
        return arr.reshape(arr.shape[0], side, side)
    if arr.ndim == 2:  # a square [H, W] grid: one head
        return arr[None]
    if arr.ndim == 3:
        return arr
    raise ValueError(
        f"token mask must be [H, W], [heads, N] or [heads, H, W] (select one sample first), got shape {arr.shape}"
    )


def attention_map(A, *, kind: str = "attention", cmap: str = "magma", vmin: float | None = None,
                  vmax: float | None = None, ncols: int = 4, ax=None, path=None,
                  title: str | None = None) -> Figure:
    """One heatmap per head, all on a shared colour range with one colour bar.

    A: kind="attention": [N, N] or [heads, N, N], rows = query tokens, columns = key tokens.
       kind="token_mask": [heads, H, W], [heads, N] (N = side², row-major patches; a 2-D input
       is read this way when it is not square) or one square [H, W] grid.
    vmin, vmax: colour range (default: min and max of A over all heads).
    Token-mask panels report the kept fraction  mean_{h,w} A[head, h, w].
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    panels = _as_panels(as_array(A, "A"), kind)
    lo = float(panels.min()) if vmin is None else float(vmin)
    hi = float(panels.max()) if vmax is None else float(vmax)
    if hi <= lo:
        hi = lo + 1.0  # a constant map still gets a valid colour range
    heads = panels.shape[0]
    fig, axes = get_axes(ax, heads, ncols=ncols, panel_size=(3.2, 3.0))
    image = None
    for h, axis in enumerate(axes):
        image = axis.imshow(panels[h], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        head = f"head {h}" if heads > 1 else ("attention" if kind == "attention" else "token mask")
        if kind == "attention":
            axis.set_xlabel("key token")
            axis.set_ylabel("query token")
            axis.set_title(head)
        else:
            axis.set_xlabel("patch column")
            axis.set_ylabel("patch row")
            axis.set_title(f"{head}: mean {panels[h].mean():.2f}")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention score" if kind == "attention" else "mask value")
    if title is not None:
        fig.suptitle(title)
    return finish(fig, path)
