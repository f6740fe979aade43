"""Reading the arrays of an `.npz` archive without trusting it: memory bounded by the bytes stored.

`np.load` believes each member's `.npy` header: a header declaring a shape of 10¹² elements
makes it allocate that array before reading a byte, and a small deflated member may expand
to gigabytes.  `BoundedNpz` reads the same files and allocates nothing it has not checked:

* the file must be a regular file (`io.files.open_regular`: no FIFO, device or directory);
* a member must be stored or deflated; a stored member's sizes must agree, and a deflated
  one may declare at most MAX_EXPANSION times its compressed size;
* a member must lie inside the file (offset + compressed size <= file size), and the members
  read must add up to no more compressed bytes than the file holds (overlapping members that
  share their bytes cannot multiply them);
* the `.npy` header (at most 10,000 bytes, as NumPy allows) must declare a plain numeric
  dtype (bool, int, uint, float, complex; never objects) and a shape whose size in bytes is
  exactly what the member holds after its header;
* the data is read in chunks of CHUNK bytes straight into the array; zipfile checks the
  member's CRC-32 at the end, so a flipped bit in the data is an error, not a silent change.

Loading therefore allocates the arrays themselves (no more than the stored bytes, or
MAX_EXPANSION times them for deflated members) plus one chunk and zipfile's small buffers.
Every problem raises `error(path, problem)`, a one-line `InputFileError` of the caller's choice.

    with BoundedNpz(path, TrainCheckpointError) as npz:
        meta = npz.read("__meta__")          # the array stored as __meta__.npy
"""
from __future__ import annotations

import math
import zipfile
import zlib

import numpy as np

from ..io.errors import InputFileError
from ..io.files import file_size, open_regular

MAX_EXPANSION = 100            # a deflated member may hold at most 100x its compressed size
CHUNK = 1 << 20                # bytes read at a time
ARRAY_KINDS = "biufc"          # dtype kinds an array may have
# What a damaged zip or .npy makes the standard library raise.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError,
               NotImplementedError, OverflowError, IndexError, TypeError, SyntaxError, RecursionError)


class BoundedNpz:
    """The members of an `.npz` archive, read with the checks of the module docstring."""

    def __init__(self, path, error=InputFileError):
        self.path, self.error = path, error
        self._file = open_regular(path, error)
        try:
            self.size = file_size(self._file)
            self._unread = self.size          # compressed bytes the members may still claim
            try:
                self._zip = zipfile.ZipFile(self._file)
            except READ_ERRORS as exc:
                raise error(path, f"is not an .npz archive ({_describe(exc)})") from None
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> "BoundedNpz":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def names(self) -> list[str]:
        """Array names (members ending in .npy, without the suffix), in archive order."""
        return [n[:-4] for n in self._zip.namelist() if n.endswith(".npy")]

    def read(self, name: str) -> np.ndarray:
        """The array stored as `name`.npy (a new, writable array)."""
        member = f"{name}.npy"
        try:
            info = self._zip.getinfo(member)
        except KeyError:
            raise self._bad(f"has no member {member}") from None
        self._check_sizes(info)
        self._unread -= info.compress_size
        if self._unread < 0:
            raise self._bad(f"its members claim more bytes than the file holds ({member} overlaps another)")
        try:
            with self._zip.open(info) as fp:
                return self._read_array(fp, info)
        except InputFileError:
            raise
        except READ_ERRORS as exc:
            raise self._bad(f"member {member} cannot be read ({_describe(exc)})") from None

    # ------------------------------------------------------------------ checks
    def _bad(self, problem: str) -> InputFileError:
        return self.error(self.path, problem)

    def _check_sizes(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise self._bad(f"member {name} is stored uncompressed but declares {info.file_size} bytes "
                                f"in {info.compress_size}")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
                raise self._bad(f"member {name} declares {info.file_size} bytes from {info.compress_size} "
                                f"compressed ones, more than the {MAX_EXPANSION}x expansion allowed")
        else:
            raise self._bad(f"member {name} uses zip compression method {info.compress_type}; only stored "
                            "and deflated members are read")
        if info.header_offset + info.compress_size > self.size:
            raise self._bad(f"member {name} runs past the end of the file (truncated?)")

    def _header(self, fp, info: zipfile.ZipInfo) -> tuple:
        """(shape, fortran order, dtype) from the member's .npy header."""
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                return np.lib.format.read_array_header_1_0(fp)
            if version in ((2, 0), (3, 0)):
                return np.lib.format.read_array_header_2_0(fp)
        except Exception as exc:       # NumPy's header parser (tokenize, literal_eval) raises many kinds
            raise self._bad(f"member {info.filename} has a damaged .npy header ({_describe(exc)})") from None
        raise self._bad(f"member {info.filename} has .npy format version {version}")

    def _read_array(self, fp, info: zipfile.ZipInfo) -> np.ndarray:
        shape, fortran, dtype = self._header(fp, info)
        if dtype.kind not in ARRAY_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype:
            raise self._bad(f"member {info.filename} holds dtype {dtype}, not numbers")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        stored = info.file_size - fp.tell()
        if nbytes != stored:
            raise self._bad(f"member {info.filename} declares shape {tuple(shape)} of {dtype} ({nbytes} bytes) "
                            f"but holds {stored} bytes")
        array = np.empty(count, dtype=dtype)
        view = memoryview(array.view(np.uint8))
        offset = 0
        while offset < nbytes:
            chunk = fp.read(min(CHUNK, nbytes - offset))
            if not chunk:
                raise self._bad(f"member {info.filename} ends after {offset} of {nbytes} bytes")
            view[offset:offset + len(chunk)] = chunk
            offset += len(chunk)
        fp.read(1)                    # reach the end: zipfile checks the CRC-32 there
        return array.reshape(shape, order="F" if fortran else "C")


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
