"""minisnn's pickle machine rebuilds plain data exactly as `pickle.loads` does, for every protocol."""
from __future__ import annotations

import math
import pickle
import pickletools
from collections import OrderedDict

import pytest
from hypothesis import given, strategies as st

from minisnn.io import CheckpointError
from minisnn.io.pickle_machine import _OPS
from minisnn.io.unpickler import load_pickle

# (b"" is pickled as a call of builtins.bytes below protocol 3, which is not on the allow-list)
keys = st.one_of(st.text(max_size=6), st.integers(-(2**60), 2**60), st.binary(min_size=1, max_size=4),
                 st.booleans(), st.none())
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2**200), 2**200),
                    st.floats(allow_nan=False), st.text(max_size=8), st.binary(min_size=1, max_size=8),
                    st.complex_numbers(allow_nan=False))
plain = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(keys, inner, max_size=4),
    st.dictionaries(st.text(max_size=4), inner, max_size=3).map(OrderedDict),
    st.sets(keys, max_size=4), st.frozensets(keys, max_size=4)), max_leaves=20)


def _same(a, b) -> bool:
    """Equal, with the same container types all the way down (1 == 1.0 == True would hide bugs)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@given(obj=plain, protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_plain_data_loads_as_pickle_loads_it(obj, protocol):
    data = pickle.dumps(obj, protocol=protocol)
    assert _same(load_pickle(data, "x.pt"), pickle.loads(data))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_shared_objects_stay_shared(protocol):
    inner = [1, 2]
    loaded = load_pickle(pickle.dumps({"a": inner, "b": (inner, inner)}, protocol=protocol), "x.pt")
    assert loaded["a"] is loaded["b"][0] is loaded["b"][1]


def test_every_opcode_is_either_run_or_refused():
    assert {ord(op.code) for op in pickletools.opcodes} == set(_OPS)


@given(obj=plain, protocol=st.integers(0, pickle.HIGHEST_PROTOCOL), cut=st.floats(0, 0.999))
def test_truncated_pickles_are_refused(obj, protocol, cut):
    data = pickle.dumps(obj, protocol=protocol)
    with pytest.raises(CheckpointError, match="x.pt: data.pkl is corrupt"):
        load_pickle(data[: int(cut * len(data))], "x.pt")
