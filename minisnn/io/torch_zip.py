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
from .pickle_writer import TorchPickleWriter
from .unpickler import TensorRef, load_pickle, resolve, tensor_refs

ALIGNMENT = 64          # torch aligns the start of every record's data to 64 bytes
ARCHIVE_NAME = "archive"
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                    NotImplementedError, RuntimeError, struct.error, zlib.error)


class TorchZipReader:
    """An open torch zip checkpoint.  Raises CheckpointError for anything that is not one."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self.zip = zipfile.ZipFile(self.path)
        except _ZIP_READ_ERRORS as exc:
            raise CheckpointError(self.path, f"not a readable zip archive (truncated or corrupt: {exc})") from exc
        names = self.zip.namelist()
        self.prefix = self._find_prefix(names)
        self.byteorder = "little"
        if f"{self.prefix}byteorder" in names:
            order = self._read(f"{self.prefix}byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise CheckpointError(self.path, f"unknown byteorder record {order!r}")
            self.byteorder = order

    def _find_prefix(self, names: list[str]) -> str:
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if any(n.endswith("/constants.pkl") for n in names) or any("/code/" in n for n in names):
            raise CheckpointError(
                self.path, "is a TorchScript archive (torch.jit.save), which holds code; save the "
                "weights with torch.save(model.state_dict(), path) instead")
        if not pickles:
            self.zip.close()
            if names and all(n.endswith(".npy") for n in names):
                raise CheckpointError(self.path, "is a NumPy .npz archive, not a torch checkpoint; "
                                      "load it with numpy.load")
            raise CheckpointError(self.path, "is a zip archive without a '<name>/data.pkl' record, "
                                  "so it is not a torch.save checkpoint")
        return pickles[0][: -len("data.pkl")]

    def _read(self, name: str) -> bytes:
        try:
            info = self.zip.getinfo(name)
            if info.CRC == 0 and info.file_size and info.compress_type == zipfile.ZIP_STORED:
                return self._read_without_crc(info)
            return self.zip.read(info)
        except KeyError:
            raise CheckpointError(
                self.path, f"missing record '{name}' referenced by data.pkl (file truncated or corrupt)"
            ) from None
        except _ZIP_READ_ERRORS as exc:
            raise CheckpointError(self.path, f"record '{name}' is corrupt ({exc})") from exc

    def _read_without_crc(self, info: zipfile.ZipInfo) -> bytes:
        """A stored record whose CRC field is 0: torch writes these when its CRC option is
        off (torch.serialization.set_crc32_options(False)), so there is nothing to check."""
        fp = self.zip.fp
        fp.seek(info.header_offset)
        header = fp.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        fp.seek(info.header_offset + 30 + name_len + extra_len)
        data = fp.read(info.compress_size)
        if len(data) != info.compress_size:
            raise EOFError(f"record {info.filename!r} is cut short")
        return data

    # ------------------------------------------------------------ reading
    def load(self):
        """The unpickled object; tensors are TensorRef (no tensor data is read yet)."""
        return load_pickle(self._read(f"{self.prefix}data.pkl"), self.path)

    def read_tensors(self, refs: list[TensorRef]) -> list[np.ndarray]:
        """Arrays for `refs` (same order).  Each storage record is read once, then released."""
        uses = Counter(ref.storage.key for ref in refs)
        cache: dict[str, bytes] = {}
        arrays = []
        for ref in refs:
            key = ref.storage.key
            if key not in cache:
                cache[key] = self._read_storage(ref)
            arrays.append(self._view(cache[key], ref))
            uses[key] -= 1
            if uses[key] == 0:
                del cache[key]
        return arrays

    def _read_storage(self, ref: TensorRef) -> bytes:
        storage = ref.storage
        raw = self._read(f"{self.prefix}data/{storage.key}")
        expected = storage.numel * (itemsize(storage.dtype) if storage.dtype else 1)
        if len(raw) != expected:
            raise CheckpointError(
                self.path, f"data record '{storage.key}' has {len(raw)} bytes but data.pkl declares "
                f"{expected} (file truncated or corrupt)")
        return raw

    def _view(self, raw: bytes, ref: TensorRef) -> np.ndarray:
        """Copy out the strided view `ref` of one storage as a C-contiguous native array."""
        if ref.dtype not in TORCH_DTYPES:
            raise CheckpointError(self.path, f"tensor dtype torch.{ref.dtype} is not supported")
        dtype = raw_numpy_dtype(ref.dtype, self.byteorder)
        if len(raw) % dtype.itemsize:
            raise CheckpointError(self.path, f"storage '{ref.storage.key}' is not a whole number of "
                                  f"{ref.dtype} elements")
        flat = np.frombuffer(raw, dtype=dtype)
        if 0 in ref.shape:
            view = np.empty(ref.shape, dtype=dtype)
        else:
            last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
            if last >= flat.size:
                raise CheckpointError(
                    self.path, f"tensor (offset {ref.offset}, shape {ref.shape}, stride {ref.stride}) reaches "
                    f"element {last} of storage '{ref.storage.key}', which has only {flat.size}")
            view = np.lib.stride_tricks.as_strided(
                flat[ref.offset:], ref.shape, [s * dtype.itemsize for s in ref.stride], writeable=False)
        array = np.array(view, dtype=dtype.newbyteorder("="), order="C")
        if ref.dtype == "bfloat16":
            array = bfloat16_bits_to_float32(array)
        assert array.dtype == loaded_numpy_dtype(ref.dtype)
        return array

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> "TorchZipReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    path = Path(path)
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
