"""Write `data.pkl` for a torch zip checkpoint, opcode by opcode, without importing torch.

The stdlib pickler can only name globals it can import, and torch is not importable
here, so the few opcodes torch needs are emitted by hand (pickle protocol 2, the
protocol torch.save uses).  A NumPy array becomes what torch.save would write for a
contiguous tensor:

    torch._utils._rebuild_tensor_v2(
        persistent_id(('storage', torch.FloatStorage, '<key>', 'cpu', numel)),
        0, shape, stride, False, collections.OrderedDict())

and its bytes become the zip record `<archive>/data/<key>` (see format.md).
"""
from __future__ import annotations

import struct
from collections import OrderedDict

import numpy as np

from .dtypes import TORCH_DTYPES, torch_dtype_of

# pickle opcodes (names as in the stdlib `pickle` module)
PROTO, STOP = b"\x80", b"."
MARK, TUPLE, EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"(", b"t", b")", b"\x85", b"\x86", b"\x87"
EMPTY_LIST, APPENDS, EMPTY_DICT, SETITEMS = b"]", b"e", b"}", b"u"
GLOBAL, REDUCE, BINPERSID = b"c", b"R", b"Q"
NONE, NEWTRUE, NEWFALSE = b"N", b"\x88", b"\x89"
BININT1, BININT2, BININT, LONG1, BINFLOAT, BINUNICODE = b"K", b"M", b"J", b"\x8a", b"G", b"X"


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides in elements, as torch computes them (size-0 dims count as 1)."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class TorchPickleWriter:
    """Serialise plain containers and arrays; `dumps(obj) -> (pickle bytes, [(key, array)])`.

    Supported: dict/OrderedDict (str or int keys), list, tuple, str, int, float, bool,
    None, NumPy scalars (as Python numbers) and arrays of any dtype in `TORCH_DTYPES`
    except bfloat16.  Each array gets its own storage record, stored little-endian C-order.
    """

    def __init__(self):
        self.out = bytearray()
        self.storages: list[tuple[str, np.ndarray]] = []

    def dumps(self, obj) -> tuple[bytes, list[tuple[str, np.ndarray]]]:
        self.out += PROTO + b"\x02"
        self.save(obj)
        self.out += STOP
        return bytes(self.out), self.storages

    # ------------------------------------------------------------ values
    def save(self, obj) -> None:
        if obj is None:
            self.out += NONE
        elif isinstance(obj, (bool, np.bool_)):
            self.out += NEWTRUE if obj else NEWFALSE
        elif isinstance(obj, (int, np.integer)):
            self.save_int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            self.out += BINFLOAT + struct.pack(">d", float(obj))
        elif isinstance(obj, str):
            self.save_str(obj)
        elif isinstance(obj, np.ndarray):
            self.save_array(obj)
        elif isinstance(obj, tuple):
            self.save_tuple(obj)
        elif isinstance(obj, list):
            self.out += EMPTY_LIST
            if obj:
                self.out += MARK
                for item in obj:
                    self.save(item)
                self.out += APPENDS
        elif isinstance(obj, dict):
            self.save_dict(obj)
        else:
            raise TypeError(
                f"cannot save a value of type {type(obj).__name__} in a torch checkpoint: expected "
                "arrays, dict, list, tuple, str, int, float, bool or None"
            )

    def save_int(self, value: int) -> None:
        if 0 <= value < 256:
            self.out += BININT1 + bytes([value])
        elif 0 <= value < 65536:
            self.out += BININT2 + struct.pack("<H", value)
        elif -(2**31) <= value < 2**31:
            self.out += BININT + struct.pack("<i", value)
        else:  # little-endian two's complement, length-prefixed
            n = (value.bit_length() + 8) // 8
            self.out += LONG1 + bytes([n]) + value.to_bytes(n, "little", signed=True)

    def save_str(self, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        self.out += BINUNICODE + struct.pack("<I", len(data)) + data

    def save_global(self, module: str, name: str) -> None:
        self.out += GLOBAL + module.encode() + b"\n" + name.encode() + b"\n"

    def save_tuple(self, items) -> None:
        items = tuple(items)
        if not items:
            self.out += EMPTY_TUPLE
            return
        if len(items) > 3:
            self.out += MARK
        for item in items:
            self.save(item)
        self.out += {1: TUPLE1, 2: TUPLE2, 3: TUPLE3}.get(len(items), TUPLE)

    def save_dict(self, mapping: dict) -> None:
        if isinstance(mapping, OrderedDict):
            self.save_global("collections", "OrderedDict")
            self.out += EMPTY_TUPLE + REDUCE
        else:
            self.out += EMPTY_DICT
        if not mapping:
            return
        self.out += MARK
        for key, value in mapping.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"checkpoint dict keys must be str or int, got {key!r}")
            self.save(key)
            self.save(value)
        self.out += SETITEMS

    # ----------------------------------------------------------- tensors
    def save_array(self, array: np.ndarray) -> None:
        dtype = torch_dtype_of(array.dtype)
        data = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")  # keeps 0-d shape
        key = str(len(self.storages))
        self.storages.append((key, data))
        storage_class = TORCH_DTYPES[dtype].storage_class
        new_style = storage_class is None  # uint16/32/64: untyped storage + explicit dtype
        self.save_global("torch._utils", "_rebuild_tensor_v3" if new_style else "_rebuild_tensor_v2")
        self.out += MARK
        # persistent id: ('storage', storage type, key, location, numel)
        self.out += MARK
        self.save_str("storage")
        if new_style:
            self.save_global("torch.storage", "UntypedStorage")
        else:
            self.save_global("torch", storage_class)
        self.save_str(key)
        self.save_str("cpu")
        self.save_int(data.nbytes if new_style else data.size)
        self.out += TUPLE + BINPERSID
        self.save_int(0)  # storage offset
        self.save_tuple(data.shape)
        self.save_tuple(contiguous_strides(data.shape))
        self.out += NEWFALSE  # requires_grad
        self.save_global("collections", "OrderedDict")  # backward hooks: always empty
        self.out += EMPTY_TUPLE + REDUCE
        if new_style:
            self.save_global("torch", dtype)
        self.out += TUPLE + REDUCE
