"""A refused file never changes how later files load: stand-ins take no state, BUILD applies only to
objects the load made itself, and every load builds its own allow-list (class 1 of the hostile files)."""
from __future__ import annotations

import pickle
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.io import CheckpointError, load_checkpoint, read_torch_zip, write_torch_zip
from minisnn.io.unpickler import ALLOWED_GLOBALS, allowed_globals

from .zip_tools import pickle_program, write_checkpoint_pickle


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


# states that would rewrite a frozen dataclass stand-in (its __setstate__ takes a field list), its
# __dict__ / slots (a dict, or (dict, slots)), or a function's attributes
STATES = [
    pickle.dumps(["int32"], protocol=2)[2:-1],
    pickle.dumps({"dtype": "int32", "name": "int32"}, protocol=2)[2:-1],
    pickle.dumps((None, {"dtype": "int32", "__defaults__": (1,)}), protocol=2)[2:-1],
]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A checkpoint with a float32, a float64 and an int64 tensor, and its arrays."""
    path = tmp_path_factory.mktemp("good") / "good.pt"
    arrays = OrderedDict(w=np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
                         b=np.arange(5, dtype=np.float64) / 3, n=np.array(7, dtype=np.int64))
    write_torch_zip({"state_dict": arrays, "epoch": 1}, path)
    return path, arrays


def _loads_exactly(path, arrays) -> None:
    loaded = load_checkpoint(path)
    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array), name


@pytest.mark.parametrize("module, name", sorted(ALLOWED_GLOBALS))
def test_build_on_any_stand_in_is_refused_and_later_loads_are_unchanged(tmp_path, good, module, name):
    for i, state in enumerate(STATES):
        path = tmp_path / f"build{i}.pt"
        write_checkpoint_pickle(path, pickle_program(_global(module, name), state, b"b"))
        with pytest.raises(CheckpointError, match="BUILD on .* which this load did not make") as info:
            read_torch_zip(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        _loads_exactly(*good)


# objects a load makes (by calls of stand-ins, or literals), none of which takes state
_STORAGE = b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
MADE = {
    "tensor": b"ctorch._utils\n_rebuild_tensor_v2\n(" + _STORAGE + b"K\x00K\x04\x85K\x01\x85\x89}tR",
    "storage": _STORAGE,
    "size": b"ctorch\nSize\n]K\x02a\x85R",
    "device": b"ctorch\ndevice\nX\x03\x00\x00\x00cpu\x85R",
    "set": b"c__builtin__\nset\n]K\x01a\x85R",
    "complex": b"c__builtin__\ncomplex\nG?\xf0\x00\x00\x00\x00\x00\x00G\x00\x00\x00\x00\x00\x00\x00\x00\x86R",
    "literal dict": b"}",
    "literal list": b"]",
}


@pytest.mark.parametrize("what", sorted(MADE))
def test_build_on_objects_that_take_no_state_is_refused(tmp_path, good, what):
    path = tmp_path / "made.pt"
    write_checkpoint_pickle(path, pickle_program(MADE[what], STATES[1], b"b"), {"0": bytes(16)})
    with pytest.raises(CheckpointError, match="BUILD on"):
        read_torch_zip(path)
    _loads_exactly(*good)


def test_builds_that_real_checkpoints_use_still_work(tmp_path):
    """OrderedDict state (a state_dict's _metadata), argparse.Namespace and numpy arrays/dtypes."""
    import argparse

    meta = OrderedDict(w=np.ones(2, np.float32))
    meta._metadata = OrderedDict([("", {"version": 1})])
    obj = {"state_dict": meta, "args": argparse.Namespace(lr=0.1, name="x"), "arr": np.arange(6.0).reshape(2, 3),
           "scalar": np.float32(2.5)}
    write_checkpoint_pickle(tmp_path / "ok.pt", pickle.dumps(obj, protocol=2))
    tree = read_torch_zip(tmp_path / "ok.pt")
    assert tree["args"] == {"lr": 0.1, "name": "x"} and tree["scalar"] == np.float32(2.5)
    assert np.array_equal(tree["arr"], obj["arr"]) and tree["arr"].flags.writeable
    assert list(tree["state_dict"]) == ["w"] and np.array_equal(tree["state_dict"]["w"], np.ones(2))


def test_every_load_gets_its_own_stand_ins():
    """Stand-in values (dtypes, storage types, type markers) are fresh objects for each load, equal in value."""
    first, second = allowed_globals(), allowed_globals()
    assert first.keys() == second.keys() == ALLOWED_GLOBALS.keys()
    values = [(first[key], second[key]) for key in first if not callable(first[key])]
    assert len(values) > 20
    for a, b in values:
        assert a == b and a is not b


state_values = st.recursive(st.none() | st.integers(-5, 5) | st.text(max_size=5) | st.sampled_from(["int32", "dtype"]),
                            lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                            | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@given(key=st.sampled_from(sorted(ALLOWED_GLOBALS)), state=state_values)
def test_any_state_on_any_stand_in_leaves_later_loads_alone(tmp_path_factory, good, key, state):
    path = tmp_path_factory.mktemp("h") / "h.pt"
    write_checkpoint_pickle(path, pickle_program(_global(*key), pickle.dumps(state, protocol=2)[2:-1], b"b"))
    with pytest.raises(CheckpointError):
        read_torch_zip(path)
    _loads_exactly(*good)
