"""Read and write the zip checkpoint format of `torch.save` (torch >= 1.6) without torch.

Layout (details in format.md):

    <archive>/data.pkl        pickle of the saved object; tensors are persistent ids
    <archive>/data/<key>      raw bytes of one storage, 64-byte aligned in the file
    <archive>/byteorder       "little" or "big" (absent in old files: little)
    <archive>/version         format version, "3\n"

    with TorchZipReader(path) as reader:
        tree = reader.load()                   # tensors as lazy TensorRef
        arrays = reader.read_tensors(refs)     # -> np.ndarray, bfloat16 widened to float32
"""
from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from .dtypes import TORCH_DTYPES, bfloat16_bits_to_float32, itemsize, loaded_numpy_dtype, raw_numpy_dtype
from .errors import CheckpointError
from .files import file_size, fs_path, open_regular
from .pickle_writer import TorchPickleWriter
from .unpickler import TensorRef, load_pickle, resolve, tensor_refs

ALIGNMENT = 64          # torch aligns the start of every record's data to 64 bytes
ARCHIVE_NAME = "archive"
MAX_EXPANSION = 100     # the records may declare at most this many times the file's size in total
COPY_SLACK = 16 << 20   # copies of views may exceed the storage bytes they come from by this much
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                    NotImplementedError, RuntimeError, struct.error, zlib.error)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (version .. sizes), name length, extra length


class TorchZipReader:
    """An open torch zip checkpoint.  Raises CheckpointError for anything that is not one.

    Memory stays in proportion to the file: the records may declare at most MAX_EXPANSION
    times the file's size, a stored record is read only if its bytes are really there, a
    compressed one is inflated in steps and never past its declared size, and the tensors a
    read returns (views of shared storages copied out) may exceed the storage bytes they
    come from by at most COPY_SLACK.
    """

    def __init__(self, path):
        self.path = fs_path(path)
        self.file = open_regular(self.path, CheckpointError)
        try:
            self.size = file_size(self.file)
            self.zip = zipfile.ZipFile(self.file)
        except _ZIP_READ_ERRORS as exc:
            self.file.close()
            raise CheckpointError(self.path, f"not a readable zip archive (truncated or corrupt: {exc})") from None
        except BaseException:
            self.file.close()
            raise
        try:
            self._check_sizes()
            names = self.zip.namelist()
            self.prefix = self._find_prefix(names)
            self.byteorder = "little"
            if f"{self.prefix}byteorder" in names:
                order = self._read(f"{self.prefix}byteorder").decode("ascii", "replace").strip()
                if order not in ("little", "big"):
                    raise CheckpointError(self.path, f"unknown byteorder record {order!r}")
                self.byteorder = order
        except BaseException:
            self.close()
            raise

    def _check_sizes(self) -> None:
        infos = self.zip.infolist()
        stored = sum(info.compress_size for info in infos)
        declared = sum(info.file_size for info in infos)
        if stored > self.size or declared > MAX_EXPANSION * self.size:
            raise CheckpointError(
                self.path, f"its zip records declare {declared} bytes ({stored} compressed) in a file of "
                f"{self.size} bytes; at most {MAX_EXPANSION} times the file's size is read")

    def _find_prefix(self, names: list[str]) -> str:
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if any(n.endswith("/constants.pkl") for n in names) or any("/code/" in n for n in names):
            raise CheckpointError(
                self.path, "is a TorchScript archive (torch.jit.save), which holds code; save the "
                "weights with torch.save(model.state_dict(), path) instead")
        if not pickles:
            if names and all(n.endswith(".npy") for n in names):
                raise CheckpointError(self.path, "is a NumPy .npz archive, not a torch checkpoint; "
                                      "load it with numpy.load")
            raise CheckpointError(self.path, "is a zip archive without a '<name>/data.pkl' record, "
                                  "so it is not a torch.save checkpoint")
        return pickles[0][: -len("data.pkl")]

    def _read(self, name: str) -> bytearray:
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise CheckpointError(
                self.path, f"missing record '{name}' referenced by data.pkl (file truncated or corrupt)"
            ) from None
        try:
            if info.flag_bits & 0x1:
                raise NotImplementedError("it is encrypted")
            if info.compress_type == zipfile.ZIP_STORED:
                return self._read_stored(info)
            if info.compress_type == zipfile.ZIP_DEFLATED:
                return self._read_deflated(info)
            raise NotImplementedError(f"compression method {info.compress_type} is not read; only stored "
                                      "and deflated records are")
        except _ZIP_READ_ERRORS as exc:
            raise CheckpointError(self.path, f"record '{name}' is corrupt or unsupported ({exc})") from None

    def _read_stored(self, info: zipfile.ZipInfo) -> bytearray:
        """The bytes of a stored record, read straight into a buffer of exactly their size.

        The CRC is checked unless the field is 0: torch writes 0 when its CRC option is off
        (torch.serialization.set_crc32_options(False)), and then there is nothing to check.
        """
        self.file.seek(info.header_offset)
        header = self.file.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise EOFError(f"local header of {info.filename!r} is cut short")
        signature, name_len, extra_len = _LOCAL_HEADER.unpack(header)
        name = self.file.read(name_len).decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace")
        if signature != b"PK\x03\x04" or name != info.orig_filename:
            raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
        start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        if info.file_size != info.compress_size or start + info.file_size > self.size:
            raise EOFError(f"record {info.filename!r} declares {info.file_size} bytes but the file holds "
                           f"{max(0, self.size - start)} after its header")
        data = bytearray(info.file_size)
        self.file.seek(start)
        if self.file.readinto(data) != len(data):
            raise EOFError(f"record {info.filename!r} is cut short")
        if info.CRC != 0 and zlib.crc32(data) != info.CRC:
            raise zipfile.BadZipFile(f"bad CRC-32 for {info.filename!r}")
        return data

    def _read_deflated(self, info: zipfile.ZipInfo) -> bytearray:
        """Inflate in 1 MiB steps; zipfile stops at the declared size and checks the CRC there."""
        data = bytearray()
        with self.zip.open(info) as stream:
            while chunk := stream.read(1 << 20):
                data += chunk
        if len(data) != info.file_size:
            raise EOFError(f"record {info.filename!r} is cut short")
        return data

    # ------------------------------------------------------------ reading
    def load(self):
        """The unpickled object; tensors are TensorRef (no tensor data is read yet)."""
        return load_pickle(self._read(f"{self.prefix}data.pkl"), self.path)

    def read_tensors(self, refs: list[TensorRef]) -> list[np.ndarray]:
        """Arrays for `refs` (same order): each its own C-contiguous, writeable array.

        Storage sizes are checked against the zip before anything is read; each storage
        record is then read once and released after its last tensor.  A tensor that is the
        only one of its storage and covers it whole in C order is that storage's buffer, no
        copy; other views are copied out, at most the storages' bytes + COPY_SLACK in total.
        """
        users = Counter(ref.storage.key for ref in refs)
        uses = Counter(users)
        stored = sum(self._storage_nbytes(ref) for ref in {ref.storage.key: ref for ref in refs}.values())
        copied = 0
        cache: dict[str, bytearray] = {}
        arrays = []
        for ref in refs:
            key = ref.storage.key
            if key not in cache:
                cache[key] = self._read(f"{self.prefix}data/{key}")
            flat = self._elements(cache[key], ref)
            array = _whole_storage(flat, ref) if users[key] == 1 else None
            if array is None:
                copied += ref.numel * loaded_numpy_dtype(ref.dtype).itemsize
                if copied > stored + COPY_SLACK:
                    raise CheckpointError(
                        self.path, f"its tensor views (the one at offset {ref.offset}, shape {ref.shape}, stride "
                        f"{ref.stride}, and those before it) would copy more than the {stored} bytes of tensor "
                        f"data it stores + {COPY_SLACK >> 20} MiB; stride-0 or overlapping views this large "
                        "are refused")
                array = _copy_out(flat, ref)
            arrays.append(array)
            uses[key] -= 1
            if uses[key] == 0:
                del cache[key]
        return arrays

    def _storage_nbytes(self, ref: TensorRef) -> int:
        """Bytes of `ref`'s storage as loaded (bfloat16 widens to 4), once checked against its zip record."""
        storage, name = ref.storage, f"{self.prefix}data/{ref.storage.key}"
        expected = storage.numel * (itemsize(storage.dtype) if storage.dtype else 1)
        try:
            actual = self.zip.getinfo(name).file_size
        except KeyError:
            raise CheckpointError(
                self.path, f"missing record '{name}' referenced by data.pkl (file truncated or corrupt)") from None
        if actual != expected:
            raise CheckpointError(
                self.path, f"data record '{storage.key}' has {actual} bytes but data.pkl declares "
                f"{expected} (file truncated or corrupt)")
        return expected * (2 if ref.dtype == "bfloat16" else 1)

    def _elements(self, raw: bytearray, ref: TensorRef) -> np.ndarray:
        """The storage as a flat array of `ref`'s element type, once `ref` is checked to lie inside it."""
        if ref.dtype not in TORCH_DTYPES:
            raise CheckpointError(self.path, f"tensor dtype torch.{ref.dtype} is not supported")
        dtype = raw_numpy_dtype(ref.dtype, self.byteorder)
        if len(raw) % dtype.itemsize:
            raise CheckpointError(self.path, f"storage '{ref.storage.key}' is not a whole number of "
                                  f"{ref.dtype} elements")
        flat = np.frombuffer(raw, dtype=dtype)
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
        if ref.numel and last >= flat.size:
            raise CheckpointError(
                self.path, f"tensor (offset {ref.offset}, shape {ref.shape}, stride {ref.stride}) reaches "
                f"element {last} of storage '{ref.storage.key}', which has only {flat.size}")
        return flat

    def close(self) -> None:
        self.zip.close()
        self.file.close()

    def __enter__(self) -> "TorchZipReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _whole_storage(flat: np.ndarray, ref: TensorRef) -> np.ndarray | None:
    """The storage buffer itself as `ref` (byte-swapped in place if need be), if `ref` covers it whole in
    C order; else None.  The buffer is a bytearray read for this load, so the array is writeable and its own."""
    if ref.dtype == "bfloat16" or ref.offset or ref.numel != flat.size or ref.numel == 0:
        return None
    step = 1
    for n, s in zip(reversed(ref.shape), reversed(ref.stride)):
        if n != 1 and s != step:
            return None
        step *= n
    if not flat.dtype.isnative:
        flat = flat.byteswap(inplace=True).view(flat.dtype.newbyteorder("="))
    return flat.reshape(ref.shape)


def _copy_out(flat: np.ndarray, ref: TensorRef) -> np.ndarray:
    """A C-contiguous native copy of the strided view `ref` (bfloat16 widened to float32)."""
    if ref.numel == 0:
        return np.empty(ref.shape, dtype=loaded_numpy_dtype(ref.dtype))
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset:], ref.shape, [s * flat.itemsize for s in ref.stride], writeable=False)
    array = np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")
    if ref.dtype == "bfloat16":
        array = bfloat16_bits_to_float32(array)
    assert array.dtype == loaded_numpy_dtype(ref.dtype)
    return array


def read_torch_zip(path):
    """Everything in a torch.save zip file, tensors as np.ndarray, without torch or code execution.

    argparse.Namespace objects come back as dicts, bfloat16 tensors as float32.
    Raises CheckpointError (UnsafeCheckpointError for disallowed globals).
    """
    with TorchZipReader(path) as reader:
        tree = reader.load()
        refs = tensor_refs(tree)
        arrays = dict(zip(map(id, refs), reader.read_tensors(refs)))
        return resolve(tree, lambda ref: arrays[id(ref)])


# ---------------------------------------------------------------- writing
def _aligned_extra(header_offset: int, name: str, zip64: bool) -> bytes:
    """Local-header extra field that pads the record data to an ALIGNMENT boundary.

    Local header = 30 fixed bytes + name + extra (+ 20 for the zip64 sizes zipfile adds).
    """
    start = header_offset + 30 + len(name.encode()) + (20 if zip64 else 0) + 4
    pad = -start % ALIGNMENT
    return b"FB" + pad.to_bytes(2, "little") + b"Z" * pad


def _write_record(zf: zipfile.ZipFile, name: str, data) -> None:
    payload = memoryview(data.reshape(-1).view(np.uint8) if isinstance(data, np.ndarray) else data)
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = payload.nbytes
    zip64 = payload.nbytes * 1.05 > zipfile.ZIP64_LIMIT
    info.extra = _aligned_extra(zf.fp.tell(), name, zip64)
    with zf.open(info, "w", force_zip64=zip64) as out:
        out.write(payload)


def write_torch_zip(obj, path) -> None:
    """Write `obj` (state dict or plain containers holding np.ndarray) as a torch.save zip.

    `torch.load(path, weights_only=True)` returns the same structure with tensors equal
    bit for bit.  The file is written to a temporary name and renamed into place.
    """
    data_pkl, storages = TorchPickleWriter().dumps(obj)
    path = Path(fs_path(path))
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_record(zf, f"{ARCHIVE_NAME}/data.pkl", data_pkl)
            _write_record(zf, f"{ARCHIVE_NAME}/.format_version", b"1")
            _write_record(zf, f"{ARCHIVE_NAME}/.storage_alignment", str(ALIGNMENT).encode())
            _write_record(zf, f"{ARCHIVE_NAME}/byteorder", b"little")
            for key, array in storages:
                _write_record(zf, f"{ARCHIVE_NAME}/data/{key}", array)
            _write_record(zf, f"{ARCHIVE_NAME}/version", b"3\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
