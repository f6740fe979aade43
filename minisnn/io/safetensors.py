"""Read and write the safetensors format (no `safetensors` package needed).

    bytes 0..8        N: header length, unsigned 64-bit little-endian
    bytes 8..8+N      JSON: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
                             ..., "__metadata__": {"str": "str"}}   (padded with spaces)
    bytes 8+N..       data; tensor "name" is bytes [b, e) of this section, C-order, little-endian

The format has no code in it.  The header is read by a small parser for exactly this JSON
layout (an object of flat objects of at most MAX_ENTRY_KEYS entries, or MAX_METADATA_ITEMS for
`__metadata__`, whose lists hold at most MAX_LIST_ITEMS scalars), so a header
full of nested junk is refused at its first nested value instead of being built in memory:
parsing takes about 20 bytes of Python objects and half a microsecond per header byte at
most, and the header is at most MAX_HEADER_BYTES long (the limit of the safetensors library)
and never longer than the file.  The entry every writer produces is read by one regular
expression; anything else by the general parser.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from json.decoder import scanstring
from pathlib import Path

import numpy as np

from .dtypes import bfloat16_bits_to_float32, loaded_numpy_dtype, raw_numpy_dtype, torch_dtype_of
from .errors import CheckpointError
from .files import file_size, fs_path, open_regular
from .pickled_numpy import MAX_DIMS, MAX_ELEMENT_BYTES

# safetensors dtype code <-> torch dtype name
SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}
_CODE_OF_DTYPE = {name: code for code, name in SAFETENSORS_DTYPES.items()}
MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_LIST_ITEMS = 64         # a shape has at most MAX_DIMS numbers, data_offsets two
MAX_ENTRY_KEYS = 16         # a tensor entry has three: dtype, shape, data_offsets
MAX_METADATA_ITEMS = 65536  # __metadata__ usually holds a handful of strings
_HEADER_ALIGNMENT = 8
_SPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_CONSTANTS = {"true": True, "false": False, "null": None}
_INT = r"(?:0|[1-9][0-9]{0,19})"
# the entry every writer produces, read by one regular expression: {"dtype": .., "shape": [..], "data_offsets": [..]}
_TENSOR_ENTRY = re.compile(
    rf'\{{\s*"dtype"\s*:\s*"([A-Z0-9_]{{1,16}})"\s*,\s*"shape"\s*:\s*\[\s*({_INT}(?:\s*,\s*{_INT}){{0,63}})?\s*\]'
    rf'\s*,\s*"data_offsets"\s*:\s*\[\s*({_INT})\s*,\s*({_INT})\s*\]\s*\}}')


@dataclass(frozen=True, slots=True)
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


class _HeaderSyntaxError(ValueError):
    pass


class _HeaderParser:
    """The safetensors header: {name: {key: scalar or [scalars]}, "__metadata__": {str: str}}.

    A hand-written parser for just this shape of JSON: `entries()` yields each top-level name
    with its flat object as soon as it is read, so the caller can check it before the next.
    Strings are decoded by the json module's own scanner; names must be unique.
    """

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def fail(self, expected: str):
        found = self.text[self.pos:self.pos + 12] or "the end"
        raise _HeaderSyntaxError(f"expected {expected} at character {self.pos}, found {found!r}")

    def skip(self, char: str | None = None) -> bool:
        """Skip white space, then `char` if it is next (True if it was)."""
        self.pos = _SPACE.match(self.text, self.pos).end()
        if char is not None and self.text.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def string(self) -> str:
        if not self.skip('"'):
            self.fail("a string")
        value, self.pos = scanstring(self.text, self.pos)
        return value

    def scalar(self):
        self.skip()
        if self.text.startswith('"', self.pos):
            return self.string()
        for word, value in _CONSTANTS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return value
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            self.fail("a string, number, true, false or null")
        self.pos = match.end()
        return float(match.group()) if match.group(1) or match.group(2) else int(match.group())

    def items(self, close: str, item):
        """Comma-separated `item()`s up to `close` (the opening bracket already read)."""
        if self.skip(close):
            return
        while True:
            yield item()
            if self.skip(close):
                return
            if not self.skip(","):
                self.fail(f"',' or {close!r}")

    def pairs(self, value, limit: int | None):
        """Unique-keyed "key": value(key) pairs of an object, at most `limit`, up to its '}' (after its '{')."""
        seen = set()

        def pair():
            key = self.string()
            if key in seen:
                raise _HeaderSyntaxError(f"name {key!r} appears twice")
            if len(seen) == limit:
                raise _HeaderSyntaxError(f"an object of more than {limit} entries")
            seen.add(key)
            if not self.skip(":"):
                self.fail("':'")
            return key, value(key)
        return self.items("}", pair)

    def flat_value(self):
        if self.skip("["):
            items = []
            for item in self.items("]", self.scalar):
                if len(items) == MAX_LIST_ITEMS:
                    raise _HeaderSyntaxError(f"a list of more than {MAX_LIST_ITEMS} items")
                items.append(item)
            return items
        if self.text.startswith("{", self.pos):
            self.fail("a string, number or list of them (no nested objects)")
        return self.scalar()

    def entry_value(self, name: str):
        self.skip()
        match = _TENSOR_ENTRY.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            dims = match.group(2)
            return {"dtype": match.group(1), "shape": [int(d) for d in dims.split(",")] if dims else [],
                    "data_offsets": [int(match.group(3)), int(match.group(4))]}
        if self.skip("{"):
            limit = MAX_METADATA_ITEMS if name == "__metadata__" else MAX_ENTRY_KEYS
            return dict(self.pairs(lambda _: self.flat_value(), limit))
        return self.flat_value()

    def entries(self):
        if not self.skip("{"):
            self.fail("'{'")
        yield from self.pairs(self.entry_value, None)
        if self.skip() or self.pos != len(self.text):
            self.fail("the end of the header")


def _nonneg_ints(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


class SafetensorsReader:
    """An open .safetensors file; `load()` gives name -> SafetensorRef in data order."""

    def __init__(self, path):
        self.path = fs_path(path)
        self.file = open_regular(self.path, CheckpointError)
        try:
            self.refs, self.metadata, self.data_start = self._parse_header()
        except BaseException:
            self.file.close()
            raise

    def _fail(self, problem: str):
        raise CheckpointError(self.path, f"invalid safetensors file: {problem}")

    def _parse_header(self):
        size = file_size(self.file)
        head = self.file.read(8)
        if len(head) < 8:
            self._fail("shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            self._fail(f"header length {n} exceeds the file size {size} (truncated?)")
        if n > MAX_HEADER_BYTES:
            self._fail(f"header length {n} is more than the {MAX_HEADER_BYTES} bytes allowed")
        try:
            text = self.file.read(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            self._fail(f"header is not valid UTF-8 JSON with unique names ({exc})")
        data_len = size - 8 - n
        refs, metadata = [], {}
        try:
            for name, info in _HeaderParser(text).entries():
                if name == "__metadata__":
                    if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                        self._fail("__metadata__ must map strings to strings")
                    metadata = info
                else:
                    refs.append(self._tensor_ref(name, info, data_len))
        except CheckpointError:
            raise
        except ValueError as exc:  # _HeaderSyntaxError, or json's string scanner
            self._fail(f"header is not valid UTF-8 JSON with unique names ({exc})")
        refs.sort(key=lambda r: (r.begin, r.end))
        for a, b in zip(refs, refs[1:]):
            if b.begin < a.end:
                self._fail(f"tensors '{a.name}' and '{b.name}' overlap")
        return OrderedDict((r.name, r) for r in refs), metadata, 8 + n

    def _tensor_ref(self, name: str, info, data_len: int) -> SafetensorRef:
        if not isinstance(info, dict):
            self._fail(f"entry '{name}' is not a JSON object")
        code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(code, str) or code not in SAFETENSORS_DTYPES:
            self._fail(f"tensor '{name}' has unsupported dtype {code!r}; supported: {', '.join(SAFETENSORS_DTYPES)}")
        if not _nonneg_ints(shape) or not _nonneg_ints(offsets) or len(offsets) != 2:
            self._fail(f"tensor '{name}' needs a shape list and two data_offsets")
        itemsize = raw_numpy_dtype(SAFETENSORS_DTYPES[code]).itemsize
        if len(shape) > MAX_DIMS or math.prod(max(d, 1) for d in shape) * itemsize >= MAX_ELEMENT_BYTES:
            self._fail(f"tensor '{name}' has shape {shape}, beyond what an array can hold")
        ref = SafetensorRef(name, SAFETENSORS_DTYPES[code], tuple(shape), *offsets)
        nbytes = ref.numel * itemsize
        if ref.end - ref.begin != nbytes or ref.begin > ref.end:
            self._fail(f"tensor '{name}' spans {ref.end - ref.begin} bytes, its shape needs {nbytes}")
        if ref.end > data_len:
            self._fail(f"tensor '{name}' ends at byte {ref.end} of a {data_len}-byte data section (truncated?)")
        return ref

    def load(self) -> "OrderedDict[str, SafetensorRef]":
        return OrderedDict(self.refs)

    def read_tensors(self, refs: list[SafetensorRef]) -> list[np.ndarray]:
        arrays = []
        for ref in refs:
            self.file.seek(self.data_start + ref.begin)
            raw = bytearray(ref.end - ref.begin)  # inside the file: checked when the header was read
            if self.file.readinto(raw) != len(raw):
                self._fail(f"tensor '{ref.name}' is cut short (truncated file)")
            flat = np.frombuffer(raw, dtype=raw_numpy_dtype(ref.dtype))  # a writeable array of its own
            if not flat.dtype.isnative:
                flat = flat.byteswap(inplace=True).view(flat.dtype.newbyteorder("="))
            array = flat.reshape(ref.shape)
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
    path = Path(fs_path(path))
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
