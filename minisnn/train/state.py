"""Training checkpoints: the whole training state in one `.npz`, written atomically, read defensively.

A checkpoint holds the model's state_dict, the optimiser's state (moments, step
counts), the schedule position, the data position (epoch, batch, and the running sums
of the epoch in progress) and the run's history, so `--resume` continues bit for bit.

Two kinds are written, told apart by the state's "kind": TRAIN_KIND (the trainer's
`last.npz`/`best.npz`, resumable) and WEIGHTS_KIND (`export_weights`: weights and
metadata only).  `load_trainer_checkpoint` reads either and checks every field the
library uses (names, types, ranges); `load_training_state` also checks what `--resume`
needs.  Anything else is refused with a one-line `TrainCheckpointError` naming the file.

Nested state (dicts, lists, arrays, numbers, strings) is flattened into
`arrays` (every ndarray, under a path key such as `optim/state/3/exp_avg`) and a
JSON `skeleton` that says where each array goes back.  Reading goes through
`npz_reader.BoundedNpz` (regular files only, memory bounded by the bytes stored),
and the skeleton may nest at most MAX_DEPTH levels.

Atomicity: the file is written to `<name>.tmp-<pid>` in the same folder,
flushed and fsync'ed, then `os.replace`d over the old one.  A process killed
mid-write leaves the previous checkpoint untouched and a stray temporary file,
which `remove_stale_temporaries` deletes once its process is gone.  `save_state`
refuses a state whose model holds a non-finite value: such weights are never written.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ..io.errors import CheckpointError, display_path
from ..io.files import fs_path
from .config import NORMALISATIONS, TrainConfig
from .npz_reader import READ_ERRORS, BoundedNpz

TRAIN_KIND = "train"
WEIGHTS_KIND = "weights"
FORMAT = "minisnn-train-state"
MAX_DEPTH = 64                 # nesting levels a skeleton may have

_ARRAY = "__array__"
_TUPLE = "__tuple__"
_FLOAT = "__float__"
_DICT = "__dict__"
_TEMPORARY = re.compile(r".+\.tmp-(\d+)$")


class TrainCheckpointError(CheckpointError):
    """A training checkpoint cannot be read (missing parts, wrong types, damaged, hostile) or written
    (non-finite weights).  One line: "<path>: <problem>"."""


# ------------------------------------------------------------------ flatten
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
        return {_DICT: [[k, _flatten(v, f"{prefix}/{k}", arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
        return {_TUPLE: items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {_FLOAT: repr(obj)}
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint (at {prefix!r})")


class _Malformed(ValueError):
    """The skeleton does not describe a state `_flatten` could have written."""


def _unflatten(node, arrays: dict, depth: int = 0):
    if depth > MAX_DEPTH:
        raise _Malformed(f"the state nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, list):
        return [_unflatten(v, arrays, depth + 1) for v in node]
    if not isinstance(node, dict):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise _Malformed(f"unexpected {type(node).__name__} in the skeleton")
    if len(node) != 1:
        raise _Malformed(f"skeleton node with keys {sorted(node)[:4]}")
    (tag, value), = node.items()
    if tag == _ARRAY and isinstance(value, str) and value in arrays:
        return arrays[value]
    if tag == _TUPLE and isinstance(value, list):
        return tuple(_unflatten(v, arrays, depth + 1) for v in value)
    if tag == _FLOAT and value in ("nan", "inf", "-inf"):
        return float(value)
    if tag == _DICT and isinstance(value, list):
        out = {}
        for item in value:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))
                    and not isinstance(item[0], bool)):
                raise _Malformed("a dict entry of the skeleton is not a [key, value] pair")
            out[item[0]] = _unflatten(item[1], arrays, depth + 1)
        return out
    raise _Malformed(f"skeleton node {tag!r} holds {type(value).__name__}"
                     + (" naming no stored array" if tag == _ARRAY else ""))


# ------------------------------------------------------------------- write
def _non_finite_weights(state: dict) -> list[str]:
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict):
        return []
    return [f"{k} ({int(np.size(v) - np.count_nonzero(np.isfinite(v)))} values)" for k, v in model.items()
            if isinstance(v, np.ndarray) and v.dtype.kind in "fc" and not np.isfinite(v).all()]


def save_state(state: dict, path: str | os.PathLike | bytes) -> Path:
    """Write `state` (nested dicts/lists of arrays and plain values) to `path` atomically.

    A state whose "model" holds a NaN or an infinity is refused (TrainCheckpointError).
    """
    path = Path(fs_path(path))
    bad = _non_finite_weights(state)
    if bad:
        raise TrainCheckpointError(path, f"refusing to save non-finite weights: {', '.join(bad[:3])}"
                                   + (f" and {len(bad) - 3} more tensors" if len(bad) > 3 else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _flatten(state, "s", arrays)
    payload = {f"a{i}": arr for i, arr in enumerate(arrays.values())}
    index = {key: f"a{i}" for i, key in enumerate(arrays)}
    meta = json.dumps({"format": FORMAT, "version": 1, "skeleton": skeleton, "index": index})
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0                   # it exists, under another user (or the number is not a pid)
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete `*.tmp-<pid>` files in `folder` left by processes that no longer run; returns them."""
    folder = Path(fs_path(folder))
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMPORARY.fullmatch(entry.name)
        if match and entry.is_file() and not entry.is_symlink() and not _process_alive(int(match.group(1))):
            try:
                entry.unlink()
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


# -------------------------------------------------------------------- read
def load_state(path: str | os.PathLike | bytes) -> dict:
    """Read a checkpoint written by `save_state`; one-line errors for missing, damaged or hostile files.

    FileNotFoundError when there is no file; TrainCheckpointError (a ValueError) for anything else.
    """
    name = fs_path(path)
    if not os.path.lexists(name):
        raise FileNotFoundError(f"no checkpoint at {display_path(path)}")
    try:
        with BoundedNpz(name, TrainCheckpointError) as npz:
            meta = _read_meta(npz)
            index = meta["index"]
            arrays = {key: npz.read(member) for key, member in index.items()}
        return _unflatten(meta["skeleton"], arrays)
    except TrainCheckpointError as exc:
        raise TrainCheckpointError(path, f"is not a readable minisnn training checkpoint ({exc.problem})") from None
    except (_Malformed, *READ_ERRORS) as exc:
        text = " ".join(str(exc).split())
        raise TrainCheckpointError(path, f"is not a readable minisnn training checkpoint "
                                         f"({type(exc).__name__}: {text})") from None


def _read_meta(npz: BoundedNpz) -> dict:
    if "__meta__" not in npz.names():
        raise _Malformed("no __meta__ record: not written by minisnn's trainer")
    raw = npz.read("__meta__")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _Malformed(f"__meta__ is {raw.dtype} {list(raw.shape)}, not bytes")
    meta = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Malformed("not a minisnn training checkpoint")
    index = meta.get("index")
    if not isinstance(index, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in index.items()):
        raise _Malformed("its array index is not a mapping of names")
    if len(set(index.values())) != len(index):
        raise _Malformed("its array index names one member twice")
    if "skeleton" not in meta:
        raise _Malformed("no skeleton in __meta__")
    return meta


def is_state_file(path) -> bool:
    """True when `path` is a zip archive with a `__meta__` array: a file `save_state` wrote (or a damaged one)."""
    try:
        with BoundedNpz(path, TrainCheckpointError) as npz:
            return "__meta__" in npz.names()
    except (TrainCheckpointError, OSError):
        return False


# ------------------------------------------------------------ trainer files
def is_trainer_checkpoint(state: dict) -> bool:
    """True for the state of a checkpoint written by `minisnn train` or `export_weights`."""
    return isinstance(state, dict) and state.get("kind") in (TRAIN_KIND, WEIGHTS_KIND) and "model_name" in state


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(state: dict, path, key: str, test, expected: str, optional: bool = False) -> None:
    if key not in state:
        if optional:
            return
        raise TrainCheckpointError(path, f"has no {key!r} entry; it is damaged or not from `minisnn train`")
    if not test(state[key]):
        raise TrainCheckpointError(path, f"entry {key!r} should be {expected}, not {type(state[key]).__name__} "
                                         f"{str(state[key])[:60]!r}")


def _check_common(state: dict, path) -> None:
    _check(state, path, "model_name", lambda v: isinstance(v, str) and v, "a model name")
    _check(state, path, "config", lambda v: isinstance(v, dict), "a dict")
    _check(state, path, "model", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for k, a in v.items()),
        "a dict of numeric arrays")
    _check(state, path, "classes", lambda v: isinstance(v, list) and v and all(isinstance(c, str) for c in v),
           "a list of class names")
    _check(state, path, "normalization", lambda v: v in NORMALISATIONS, f"one of {', '.join(NORMALISATIONS)}")
    _check(state, path, "epoch", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    _check(state, path, "history", lambda v: isinstance(v, list) and all(
        isinstance(h, dict) and _is_int(h.get("epoch")) and _is_number(h.get("val_acc")) for h in v),
        "a list of epoch records")
    _check(state, path, "best_acc", _is_number, "a number", optional=True)
    _check(state, path, "model_config", lambda v: isinstance(v, dict), "a dict", optional=True)
    _check(state, path, "notes", lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
           "a dict", optional=True)
    try:
        TrainConfig.from_dict(state["config"]).validate()
    except (TypeError, ValueError) as exc:
        raise TrainCheckpointError(path, f"holds an invalid training configuration ({exc})") from None


def load_trainer_checkpoint(path: str | os.PathLike | bytes) -> dict:
    """`load_state(path)` of a trainer or weights-only checkpoint whose fields are all of the right type.

    ValueError (TrainCheckpointError) when the file is another kind of state or a field is missing or wrong.
    """
    state = load_state(path)
    if not is_trainer_checkpoint(state):
        raise TrainCheckpointError(path, "is not a checkpoint written by `minisnn train`")
    _check_common(state, path)
    return state


def load_training_state(path: str | os.PathLike | bytes) -> dict:
    """`load_trainer_checkpoint(path)` of a resumable checkpoint (TRAIN_KIND), with what `--resume` needs."""
    state = load_trainer_checkpoint(path)
    if state["kind"] == WEIGHTS_KIND:
        raise TrainCheckpointError(path, "holds exported weights only (no optimiser state): it cannot be resumed")
    _check(state, path, "optimizer", lambda v: isinstance(v, dict) and isinstance(v.get("state"), dict)
           and isinstance(v.get("param_groups"), list) and all(isinstance(g, dict) for g in v["param_groups"]),
           "an optimiser state")
    _check(state, path, "schedule", lambda v: isinstance(v, dict) and _is_int(v.get("t")) and v["t"] >= 0,
           "a schedule state")
    _check(state, path, "batch", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    _check(state, path, "skipped_total", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    _check(state, path, "best_acc", _is_number, "a number")
    _check(state, path, "epoch_sums", lambda v: isinstance(v, dict) and all(
        _is_number(v.get(k)) for k in ("loss", "acc", "n", "skipped")), "the epoch's running sums", optional=True)
    return state
