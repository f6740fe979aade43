"""Precision maps: the per-token surrogate slope k drawn over the input image.

In Dy-SViT every spiking neuron gets a slope k ∈ [1, 5] per token (patch).  The
64 tokens of a 32×32 CIFAR image form an 8×8 grid in row-major order (token
n = 8·row + col); the grid is upsampled to the image size and laid over it.
Yellow (high k, viridis) = sharp, narrow surrogate = "high precision".

The colour range is fixed ([1, 5] by default) so maps from different images and
layers can be compared; the actual k range is printed in each panel's title,
because a nearly flat map would otherwise look structured.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..autograd.tensor import Tensor
from ._figure import as_array, finish, get_axes

UPSAMPLE_MODES = ("nearest", "bilinear")


def upsample_grid(grid: np.ndarray, size: tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """Resize a [g_h, g_w] map to `size` = (H, W).

    nearest: out[i, j] = grid[⌊i·g_h/H⌋, ⌊j·g_w/W⌋] (whole patches, np.kron when H is a multiple of g_h).
    bilinear: linear interpolation between patch centres (half-pixel aligned,
        clamped at the border), so values stay within [min(grid), max(grid)].
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {mode!r}")
    grid = np.asarray(grid, dtype=np.float64)
    (gh, gw), (H, W) = grid.shape, size
    if mode == "nearest":
        rows = np.arange(H) * gh // H
        cols = np.arange(W) * gw // W
        return grid[np.ix_(rows, cols)]
    src_r = (np.arange(H) + 0.5) * gh / H - 0.5  # output pixel centre in grid coordinates
    src_c = (np.arange(W) + 0.5) * gw / W - 0.5
    along_rows = np.stack([np.interp(src_r, np.arange(gh), grid[:, j]) for j in range(gw)], axis=1)
    return np.stack([np.interp(src_c, np.arange(gw), along_rows[i]) for i in range(H)], axis=0)


def _display_image(image: np.ndarray, mean, std) -> np.ndarray:
    """[3, H, W] uint8 or normalised float -> [H, W, 3] float in [0, 1] for imshow."""
    if image.dtype == np.uint8:
        if mean is not None or std is not None:
            raise ValueError("mean/std undo a normalisation; a uint8 image is not normalised, drop them")
        return np.moveaxis(image.astype(np.float64) / 255.0, 0, -1)
    img = as_array(image, "image")
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std (per channel) to undo the normalisation, or neither")
    if mean is not None:
        m = as_array(mean, "mean", ndims=(0, 1)).reshape(-1, 1, 1)
        s = as_array(std, "std", ndims=(0, 1)).reshape(-1, 1, 1)
        if m.shape[0] not in (1, 3) or s.shape[0] not in (1, 3):
            raise ValueError(f"mean and std need 1 or 3 values, got {m.shape[0]} and {s.shape[0]}")
        img = img * s + m
        if img.min() < -0.5 or img.max() > 1.5:
            raise ValueError("the de-normalised image is far outside [0, 1]: give mean/std on the 0-1 scale "
                             "(e.g. CIFAR-10 mean 0.4914, 0.4822, 0.4465)")
    elif img.min() < -1e-6 or img.max() > 1 + 1e-6:
        raise ValueError("a float image must be in [0, 1], or normalised with its mean and std passed "
                         f"(values span [{img.min():.3g}, {img.max():.3g}])")
    return np.moveaxis(np.clip(img, 0.0, 1.0), 0, -1)


def _as_grid(k: np.ndarray, name: str) -> np.ndarray:
    if k.ndim == 2:
        return k
    side = math.isqrt(k.shape[0])
    if k.ndim == 1 and side * side == k.shape[0]:
        return k.reshape(side, side)
    raise ValueError(f"{name} must be a [g, g] grid or [g²] tokens in row-major order, got shape {k.shape}")


def slope_heatmap(image, k_map, *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  vmin: float = 1.0, vmax: float = 5.0, upsample: str = "nearest", alpha: float = 0.5,
                  cmap: str = "viridis", colorbar: bool = True, ncols: int = 4, ax=None, path=None,
                  title: str | None = None) -> Figure:
    """The image with its slope map overlaid, colours fixed to [vmin, vmax].

    image: uint8 [3, H, W] (0..255), or float [3, H, W] in [0, 1], or float normalised
        with `mean`/`std` given (shown as x·std + mean); a batch [B, 3, H, W] gives B panels.
    k_map: [g, g] or [g²] (token n = g·row + col); with a batch, [B, g, g] or [B, g²].
    upsample: "nearest" (honest patch blocks) or "bilinear"; alpha: overlay opacity.
    Each panel title gives the map's range  k ∈ [min k, max k].
    """
    raw = image.data if isinstance(image, Tensor) else np.asarray(image)
    if raw.ndim not in (3, 4) or raw.shape[-3] != 3:
        raise ValueError(f"image must be [3, H, W] or [B, 3, H, W] (channels first), got shape {raw.shape}")
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
    if not (np.isfinite(vmin) and np.isfinite(vmax) and vmin < vmax):
        raise ValueError(f"need finite vmin < vmax, got vmin={vmin}, vmax={vmax}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    k = as_array(k_map, "k_map")
    images = raw if raw.ndim == 4 else raw[None]
    ks = k if raw.ndim == 4 else k[None]
    if ks.shape[0] != images.shape[0] or ks.ndim not in (2, 3):
        raise ValueError(f"k_map shape {k.shape} does not match image shape {raw.shape}: expected "
                         + ("[B, g, g] or [B, g²]" if raw.ndim == 4 else "[g, g] or [g²]"))
    fig, axes = get_axes(ax, images.shape[0], ncols=ncols, panel_size=(3.0, 3.2))
    overlay = None
    for b, axis in enumerate(axes):
        rgb = _display_image(images[b], mean, std)
        grid = _as_grid(ks[b], "k_map")
        k_up = upsample_grid(grid, rgb.shape[:2], upsample)
        axis.imshow(rgb, interpolation="nearest")
        overlay = axis.imshow(k_up, cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        lo, hi = float(grid.min()), float(grid.max())
        note = " (clipped)" if lo < vmin or hi > vmax else ""
        batched = images.shape[0] > 1
        head = f"{title}\n" if title is not None and not batched else ""
        label = f"[{b}] " if batched else ""
        axis.set_title(f"{head}{label}k ∈ [{lo:.2f}, {hi:.2f}]{note}", fontsize="medium")
    if title is not None and images.shape[0] > 1:
        fig.suptitle(title)
    if colorbar:  # an opaque bar with the overlay's cmap and fixed range
        scale = ScalarMappable(norm=Normalize(vmin=vmin, vmax=vmax), cmap=overlay.get_cmap())
        fig.colorbar(scale, ax=axes, shrink=0.8, label="surrogate slope k")
    return finish(fig, path)


def slope_histograms(k_by_layer: Mapping, *, baseline: Mapping | None = None,
                     labels: tuple[str, str] = ("trained", "init"), bins: int = 40,
                     k_range: tuple[float, float] = (1.0, 5.0), ncols: int = 4, ax=None, path=None,
                     title: str | None = None) -> Figure:
    """One histogram of k per layer (all tokens, images and neurons pooled).

    k_by_layer: layer name -> array of slopes (any shape).  baseline: optional dict with
    the same kind of arrays (e.g. at initialisation), drawn as an outline for comparison.
    Bars give the fraction of values per bin over `k_range`; titles give the mean k and
    how many values fall outside the range.
    """
    if not isinstance(k_by_layer, Mapping) or not k_by_layer:
        raise TypeError(f"k_by_layer must be a non-empty dict layer name -> array, got {type(k_by_layer).__name__}")
    if baseline is not None and not isinstance(baseline, Mapping):
        raise TypeError(f"baseline must be a dict layer name -> array, got {type(baseline).__name__}")
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    lo, hi = float(k_range[0]), float(k_range[1])
    if not lo < hi:
        raise ValueError(f"k_range must be (low, high) with low < high, got {k_range}")
    names = list(k_by_layer)
    fig, axes = get_axes(ax, len(names), ncols=ncols, panel_size=(3.4, 2.8))
    edges = np.linspace(lo, hi, bins + 1)
    for name, axis in zip(names, axes):
        vals = as_array(k_by_layer[name], f"k_by_layer[{name!r}]").ravel()
        axis.hist(vals, bins=edges, weights=np.full(vals.size, 1.0 / vals.size), color="tab:green",
                  alpha=0.8, label=labels[0])
        if baseline is not None and name in baseline:
            base = as_array(baseline[name], f"baseline[{name!r}]").ravel()
            axis.hist(base, bins=edges, weights=np.full(base.size, 1.0 / base.size), histtype="step",
                      color="black", linewidth=1.2, label=labels[1])
            axis.legend(fontsize="small")
        outside = int(np.sum((vals < lo) | (vals > hi)))
        extra = f", {outside} outside" if outside else ""
        axis.set_title(f"{name}: mean k {vals.mean():.2f}{extra}", fontsize="medium")
        axis.set_xlabel("slope k")
        axis.set_ylabel("fraction of values")
        axis.set_xlim(lo, hi)
    if title is not None:
        fig.suptitle(title)
    return finish(fig, path)
