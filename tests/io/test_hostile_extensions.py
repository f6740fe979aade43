"""EXT1/EXT2/EXT4 name objects through copyreg's process-wide extension registry, bypassing the
allow-list: they are refused even when the registry (and its cache) holds entries (class 2)."""
from __future__ import annotations

import copyreg
import os
import pickle
import struct

import pytest
from hypothesis import given, strategies as st

from minisnn.io import CheckpointError, load_checkpoint, read_torch_zip

from .zip_tools import pickle_program, write_checkpoint_pickle

# code -> (module, name); codes 1..0x7fffffff are valid, EXT1/EXT2/EXT4 carry 1, 2 or 4 bytes
REGISTERED = {0xF1: ("posix", "system"), 0xF2F2: ("builtins", "eval"), 0x7F000001: ("collections", "OrderedDict")}


@pytest.fixture
def registry():
    """Register the extensions and resolve each once, so copyreg's cache holds the real objects."""
    for code, (module, name) in REGISTERED.items():
        copyreg.add_extension(module, name, code)
        pickle.loads(pickle_program(_ext(code)))
        assert code in copyreg._extension_cache
    yield
    for code, (module, name) in REGISTERED.items():
        copyreg.remove_extension(module, name, code)
    assert not set(REGISTERED) & set(copyreg._extension_cache)


def _ext(code: int) -> bytes:
    if code < 0x100:
        return b"\x82" + bytes([code])
    if code < 0x10000:
        return b"\x83" + struct.pack("<H", code)
    return b"\x84" + struct.pack("<i", code)


@pytest.mark.parametrize("code", sorted(REGISTERED))
def test_registered_extensions_are_refused(tmp_path, registry, code):
    marker = tmp_path / "pwned"
    call = _ext(code) + b"X" + struct.pack("<I", len(f"touch {marker}")) + f"touch {marker}".encode() + b"\x85R"
    path = tmp_path / "ext.pt"
    write_checkpoint_pickle(path, pickle_program(b"}X\x01\x00\x00\x00a", call, b"s"))
    for reader in (load_checkpoint, read_torch_zip):
        with pytest.raises(CheckpointError, match=r"extension codes .* are refused.*opcode EXT[124] at byte 9"):
            reader(path)
    assert not marker.exists() and not os.path.exists("pwned")


@given(code=st.integers(1, 0x7FFFFFFF), width=st.sampled_from([1, 2, 4]))
def test_every_extension_opcode_is_refused(tmp_path_factory, code, width):
    arg = {1: bytes([code & 0xFF]), 2: struct.pack("<H", code & 0xFFFF), 4: struct.pack("<i", code)}[width]
    op = {1: b"\x82", 2: b"\x83", 4: b"\x84"}[width]
    path = tmp_path_factory.mktemp("ext") / "ext.pt"
    write_checkpoint_pickle(path, pickle_program(op + arg))
    with pytest.raises(CheckpointError, match="extension codes"):
        load_checkpoint(path)
