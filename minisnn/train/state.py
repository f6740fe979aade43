"""Training checkpoints: the whole training state in one `.npz`, written atomically.

A checkpoint holds the model's state_dict, the optimiser's state (moments, step
counts), the schedule position, the data position (epoch, batch) and the run's
history, so `--resume` continues bit for bit.

Two kinds are written, told apart by the state's "kind": TRAIN_KIND (the trainer's
`last.npz`/`best.npz`, resumable) and WEIGHTS_KIND (`export_weights`: weights and
metadata only).  `load_trainer_checkpoint` reads either and rejects anything else.

Nested state (dicts, lists, arrays, numbers, strings) is flattened into
`arrays` (every ndarray, under a path key such as `optim/state/3/exp_avg`) and a
JSON `skeleton` that says where each array goes back.

Atomicity: the file is written to `<name>.tmp-<pid>` in the same folder,
flushed and fsync'ed, then `os.replace`d over the old one.  A process killed
mid-write leaves the previous checkpoint untouched (only a stray temp file).
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

TRAIN_KIND = "train"
WEIGHTS_KIND = "weights"

_ARRAY = "__array__"
_TUPLE = "__tuple__"


def _flatten(obj, prefix: str, arrays: dict):
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {_ARRAY: prefix}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint state keys must be str or int, got {type(k).__name__} at {prefix!r}")
        # JSON keys are strings: remember int keys so they come back as ints
        return {"__dict__": [[k, _flatten(v, f"{prefix}/{k}", arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
        return {_TUPLE: items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint (at {prefix!r})")


def _unflatten(node, arrays):
    if isinstance(node, dict):
        if _ARRAY in node:
            return arrays[node[_ARRAY]]
        if _TUPLE in node:
            return tuple(_unflatten(v, arrays) for v in node[_TUPLE])
        if "__float__" in node:
            return float(node["__float__"])
        if "__dict__" in node:
            return {k: _unflatten(v, arrays) for k, v in node["__dict__"]}
    if isinstance(node, list):
        return [_unflatten(v, arrays) for v in node]
    return node


def save_state(state: dict, path: str | os.PathLike) -> Path:
    """Write `state` (nested dicts/lists of arrays and plain values) to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _flatten(state, "s", arrays)
    payload = {f"a{i}": arr for i, arr in enumerate(arrays.values())}
    index = {key: f"a{i}" for i, key in enumerate(arrays)}
    meta = json.dumps({"format": "minisnn-train-state", "version": 1, "skeleton": skeleton, "index": index})
    payload["__meta__"] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def load_state(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by `save_state`; clear errors for missing or damaged files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable minisnn training checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "__meta__" not in npz.files:
                raise ValueError("no __meta__ record: not written by minisnn's trainer")
            meta = json.loads(bytes(npz["__meta__"]).decode("utf-8"))
            if meta.get("format") != "minisnn-train-state":
                raise ValueError("not a minisnn training checkpoint")
            loaded = {key: npz[name] for key, name in meta["index"].items()}
    except (zipfile.BadZipFile, KeyError, EOFError, ValueError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"{path} is not a readable minisnn training checkpoint ({type(exc).__name__}: {exc})") from None
    return _unflatten(meta["skeleton"], loaded)


def is_trainer_checkpoint(state: dict) -> bool:
    """True for the state of a checkpoint written by `minisnn train` or `export_weights`."""
    return state.get("kind") in (TRAIN_KIND, WEIGHTS_KIND) and "model_name" in state


def load_trainer_checkpoint(path: str | os.PathLike) -> dict:
    """`load_state(path)`, with a ValueError when the file is not a trainer or weights-only checkpoint."""
    state = load_state(path)
    if not is_trainer_checkpoint(state):
        raise ValueError(f"{path} is not a checkpoint written by `minisnn train`")
    return state
