"""Read and write the safetensors format (no `safetensors` package needed).

    bytes 0..8        N: header length, unsigned 64-bit little-endian
    bytes 8..8+N      JSON: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
                             ..., "__metadata__": {"str": "str"}}   (padded with spaces)
    bytes 8+N..       data; tensor "name" is bytes [b, e) of this section, C-order, little-endian

The format has no code in it, so reading it is safe by construction.
"""
from __future__ import annotations

import json
import math
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dtypes import bfloat16_bits_to_float32, loaded_numpy_dtype, raw_numpy_dtype, torch_dtype_of
from .errors import CheckpointError

# safetensors dtype code <-> torch dtype name
SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}
_CODE_OF_DTYPE = {name: code for code, name in SAFETENSORS_DTYPES.items()}
MAX_HEADER_BYTES = 100 * 1024 * 1024
_HEADER_ALIGNMENT = 8


@dataclass(frozen=True)
class SafetensorRef:
    """Where one tensor lives in the data section: bytes [begin, end)."""
    name: str
    dtype: str  # torch dtype name, e.g. "bfloat16"
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a name appears twice")
    return dict(pairs)


def _nonneg_ints(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


class SafetensorsReader:
    """An open .safetensors file; `load()` gives name -> SafetensorRef in data order."""

    def __init__(self, path):
        self.path = str(path)
        self.file = open(self.path, "rb")
        try:
            self.refs, self.metadata, self.data_start = self._parse_header()
        except BaseException:
            self.file.close()
            raise

    def _fail(self, problem: str):
        raise CheckpointError(self.path, f"invalid safetensors file: {problem}")

    def _parse_header(self):
        size = os.fstat(self.file.fileno()).st_size
        head = self.file.read(8)
        if len(head) < 8:
            self._fail("shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER_BYTES):
            self._fail(f"header length {n} exceeds the file size {size} (truncated?)")
        try:
            entries = json.loads(self.file.read(n).decode("utf-8"), object_pairs_hook=_unique_keys)
        except (UnicodeDecodeError, ValueError) as exc:
            self._fail(f"header is not valid UTF-8 JSON with unique names ({exc})")
        if not isinstance(entries, dict):
            self._fail("header is not a JSON object")
        data_len = size - 8 - n
        refs, metadata = [], {}
        for name, info in entries.items():
            if name == "__metadata__":
                if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                    self._fail("__metadata__ must map strings to strings")
                metadata = info
                continue
            if not isinstance(info, dict):
                self._fail(f"entry '{name}' is not a JSON object")
            code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
            if not isinstance(code, str) or code not in SAFETENSORS_DTYPES:
                self._fail(f"tensor '{name}' has unsupported dtype {code!r}; supported: {', '.join(SAFETENSORS_DTYPES)}")
            if not _nonneg_ints(shape) or not _nonneg_ints(offsets) or len(offsets) != 2:
                self._fail(f"tensor '{name}' needs a shape list and two data_offsets")
            ref = SafetensorRef(name, SAFETENSORS_DTYPES[code], tuple(shape), *offsets)
            nbytes = ref.numel * raw_numpy_dtype(ref.dtype).itemsize
            if ref.end - ref.begin != nbytes or ref.begin > ref.end:
                self._fail(f"tensor '{name}' spans {ref.end - ref.begin} bytes, its shape needs {nbytes}")
            if ref.end > data_len:
                self._fail(f"tensor '{name}' ends at byte {ref.end} of a {data_len}-byte data section (truncated?)")
            refs.append(ref)
        refs.sort(key=lambda r: (r.begin, r.end))
        for a, b in zip(refs, refs[1:]):
            if b.begin < a.end:
                self._fail(f"tensors '{a.name}' and '{b.name}' overlap")
        return OrderedDict((r.name, r) for r in refs), metadata, 8 + n

    def load(self) -> "OrderedDict[str, SafetensorRef]":
        return OrderedDict(self.refs)

    def read_tensors(self, refs: list[SafetensorRef]) -> list[np.ndarray]:
        arrays = []
        for ref in refs:
            self.file.seek(self.data_start + ref.begin)
            raw = self.file.read(ref.end - ref.begin)
            if len(raw) != ref.end - ref.begin:
                self._fail(f"tensor '{ref.name}' is cut short (truncated file)")
            flat = np.frombuffer(raw, dtype=raw_numpy_dtype(ref.dtype))
            array = flat.astype(flat.dtype.newbyteorder("=")).reshape(ref.shape)
            if ref.dtype == "bfloat16":
                array = bfloat16_bits_to_float32(array)
            assert array.dtype == loaded_numpy_dtype(ref.dtype)
            arrays.append(array)
        return arrays

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "SafetensorsReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_safetensors(path) -> "OrderedDict[str, np.ndarray]":
    """All tensors of a .safetensors file in data order (BF16 widened to float32)."""
    with SafetensorsReader(path) as reader:
        refs = list(reader.refs.values())
        return OrderedDict(zip(reader.refs, reader.read_tensors(refs)))


def read_safetensors_metadata(path) -> dict[str, str]:
    """The optional `__metadata__` string map of a .safetensors file."""
    with SafetensorsReader(path) as reader:
        return dict(reader.metadata)


def write_safetensors(state_dict, path, metadata: dict[str, str] | None = None) -> None:
    """Write name -> array as .safetensors (tensors in the given order, header padded to 8 bytes)."""
    header: dict[str, object] = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    arrays, offset = [], 0
    for name, value in state_dict.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise TypeError(f"safetensors tensor names must be strings other than '__metadata__', got {name!r}")
        array = np.asarray(value)
        code = _CODE_OF_DTYPE.get(torch_dtype_of(array.dtype))
        if code is None:
            raise TypeError(f"tensor '{name}': dtype {array.dtype} cannot be stored in safetensors")
        array = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")  # keeps 0-d shape
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        arrays.append(array)
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % _HEADER_ALIGNMENT)
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for array in arrays:
                f.write(memoryview(array.reshape(-1).view(np.uint8)))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
