"""An output folder of `minisnn train`: does it hold a run, and clearing one for `--overwrite`.

A run's files are `last.npz`, `best.npz`, `metrics.jsonl` (RUN_FILES) and `curves.png`.  A
folder that holds none of the first three (empty, or with other files) is free to use; one
that does holds a run, which a new run must not silently replace.
"""
from __future__ import annotations

import os
from pathlib import Path

RUN_FILES = ("last.npz", "best.npz", "metrics.jsonl")
PLOT_FILE = "curves.png"


def run_files(folder: str | os.PathLike) -> list[str]:
    """The names of RUN_FILES present in `folder` (empty: no run there)."""
    folder = Path(folder)
    return [name for name in RUN_FILES if (folder / name).exists()]


def clear_run(folder: str | os.PathLike) -> None:
    """Delete the files of the run in `folder` (RUN_FILES and the plot); other files stay."""
    for name in (*RUN_FILES, PLOT_FILE):
        (Path(folder) / name).unlink(missing_ok=True)
