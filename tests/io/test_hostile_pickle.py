"""Tiny pickles cannot make the loader use unbounded memory or time, or crash it (class 3, the pickle).

Every hostile data.pkl below is loaded in a forked child with a memory ceiling: it must be
refused with CheckpointError, within BUILD_BYTES_PER_BYTE * n + BUILD_SLACK bytes of objects
(plus a little for the reader itself) and within SECONDS_PER_MB per MB of pickle (plus 1 s):
linear, where the stock unpickler's worst cases are quadratic or worse.
"""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from minisnn.io import load_checkpoint, read_torch_zip
from minisnn.io.pickle_limits import MAX_DEPTH
from minisnn.io.pickle_machine import BUILD_BYTES_PER_BYTE, BUILD_SLACK

from .bounded import MiB, run_bounded
from .zip_tools import pickle_program, write_checkpoint_pickle


SECONDS_PER_MB = 10.0  # 0.3 to 3 us per opcode measured; the margin is for a machine shared with other work


def _time_bound(pickle_bytes: int) -> float:
    return 1.0 + SECONDS_PER_MB * pickle_bytes / 1e6


def _memory_bound(pickle_bytes: int) -> int:
    """What a load of an n-byte data.pkl may take: the budget plus 4 MiB for the zip reader and the copies."""
    return BUILD_BYTES_PER_BYTE * pickle_bytes + BUILD_SLACK + 4 * MiB


def _refused_within_bounds(path, data_pkl: bytes, match: str = "", reader=read_torch_zip):
    write_checkpoint_pickle(path, data_pkl)
    outcome = run_bounded(reader, path, memory=512 * MiB, timeout=20)
    assert outcome.raised("CheckpointError"), outcome
    assert str(path) in outcome.message and "\n" not in outcome.message and match in outcome.message, outcome
    assert outcome.peak_bytes <= _memory_bound(len(data_pkl)), outcome
    untraced = run_bounded(reader, path, memory=512 * MiB, timeout=20, trace=False)
    assert untraced.raised("CheckpointError") and untraced.seconds < _time_bound(len(data_pkl)), untraced


def _binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _long_get(index: int) -> bytes:
    return b"j" + struct.pack("<I", index)


def _repeat_call(global_op: bytes, arg: bytes, times: int) -> bytes:
    """`arg` stored in memo 0, then `times` calls of the global on it, each result popped."""
    return arg + b"q\x00" + (global_op + b"h\x00\x85R0") * times + b"N"


# name -> (data.pkl, words of the refusal).  Each is at most a few hundred KiB, and each would
# have taken gigabytes or minutes (or crashed the process) in a stock unpickler.
AMPLIFIERS = {
    "memo index far ahead": (pickle_program(b"Nr\xff\xff\xff\x7f"), "per byte"),
    "memo get never stored": (pickle_program(b"j\xff\xff\xff\x7f"), "never stored"),
    "bytearray of 1 TiB declared": (pickle_program(b"\x96" + struct.pack("<Q", 1 << 40)), "truncated"),
    "bytes of 2**60 declared": (pickle_program(b"\x8e" + struct.pack("<Q", 1 << 60)), "truncated"),
    "str of 4 GiB declared": (pickle_program(b"X\xff\xff\xff\xff"), "truncated"),
    "long of 2 GiB declared": (pickle_program(b"\x8b\xff\xff\xff\x7f"), "truncated"),
    "frame of 2**60": (pickle_program(b"\x95" + struct.pack("<Q", 1 << 60) + b"N", protocol=4), "frame"),
    "300 000 MARKs": (pickle_program(b"(" * 300_000), "per byte"),
    "300 000 empty sets": (pickle_program(b"\x8f" * 300_000, protocol=4), "per byte"),
    "OrderedDict of one shared list of pairs, 20000 times": (pickle_program(_repeat_call(
        b"ccollections\nOrderedDict\n", b"](" + b"".join(b"M" + struct.pack("<H", i) + b"N\x86" for i in range(2000))
        + b"e", 20000)), "per byte"),
    "set of one shared list, 20000 times": (pickle_program(_repeat_call(
        b"c__builtin__\nset\n", b"](" + b"".join(b"M" + struct.pack("<H", i) for i in range(5000)) + b"e",
        20000)), "per byte"),
    "_codecs.encode of one shared 64 KiB str, 10000 times": (pickle_program(_repeat_call(
        b"c_codecs\nencode\n", _binunicode("x" * 65536), 10000)), "per byte"),
    "numpy arrays from one shared 64 KiB buffer": (pickle_program(
        b"C\x00q\x00" b"cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87Rq\x01"
        + b"B" + struct.pack("<I", 65536) + bytes(65536) + b"q\x02"
        + (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85h\x00\x87R"
           b"(K\x01M\x00\x01M\x00\x01\x86h\x01\x89h\x02tb0") * 10000 + b"N"), "per byte"),
    "int keys that all hash alike": (pickle_program(b"}(" + b"".join(
        b"\x8a\x08" + struct.pack("<q", i * (2**61 - 1)) + b"N" for i in range(1, 3)) + b"u"), "dict key"),
    "float key": (pickle_program(b"}G\x00\x00\x00\x00\x00\x00\x00\x00Ns"), "dict key"),
    "tuple key": (pickle_program(b"}K\x01\x85Ns"), "dict key"),
    "set of tuples": (pickle_program(b"\x8f(K\x01\x85\x90", protocol=4), "set element"),
    "key nested 300 000 deep": (pickle_program(b"}" + b"N" + b"\x85" * 300_000 + b"Ns"), ""),
    "tuple nested 300 000 deep": (pickle_program(b"N" + b"\x85" * 300_000), ""),
    "key nested 20000 deep": (pickle_program(b"}" + b"N" + b"\x85" * 20_000 + b"Ns"), "dict key"),
    "list nested 20000 deep": (pickle_program(b"]" * 20_000 + b"N" + b"a" * 20_000), "nested more than"),
    "list that holds itself": (pickle_program(b"]q\x00h\x00a"), "contains itself"),
    "SETITEM on a list": (pickle_program(b"]K\x00K\x01s"), "SETITEM on"),
    "APPEND on a dict": (pickle_program(b"}K\x00a"), "APPEND on"),
    "call of a literal": (pickle_program(_binunicode("os.system") + b")R"), "cannot call"),
    "unknown opcode": (pickle_program(b"\xff"), "unknown opcode"),
    "out-of-band buffer": (pickle_program(b"\x97", protocol=5), "out-of-band"),
    "protocol 6": (b"\x80\x06N.", "protocol"),
    "no STOP": (b"\x80\x02N", "STOP"),
    "huge decimal int": (pickle_program(b"I" + b"9" * 100_000 + b"\n"), "malformed"),
}


@pytest.mark.parametrize("name", sorted(AMPLIFIERS))
def test_amplifying_pickles_are_refused_cheaply(tmp_path, name):
    data_pkl, match = AMPLIFIERS[name]
    assert len(data_pkl) < 1_000_000
    _refused_within_bounds(tmp_path / "amp.pt", data_pkl, match)


def test_the_stock_unpickler_really_is_amplified_by_the_memo_example():
    """The first example costs a stock unpickler 16 GiB of memo table: it fails under a 512 MiB ceiling."""
    import pickle

    outcome = run_bounded(pickle.loads, AMPLIFIERS["memo index far ahead"][0], memory=512 * MiB)
    assert outcome.raised("MemoryError"), outcome


def _nested(kind: bytes, depth: int) -> bytes:
    """`depth` containers inside each other: lists (APPEND), tuples (TUPLE1) or dicts (SETITEM)."""
    inner = b"N"
    wrap = {b"list": lambda x: b"]" + x + b"a", b"tuple": lambda x: x + b"\x85",
            b"dict": lambda x: b"}K\x00" + x + b"s"}[kind]
    for _ in range(depth):
        inner = wrap(inner)
    return pickle_program(inner)


@pytest.mark.parametrize("kind", [b"list", b"tuple", b"dict"])
def test_nesting_up_to_the_limit_loads_and_beyond_is_refused(tmp_path, kind):
    write_checkpoint_pickle(tmp_path / "ok.pt", _nested(kind, MAX_DEPTH))
    tree = read_torch_zip(tmp_path / "ok.pt")
    for _ in range(MAX_DEPTH - 1):
        tree = tree[0]
    assert tree[0] is None
    _refused_within_bounds(tmp_path / "deep.pt", _nested(kind, MAX_DEPTH + 1), "nested more than 100 deep")


def test_many_distinct_int_keys_load_fast(tmp_path):
    """120 000 int keys (what a collision flood would use) hash apart: the dict builds in linear time."""
    keys = b"".join(b"\x8a\x08" + struct.pack("<q", i * 2**40 + 7) + b"N" for i in range(120_000))
    path = tmp_path / "keys.pt"
    write_checkpoint_pickle(path, pickle_program(b"}(" + keys + b"u"))
    outcome = run_bounded(read_torch_zip, path, trace=False)
    assert outcome.status == "returned" and outcome.seconds < _time_bound(len(keys)), outcome


# random programs over every opcode, with small random arguments
_OPS_WITH_ARGS = st.one_of(
    st.sampled_from([bytes([c]) for c in b"NM()]}\x8f\x88\x89.0125tlde\x85\x86\x87asu\x90\x91Rb\x81\x92\x94Q\x93"]),
    st.integers(0, 255).map(lambda i: b"K" + bytes([i])),
    st.integers(0, 8).map(lambda i: b"h" + bytes([i])),
    st.integers(0, 8).map(lambda i: b"q" + bytes([i])),
    st.binary(max_size=6).map(lambda b: b"C" + bytes([len(b)]) + b),
    st.text(max_size=6).map(lambda t: _binunicode(t)),
    st.sampled_from([b"ctorch\nSize\n", b"c__builtin__\nset\n", b"ccollections\nOrderedDict\n",
                     b"cnumpy\ndtype\n", b"cargparse\nNamespace\n", b"ctorch\nFloatStorage\n",
                     b"c_codecs\nencode\n", b"ctorch._utils\n_rebuild_tensor_v2\n", b"\x82\x01", b"\x97"]),
)


@settings(max_examples=40)
@given(ops=st.lists(_OPS_WITH_ARGS, max_size=60), repeat=st.integers(1, 3000))
def test_random_programs_load_or_are_refused_within_bounds(tmp_path_factory, ops, repeat):
    body = b"".join(ops) * repeat
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.pt"
    write_checkpoint_pickle(path, pickle_program(body, protocol=4))
    outcome = run_bounded(load_checkpoint, path, memory=512 * MiB, timeout=20)
    assert outcome.status == "returned" or outcome.raised("CheckpointError"), outcome
    assert outcome.peak_bytes <= _memory_bound(len(body) + 3), outcome
    untraced = run_bounded(load_checkpoint, path, memory=512 * MiB, timeout=20, trace=False)
    assert untraced.seconds < _time_bound(len(body)), untraced
