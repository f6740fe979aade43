"""Opening input files without surprises: regular files only, paths as str, bytes or os.PathLike.

A reader handed a FIFO would wait forever for a writer, and one handed `/dev/zero` would
read without end.  `open_regular` refuses anything but a regular file (symlinks are
followed) before opening it, opens without blocking, and checks the opened descriptor
again, so a path swapped in between is caught too.  Every reader of untrusted files uses
it: the checkpoint readers, the safetensors reader and the CIFAR batch reader.

    with open_regular(path, CheckpointError) as f: ...      # error(path, problem) for the wrong kind
    data = read_regular_bytes(path, CorruptBatchError)      # the whole file, read at its stat size
"""
from __future__ import annotations

import os
import stat
from typing import BinaryIO

from .errors import InputFileError

_KINDS = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]


def fs_path(path) -> str:
    """`path` as the str that open() takes: bytes are decoded as os.fsdecode does (undecodable bytes kept)."""
    return os.fsdecode(os.fspath(path))


def _refuse_unless_regular(mode: int, path, error) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise error(path, f"is {kind}, not a regular file")


def open_regular(path, error=InputFileError) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file; else `error(path, problem)`.

    FileNotFoundError and PermissionError come from the operating system as usual.
    """
    name = fs_path(path)
    _refuse_unless_regular(os.stat(name).st_mode, path, error)
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_NOCTTY", 0))
    try:
        _refuse_unless_regular(os.fstat(fd).st_mode, path, error)
        return os.fdopen(fd, "rb")  # O_NONBLOCK changes nothing for a regular file
    except BaseException:
        os.close(fd)
        raise


def file_size(f: BinaryIO) -> int:
    """Size in bytes of an open file, from fstat."""
    return os.fstat(f.fileno()).st_size


def read_regular_bytes(path, error=InputFileError, limit: int | None = None) -> bytes:
    """The bytes of the regular file `path` (see open_regular); `error` if it holds more than `limit`."""
    with open_regular(path, error) as f:
        size = file_size(f)
        if limit is not None and size > limit:
            raise error(path, f"is {size} bytes, more than the {limit} bytes allowed")
        data = f.read(size)
    if len(data) != size:
        raise error(path, f"changed while it was read ({len(data)} of {size} bytes)")
    return data
