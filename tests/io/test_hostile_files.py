"""Special files are refused at once instead of hanging or growing without end, and any path a program
may hold (str, bytes that are not UTF-8, os.PathLike) reaches the file it names (class 4)."""
from __future__ import annotations

import os
import socket
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from minisnn.io import (CheckpointError, describe_checkpoint, detect_format, load_checkpoint, read_safetensors,
                        read_safetensors_metadata, read_torch_zip, save_checkpoint)
from minisnn.io.errors import InputFileError
from minisnn.io.files import open_regular, read_regular_bytes

from .bounded import run_bounded

READERS = [load_checkpoint, describe_checkpoint, detect_format, read_torch_zip, read_safetensors,
           read_safetensors_metadata]


def _special(tmp_path, kind: str):
    """A path to a special file of `kind`, and the words the refusal uses for it."""
    if kind == "fifo":
        path = tmp_path / "weights.pth"
        os.mkfifo(path)
        return path, "a FIFO (named pipe)"
    if kind == "symlink to a fifo":
        os.mkfifo(tmp_path / "pipe")
        (tmp_path / "weights.pth").symlink_to(tmp_path / "pipe")
        return tmp_path / "weights.pth", "a FIFO (named pipe)"
    if kind == "character device":
        return Path("/dev/zero"), "a character device"
    if kind == "directory":
        return tmp_path, "a directory"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.pt"))
    return tmp_path / "s.pt", "a socket"


@pytest.mark.parametrize("reader", READERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind", ["fifo", "symlink to a fifo", "character device", "directory", "socket"])
def test_special_files_are_refused_at_once(tmp_path, reader, kind):
    path, words = _special(tmp_path, kind)
    outcome = run_bounded(reader, path, timeout=10)
    assert outcome.raised("CheckpointError"), outcome
    assert outcome.message == f"{path}: is {words}, not a regular file", outcome
    assert outcome.seconds < 1.0 and outcome.peak_bytes < (1 << 20), outcome


def test_open_regular_rejects_before_opening_and_reads_regular_files(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputFileError, match="a FIFO"):
        open_regular(tmp_path / "pipe")  # opening a FIFO for reading would block until a writer comes
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "missing")
    (tmp_path / "f").write_bytes(b"abc")
    with open_regular(tmp_path / "f") as f:
        assert f.read() == b"abc"
    assert read_regular_bytes(tmp_path / "f") == b"abc"
    with pytest.raises(InputFileError, match="more than the 2 bytes allowed"):
        read_regular_bytes(tmp_path / "f", limit=2)
    with pytest.raises(CheckpointError, match="a character device"):
        read_regular_bytes("/dev/zero", CheckpointError)


class _PathLike:
    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path


def _spellings(path: Path):
    yield "str", str(path)
    yield "Path", path
    yield "bytes", os.fsencode(path)
    yield "os.PathLike of bytes", _PathLike(os.fsencode(path))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_paths_as_str_bytes_and_pathlike_with_undecodable_names(tmp_path, suffix):
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9-\xff"))  # not UTF-8: kept as surrogates
    folder.mkdir()
    state = OrderedDict(w=np.arange(6, dtype=np.float32).reshape(2, 3))
    for label, path in _spellings(folder / f"w{suffix}"):
        save_checkpoint(state, path)
        assert np.array_equal(load_checkpoint(path)["w"], state["w"]), label
        assert "1 tensors, 6 elements" in describe_checkpoint(path), label
    broken = folder / f"broken{suffix}"
    broken.write_bytes(b"\x00" * 64)
    for label, path in _spellings(broken):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert message.startswith(f"{tmp_path}/caf\\xe9-\\xff/broken{suffix}: "), (label, message)
        message.encode("utf-8")  # printable: no lone surrogates
    with pytest.raises(FileNotFoundError):
        load_checkpoint(os.fsencode(folder / "missing.pt"))
