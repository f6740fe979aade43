"""Slim, weights-only copies of training checkpoints, and the pretrained models shipped in the package.

A training checkpoint (`last.npz`, `best.npz`) also holds the optimiser's moments, which
triple its size.  `export_weights` keeps what inference needs: the model name and its
constructor overrides, the float32 state_dict, the normalisation and class names, the
validation history, plus optional notes (the test accuracy, the command that made it).
The result loads with `load_trained` and evaluates with `minisnn eval` like any checkpoint,
but cannot be resumed.

    minisnn export runs/dysvit-tiny/best.npz dysvit-tiny-cifar10.npz --note test_acc=0.68
    model = minisnn.pretrained("dysvit-tiny-cifar10")
"""
from __future__ import annotations

import math
import os
import re
from importlib import resources
from pathlib import Path

import numpy as np

from ..data import find_dataset_dir, load_cifar10
from ..data.split import stratified_split
from .restore import load_trained
from .state import WEIGHTS_KIND, save_state

# Configuration fields that describe one machine, not the model: never written into exported weights.
MACHINE_FIELDS = ("data_dir", "out")
# Note keys that `pretrained()` sets itself or that export writes.
RESERVED_NOTES = ("name", "model", "epoch", "normalization", "classes", "history", "heldout_indices")
MAX_NOTE_CHARS = 4096
_NOTE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_notes(notes: dict) -> dict:
    """`notes` if every key is a name (letters, digits, _; at most 64) that is not reserved and every
    value a finite number, true/false, null or a string of at most MAX_NOTE_CHARS characters."""
    if not isinstance(notes, dict):
        raise ValueError(f"notes must be a dict, got {type(notes).__name__}")
    for key, value in notes.items():
        if not isinstance(key, str) or not _NOTE_KEY.fullmatch(key):
            raise ValueError(f"--note {str(key)[:40]!r}: a note's name is letters, digits and _ (at most 64)")
        if key in RESERVED_NOTES:
            raise ValueError(f"--note {key}: {key!r} is reserved (reserved: {', '.join(RESERVED_NOTES)})")
        if isinstance(value, str):
            if len(value) > MAX_NOTE_CHARS:
                raise ValueError(f"--note {key}: the value has {len(value)} characters, more than {MAX_NOTE_CHARS}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--note {key}: the value must be finite, got {value!r}")
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise ValueError(f"--note {key}: a note is a number, true/false, null or a string, "
                             f"not a {type(value).__name__}")
    return notes


def export_weights(checkpoint: str | os.PathLike, out: str | os.PathLike, notes: dict | None = None,
                   data_dir: str | os.PathLike | None = None) -> Path:
    """Write the weights of a trainer checkpoint (float32) and its metadata to `out` (.npz).

    With `data_dir` (the CIFAR-10 the model was trained on), the notes also record
    `heldout_indices`: the positions, in the 50,000 concatenated training images, of the
    validation split the model never trained on, so images from it can be told apart later.
    """
    _, st = load_trained(checkpoint)              # the weights must fit the model they name
    notes = {**st.get("notes", {}), **check_notes(dict(notes or {}))}
    if data_dir is not None:
        notes["heldout_indices"] = heldout_indices(data_dir, st["config"])
    return write_weights(out, model_name=st["model_name"], config=st["config"], model=st["model"],
                         classes=st["classes"], normalization=st["normalization"], history=st.get("history", []),
                         epoch=int(st["epoch"]), best_acc=float(st.get("best_acc", -1.0)), notes=notes,
                         model_config=st.get("model_config", {}))


def write_weights(out, *, model_name: str, config: dict, model: dict, classes, normalization, history=(),
                  epoch: int | None = None, best_acc: float | None = None, notes: dict | None = None,
                  model_config: dict | None = None) -> Path:
    """Write a weights-only file (float32 state_dict + metadata) that `load_trained` and `minisnn eval` read.

    epoch defaults to the length of `history`, best_acc to its best `val_acc` (-1 without history).
    The configuration is written without MACHINE_FIELDS (the data folder and output folder of the
    machine that trained it).
    """
    if not str(out).endswith(".npz"):
        raise ValueError(f"export writes an .npz file, got {str(out)!r}")
    history = list(history)
    weights = {k: (np.asarray(v, dtype=np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
               for k, v in model.items()}
    return save_state({
        "kind": WEIGHTS_KIND,
        "model_name": model_name,
        "config": {k: v for k, v in config.items() if k not in MACHINE_FIELDS},
        "model_config": model_config or {},
        "model": weights,
        "epoch": len(history) if epoch is None else epoch,
        "history": history,
        "best_acc": max((h["val_acc"] for h in history), default=-1.0) if best_acc is None else best_acc,
        "classes": list(classes),
        "normalization": normalization,
        "notes": dict(notes or {}),
    }, out)


def heldout_indices(data_dir, config: dict) -> np.ndarray:
    """Positions of the validation split `minisnn train` carved with this config (int32, sorted)."""
    _, train_y, _, _, _ = load_cifar10(find_dataset_dir(data_dir, "cifar10"))
    _, val_idx = stratified_split(train_y, config.get("val_size", 5000), config.get("seed", 0))
    return np.sort(val_idx).astype(np.int32)


def pretrained_names() -> list[str]:
    """Names of the pretrained models shipped in `minisnn/assets/pretrained/`."""
    folder = _pretrained_folder()
    return sorted(p.stem for p in folder.glob("*.npz")) if folder.is_dir() else []


def pretrained_path(name: str) -> Path:
    path = _pretrained_folder() / f"{name}.npz"
    if not path.exists():
        raise ValueError(f"no pretrained model {name!r}; shipped: {', '.join(pretrained_names()) or 'none'}")
    return path


def pretrained(name: str = "dysvit-tiny-cifar10"):
    """A shipped trained model in eval mode; `.pretrained_info` holds its notes and validation history."""
    model, st = load_trained(pretrained_path(name))
    model.pretrained_info = {"name": name, "model": st["model_name"], "epoch": int(st["epoch"]),
                             "normalization": st["normalization"], "classes": list(st["classes"]),
                             "history": st.get("history", []), **st.get("notes", {})}
    return model


def _pretrained_folder() -> Path:
    return Path(str(resources.files("minisnn") / "assets" / "pretrained"))
