"""A restricted unpickler for `data.pkl` in torch checkpoints: it rebuilds data, never runs code.

A pickle is a small program: GLOBAL names a Python object by `module.name` and
REDUCE calls it.  Stock `pickle.load` will happily call `os.system`.  This unpickler
answers every GLOBAL from a fixed allow-list of harmless stand-ins written here, so
nothing is imported and nothing from the file is called:

    torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) -> TensorRef
    persistent id ('storage', torch.FloatStorage, key, location, numel)  -> StorageRef
    argparse.Namespace                                                    -> PickledNamespace

Tensors come back as lazy `TensorRef`s (where the elements are, not the elements);
the zip reader turns the ones it needs into arrays.  Anything not on the list raises
`UnsafeCheckpointError` naming the global.
"""
from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .dtypes import STORAGE_CLASS_TO_DTYPE, TORCH_DTYPES, UNSUPPORTED_TORCH_DTYPES
from .errors import CheckpointError, UnsafeCheckpointError


# ----------------------------------------------------------------- stand-in values
@dataclass(frozen=True, slots=True)
class TorchDType:
    """Stand-in for a `torch.<dtype>` object, e.g. TorchDType("float16")."""
    name: str

    def __str__(self) -> str:
        return f"torch.{self.name}"


@dataclass(frozen=True, slots=True)
class StorageType:
    """Stand-in for `torch.FloatStorage` & co.; dtype None means `torch.UntypedStorage` (bytes)."""
    dtype: str | None

    def __str__(self) -> str:
        return f"torch storage of {self.dtype or 'bytes'}"


@dataclass(frozen=True, slots=True)
class StorageRef:
    """One storage record `<archive>/data/<key>`: `numel` elements of `dtype` (None: bytes)."""
    key: str
    dtype: str | None
    numel: int
    location: str


@dataclass(frozen=True, slots=True)
class TensorRef:
    """A strided view into a storage: element [i, j, ...] sits at offset + i*stride[0] + j*stride[1] + ..."""
    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, slots=True)
class _TypeMarker:
    """Stand-in for the classes `torch.Tensor` / `torch.nn.parameter.Parameter`."""
    name: str

    def __str__(self) -> str:
        return self.name


TENSOR_TYPE = _TypeMarker("torch.Tensor")
PARAMETER_TYPE = _TypeMarker("torch.nn.parameter.Parameter")
NDARRAY_TYPE = _TypeMarker("numpy.ndarray")


class PickledNamespace:
    """Inert stand-in for `argparse.Namespace`: BUILD stores its attributes in `fields`."""
    __slots__ = ("fields",)

    def __init__(self):
        self.fields = {}

    def __setstate__(self, state):
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise TypeError("argparse.Namespace state must be a dict with string keys")
        self.fields = dict(state)


class PickledNumpyDType:
    """Stand-in for `numpy.dtype(code)` limited to bool/int/uint/float/complex codes."""
    __slots__ = ("code", "byteorder")
    _CODE = re.compile(r"^(b1|[iuf](1|2|4|8)|c(8|16))$")

    def __init__(self, code, align=False, copy=True):
        if not isinstance(code, str) or not self._CODE.match(code):
            raise TypeError(f"numpy dtype {code!r} is not a plain numeric dtype")
        self.code, self.byteorder = code, "="

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise TypeError("malformed numpy dtype state")
        self.byteorder = state[1]

    def to_numpy(self) -> np.dtype:
        return np.dtype(self.code).newbyteorder(self.byteorder if self.byteorder != "|" else "=")

    def __str__(self) -> str:
        return str(np.dtype(getattr(self, "code", "V0")))


class PickledNumpyArray:
    """Stand-in for an ndarray built by `numpy.core.multiarray._reconstruct` + BUILD."""
    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5:
            raise TypeError("malformed numpy array state")
        _version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, PickledNumpyDType) or not isinstance(raw, bytes):
            raise TypeError("numpy array state needs a numeric dtype and raw bytes")
        shape = _int_tuple(shape, "numpy array shape")
        dt = dtype.to_numpy()
        if len(raw) != math.prod(shape) * dt.itemsize:
            raise ValueError("numpy array data does not match its shape")
        flat = np.frombuffer(raw, dtype=dt)
        self.array = flat.reshape(shape, order="F" if fortran else "C").astype(dt.newbyteorder("="))


# -------------------------------------------------------- stand-in callables
def _int_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise TypeError(f"{what} must be a tuple of non-negative ints, got {value!r}")
    return tuple(value)


def _tensor_ref(storage, storage_offset, size, stride, dtype: str) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise TypeError(f"tensor storage must be a persistent storage reference, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise TypeError(f"storage offset must be a non-negative int, got {storage_offset!r}")
    shape, strides = _int_tuple(size, "tensor size"), _int_tuple(stride, "tensor stride")
    if len(shape) != len(strides):
        raise ValueError(f"tensor size {shape} and stride {strides} have different lengths")
    return TensorRef(storage, storage_offset, shape, strides, dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageRef) or storage.dtype is None:
        raise TypeError("_rebuild_tensor_v2 needs a typed storage such as torch.FloatStorage")
    return _tensor_ref(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    if not isinstance(dtype, TorchDType):
        raise TypeError(f"_rebuild_tensor_v3 needs a torch dtype, got {dtype!r}")
    if not isinstance(storage, StorageRef) or storage.dtype is not None:
        raise TypeError("_rebuild_tensor_v3 needs a torch.UntypedStorage")
    return _tensor_ref(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, TensorRef):
        raise TypeError("a Parameter must wrap a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter):
        raise TypeError("_rebuild_from_type_v2 may only call a tensor rebuild function")
    if new_type not in (TENSOR_TYPE, PARAMETER_TYPE):
        raise TypeError(f"tensor subclass {new_type!r} is not supported")
    if not isinstance(args, tuple):
        raise TypeError("_rebuild_from_type_v2 arguments must be a tuple")
    return func(*args)


def _torch_size(dims=()):
    return _int_tuple(dims, "torch.Size")


def _torch_device(kind, index=None):
    if not isinstance(kind, str) or not (index is None or isinstance(index, int)):
        raise TypeError("torch.device takes a string and an optional int index")
    return kind if index is None else f"{kind}:{index}"


def _codecs_encode(text, encoding="latin1"):
    """Protocol-2 pickles store bytes as `_codecs.encode(text, 'latin1')`."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TypeError("_codecs.encode is only allowed on a str with the latin1 codec")
    return text.encode("latin1")


def _numpy_scalar(dtype, data):
    if not isinstance(dtype, PickledNumpyDType) or not isinstance(data, bytes):
        raise TypeError("numpy scalar needs a numeric dtype and raw bytes")
    dt = dtype.to_numpy()
    if len(data) != dt.itemsize:
        raise ValueError("numpy scalar data has the wrong length")
    return np.frombuffer(data, dtype=dt)[0].astype(dt.newbyteorder("="))


def _numpy_reconstruct(cls, shape, typecode):
    if cls is not NDARRAY_TYPE:
        raise TypeError("numpy _reconstruct is only allowed for numpy.ndarray")
    return PickledNumpyArray()


def _allowed_globals() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): TENSOR_TYPE,
        ("torch.nn.parameter", "Parameter"): PARAMETER_TYPE,
        ("torch", "Size"): _torch_size,
        ("torch", "device"): _torch_device,
        ("torch", "UntypedStorage"): StorageType(None),
        ("torch.storage", "UntypedStorage"): StorageType(None),
        ("argparse", "Namespace"): PickledNamespace,
        ("_codecs", "encode"): _codecs_encode,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("numpy", "dtype"): PickledNumpyDType,
        ("numpy", "ndarray"): NDARRAY_TYPE,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "scalar")] = _numpy_scalar
        table[(module, "_reconstruct")] = _numpy_reconstruct
    for name in TORCH_DTYPES:
        table[("torch", name)] = TorchDType(name)
    for storage_class, name in STORAGE_CLASS_TO_DTYPE.items():
        table[("torch", storage_class)] = StorageType(name)
    return table


ALLOWED_GLOBALS = _allowed_globals()


def python3_name(module: str, name: str) -> tuple[str, str]:
    """Undo the Python 2 renaming that protocol <= 2 pickles apply (`__builtin__` -> `builtins`)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


# ----------------------------------------------------------------- unpickler
class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose globals come only from `ALLOWED_GLOBALS`."""

    def __init__(self, file, path):
        super().__init__(file, encoding="utf-8")
        self.path = path

    def find_class(self, module: str, name: str):
        module, name = python3_name(module, name)
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            pass
        if module == "torch" and name in UNSUPPORTED_TORCH_DTYPES:
            raise CheckpointError(self.path, f"tensors of dtype torch.{name} are not supported")
        raise UnsafeCheckpointError(self.path, f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(self.path, f"unexpected persistent id {pid!r} in data.pkl")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise CheckpointError(self.path, f"persistent id names {storage_type!r}, not a torch storage type")
        if not isinstance(key, str) or not isinstance(location, str) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(self.path, f"malformed storage reference {pid!r} in data.pkl")
        return StorageRef(key, storage_type.dtype, numel, location)


def load_pickle(data: bytes, path) -> object:
    """Unpickle `data.pkl` bytes with tensors as TensorRef; CheckpointError if refused or corrupt."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), path).load()
    except CheckpointError:
        raise
    except Exception as exc:  # any decoding failure of a damaged or foreign pickle
        raise CheckpointError(path, f"data.pkl is corrupt or not a torch pickle ({type(exc).__name__}: {exc})") from exc


def resolve(obj, tensor: Callable[[TensorRef], object]):
    """Copy of the unpickled tree with TensorRefs replaced by `tensor(ref)` and stand-ins made plain.

    Namespaces become dicts, numpy stand-ins become arrays, torch dtypes become "torch.float16".
    Objects shared in the pickle stay shared (each is converted once).
    """
    seen: dict[int, object] = {}

    def walk(x):
        if id(x) in seen:
            return seen[id(x)]
        if isinstance(x, TensorRef):
            out = tensor(x)
        elif isinstance(x, PickledNamespace):
            out = {k: walk(v) for k, v in getattr(x, "fields", {}).items()}
        elif isinstance(x, PickledNumpyArray):
            out = getattr(x, "array", None)
        elif isinstance(x, (TorchDType, PickledNumpyDType, StorageType, _TypeMarker)):
            out = str(x)
        elif isinstance(x, dict):
            out = OrderedDict() if isinstance(x, OrderedDict) else {}
            seen[id(x)] = out
            for k, v in x.items():
                out[walk(k)] = walk(v)
        elif isinstance(x, list):
            out = []
            seen[id(x)] = out
            out.extend(walk(v) for v in x)
        elif isinstance(x, (tuple, set, frozenset)):
            out = type(x)(walk(v) for v in x)
        else:
            out = x
        seen[id(x)] = out
        return out

    return walk(obj)


def tensor_refs(obj) -> list[TensorRef]:
    """Every TensorRef in an unpickled tree, in pickle order, each listed once per occurrence."""
    found, seen = [], set()

    def walk(x):
        if isinstance(x, TensorRef):
            found.append(x)
            return
        if id(x) in seen:
            return
        seen.add(id(x))
        if isinstance(x, PickledNamespace):
            x = getattr(x, "fields", {})
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple, set, frozenset)):
            for v in x:
                walk(v)

    walk(obj)
    return found
