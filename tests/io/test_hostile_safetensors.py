"""A safetensors header cannot make the reader build much more than the header itself, however it is
padded, nested or repeated (class 3, safetensors).  Bound: about 20 bytes of Python objects per header
byte (measured on the worst valid-looking headers below), MAX_HEADER_BYTES at most, never past the file."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn.io import read_safetensors, save_checkpoint
from minisnn.io.safetensors import MAX_HEADER_BYTES

from .bounded import MiB, run_bounded

BYTES_PER_HEADER_BYTE = 24


def _file(path, header: bytes, data: bytes = b"", declared: int | None = None):
    path.write_bytes(struct.pack("<Q", len(header) if declared is None else declared) + header + data)
    return path


def _load_within_bounds(path, header_len: int):
    outcome = run_bounded(read_safetensors, path, memory=512 * MiB, timeout=30)
    assert outcome.status == "returned" or outcome.raised("CheckpointError"), outcome
    assert outcome.peak_bytes < BYTES_PER_HEADER_BYTE * header_len + MiB, outcome
    untraced = run_bounded(read_safetensors, path, memory=512 * MiB, timeout=30, trace=False)
    assert untraced.seconds < 1.0 + 5 * header_len / 1e6, untraced  # 0.35 us per byte measured; margin for load
    return outcome


ENTRY = b'{"dtype":"U8","shape":[0],"data_offsets":[0,0]}'
JUNK = {
    "lists of empty lists": b'{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"junk":['
                            + b"[]," * 2_000_000 + b"[]]}}",
    "a long list": b'{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"junk":[' + b"0," * 2_000_000 + b"0]}}",
    "deep nesting": b'{"w":' + b"[" * 2_000_000 + b"]" * 2_000_000 + b"}",
    "nested objects": b'{"w":{"a":' + b'{"a":' * 500_000 + b"1" + b"}" * 500_001 + b"}",
    "a junk key at the top": b'{"junk":[' + b"{}," * 1_000_000 + b'{}],"w":' + ENTRY + b"}",
}
FLOODS = {
    "scalar junk keys in an entry": (b'{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0],'
                                     + b",".join(b'"j%d":0' % i for i in range(200_000)) + b"}}", "more than 16 entries"),
    "a flood of metadata": (b'{"__metadata__":{' + b",".join(b'"k%d":""' % i for i in range(200_000)) + b"}}",
                            "more than 65536 entries"),
}


@pytest.mark.parametrize("name", sorted(JUNK))
def test_junk_in_the_header_is_refused_at_once(tmp_path, name):
    header = JUNK[name]
    outcome = _load_within_bounds(_file(tmp_path / "junk.safetensors", header), len(header))
    assert outcome.raised("CheckpointError") and "invalid safetensors file" in outcome.message, outcome
    assert outcome.peak_bytes < 3 * len(header) + MiB, outcome  # refused before it is built


@pytest.mark.parametrize("name", sorted(FLOODS))
def test_floods_of_flat_items_are_cut_off(tmp_path, name):
    header, problem = FLOODS[name]
    outcome = _load_within_bounds(_file(tmp_path / "flood.safetensors", header), len(header))
    assert outcome.raised("CheckpointError") and problem in outcome.message, outcome


def test_many_valid_entries_and_metadata_stay_within_the_bound(tmp_path):
    names = b",".join(b'"t%d":' % i + ENTRY for i in range(20_000))
    meta = b",".join(b'"k%d":""' % i for i in range(20_000))
    header = b'{"__metadata__":{' + meta + b"}," + names + b"}"
    outcome = _load_within_bounds(_file(tmp_path / "many.safetensors", header), len(header))
    assert outcome.status == "returned", outcome


@pytest.mark.parametrize("declared, problem", [
    (MAX_HEADER_BYTES + 1, "more than the 104857600 bytes allowed"),
    (2**63, "exceeds the file size"),
    (100, "exceeds the file size"),
])
def test_header_lengths_beyond_the_file_or_the_limit(tmp_path, declared, problem):
    path = tmp_path / "h.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", declared) + b"{}")
        if declared == MAX_HEADER_BYTES + 1:
            f.truncate(8 + declared)  # a sparse file: the length is real, the disk holds nothing
    outcome = run_bounded(read_safetensors, path, memory=512 * MiB)
    assert outcome.raised("CheckpointError") and problem in outcome.message, outcome
    assert outcome.peak_bytes < MiB, outcome


def test_standard_and_unusual_spellings_of_a_valid_header(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_checkpoint({"w": array}, tmp_path / "std.safetensors")
    assert np.array_equal(read_safetensors(tmp_path / "std.safetensors")["w"], array)
    spaced = b'{ "w" : { "shape" : [ 2 , 3 ] , "data_offsets" : [0, 24], "dtype" : "F32", "note": "x\\u00e9", ' \
             b'"n": null } , "__metadata__" : { "format" : "pt" } }'
    loaded = read_safetensors(_file(tmp_path / "spaced.safetensors", spaced, array.tobytes()))
    assert np.array_equal(loaded["w"], array)


@settings(max_examples=40)
@given(position=st.integers(0, 10**6), replacement=st.sampled_from(list(b'[]{}",:0-e. \\u')),
       copies=st.integers(1, 3))
def test_any_mutation_of_a_header_loads_or_is_refused_within_bounds(tmp_path_factory, position, replacement,
                                                                     copies):
    header = json.dumps({"__metadata__": {"a": "b"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "v": {"dtype": "I8", "shape": [3, 1], "data_offsets": [8, 11]}}).encode()
    i = position % len(header)
    header = header[:i] + bytes([replacement]) * copies + header[i + 1:]
    path = _file(tmp_path_factory.mktemp("m") / "m.safetensors", header, bytes(11))
    outcome = run_bounded(read_safetensors, path, memory=512 * MiB)
    assert outcome.status == "returned" or outcome.raised("CheckpointError"), outcome
    assert outcome.peak_bytes < MiB, outcome
