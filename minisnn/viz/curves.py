"""Training curves from a metrics history: loss, accuracy and learning rate per epoch.

A history is a list of dicts (one per logged epoch) with the keys
`epoch, train_loss, train_acc, val_loss, val_acc, lr`; any key except `epoch`
may be missing or empty in some rows (e.g. validation every few epochs).  It can
also be read from a metrics file: `.jsonl` (one JSON object per line) or `.csv`
(a header row with those column names).
"""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ._figure import finish, get_axes

PANELS = (
    ("loss", ("train_loss", "val_loss")),
    ("accuracy", ("train_acc", "val_acc")),
    ("learning rate", ("lr",)),
)


def _number(value, where: str) -> float | None:
    """A metric as float, None when absent/empty; a clear error for anything else."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: expected a number, got {value!r}") from exc
    return None if math.isnan(out) else out


def load_history(path) -> list[dict]:
    """Rows of a `.jsonl` or `.csv` metrics file as a list of dicts (strings kept as read)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"metrics file not found: {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}")
                rows.append(row)
        return rows
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            return [dict(r) for r in csv.DictReader(fh)]
    raise ValueError(f"metrics file must end in .jsonl or .csv, got {path!r}")


def _columns(history: Sequence[Mapping]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """key -> (epochs, values) over the rows where that key has a number."""
    if not history:
        raise ValueError("history is empty: nothing to plot")
    out: dict[str, tuple[list, list]] = {}
    for i, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise TypeError(f"history row {i} must be a dict, got {type(row).__name__}")
        epoch = _number(row.get("epoch"), f"history row {i} 'epoch'")
        if epoch is None:
            raise ValueError(f"history row {i} has no 'epoch' (keys: {sorted(row)})")
        for _, keys in PANELS:
            for key in keys:
                val = _number(row.get(key), f"history row {i} {key!r}")
                if val is not None:
                    out.setdefault(key, ([], []))
                    out[key][0].append(epoch)
                    out[key][1].append(val)
    return {k: (np.array(e), np.array(v)) for k, (e, v) in out.items()}


def training_curves(history, *, ax=None, path=None, title: str | None = None) -> Figure:
    """Three panels against epoch: loss (train, val), accuracy (train, val), learning rate.

    history: list of dicts or a path to a `.jsonl`/`.csv` metrics file (see module docstring).
    The accuracy panel's title reports the best val_acc and its epoch,  argmax_e val_acc[e].
    A panel with no data says so instead of staying blank.
    """
    if isinstance(history, (str, os.PathLike)):
        history = load_history(history)
    if not isinstance(history, Sequence) or isinstance(history, (str, bytes)):
        raise TypeError(f"history must be a list of dicts or a path to a metrics file, got {type(history).__name__}")
    cols = _columns(history)
    fig, axes = get_axes(ax, len(PANELS), panel_size=(4.0, 3.2))
    for axis, (label, keys) in zip(axes, PANELS):
        drawn = False
        for key, style in zip(keys, ("-o", "--s")):
            if key in cols:
                epochs, vals = cols[key]
                axis.plot(epochs, vals, style, markersize=3, label=key)
                drawn = True
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.set_title(label)
        if drawn:
            axis.legend(fontsize="small")
        else:
            axis.text(0.5, 0.5, f"no {label} data", transform=axis.transAxes, ha="center", va="center",
                      color="grey")
    if "val_acc" in cols:
        epochs, vals = cols["val_acc"]
        best = int(np.argmax(vals))
        axes[1].set_title(f"accuracy (best val {vals[best]:.4g} @ epoch {epochs[best]:g})")
    if title is not None:
        fig.suptitle(title)
    return finish(fig, path)
