"""The restricted unpickler for `data.pkl` in torch checkpoints: it rebuilds data, never runs code.

A pickle is a small program: GLOBAL names a Python object by `module.name` and
REDUCE calls it.  Stock `pickle.load` will happily call `os.system`.  `load_pickle` runs
the program on minisnn's own pickle machine (pickle_machine.py, which also bounds its
memory, time and nesting) and answers every GLOBAL from a fixed allow-list of harmless
stand-ins written here, built afresh for each load, so nothing is imported and nothing
from the file is called:

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
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable

from .dtypes import STORAGE_CLASS_TO_DTYPE, TORCH_DTYPES, UNSUPPORTED_TORCH_DTYPES, itemsize
from .errors import CheckpointError, UnsafeCheckpointError
from .pickle_limits import PickleRefused, brief, check_key
from .pickle_machine import unpickle
from .pickled_numpy import (MAX_ELEMENT_BYTES, PickledNumpyArray, PickledNumpyDType,
                            TypeMarker, dims, numpy_globals)


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


TENSOR_TYPE = TypeMarker("torch.Tensor")
PARAMETER_TYPE = TypeMarker("torch.nn.parameter.Parameter")


class PickledNamespace:
    """Inert stand-in for `argparse.Namespace`: BUILD stores its attributes in `fields`."""
    __slots__ = ("fields",)

    def __init__(self):
        self.fields = {}

    def pickle_build(self, state):
        if type(state) is not dict or not all(type(k) is str for k in state):
            raise TypeError("argparse.Namespace state must be a dict with string keys")
        self.fields = dict(state)

    def pickle_children(self):
        return self.fields.values()


# -------------------------------------------------------- stand-in callables
def _tensor_ref(storage, storage_offset, size, stride, dtype: str) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise TypeError(f"tensor storage must be a persistent storage reference, got {brief(storage)}")
    if type(storage_offset) is not int or not 0 <= storage_offset < MAX_ELEMENT_BYTES:
        raise TypeError(f"storage offset must be a non-negative int, got {brief(storage_offset)}")
    shape = dims(size, "tensor size", itemsize(dtype))
    if not isinstance(stride, (tuple, list)) or not all(
            type(s) is int and 0 <= s < MAX_ELEMENT_BYTES for s in stride):
        raise TypeError(f"tensor stride must be a tuple of non-negative ints, got {brief(stride)}")
    if len(shape) != len(stride):
        raise ValueError(f"tensor size {shape} and stride {tuple(stride)} have different lengths")
    return TensorRef(storage, storage_offset, shape, tuple(stride), dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageRef) or storage.dtype is None:
        raise TypeError("_rebuild_tensor_v2 needs a typed storage such as torch.FloatStorage")
    return _tensor_ref(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    if not isinstance(dtype, TorchDType):
        raise TypeError(f"_rebuild_tensor_v3 needs a torch dtype, got {brief(dtype)}")
    if not isinstance(storage, StorageRef) or storage.dtype is not None:
        raise TypeError("_rebuild_tensor_v3 needs a torch.UntypedStorage")
    return _tensor_ref(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, TensorRef):
        raise TypeError("a Parameter must wrap a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func is not _rebuild_tensor_v2 and func is not _rebuild_tensor_v3 and func is not _rebuild_parameter:
        raise TypeError("_rebuild_from_type_v2 may only call a tensor rebuild function")
    if new_type != TENSOR_TYPE and new_type != PARAMETER_TYPE:
        raise TypeError(f"tensor subclass {brief(new_type)} is not supported")
    if not isinstance(args, tuple):
        raise TypeError("_rebuild_from_type_v2 arguments must be a tuple")
    return func(*args)


def _torch_size(sizes=()):
    return dims(sizes, "torch.Size")


def _torch_device(kind, index=None):
    if not isinstance(kind, str) or not (index is None or type(index) is int):
        raise TypeError("torch.device takes a string and an optional int index")
    return kind if index is None else f"{kind}:{index}"


def _checked_items(items, what: str):
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise TypeError(f"{what} takes a list, got {brief(items)}")
    for item in items:
        check_key(item, f"{what} element")
    return items


def _set(items=()):
    return set(_checked_items(items, "set"))


def _frozenset(items=()):
    return frozenset(_checked_items(items, "frozenset"))


def _complex(real=0.0, imag=0.0):
    if not all(type(v) in (int, float) for v in (real, imag)):
        raise TypeError("complex takes two numbers")
    return complex(real, imag)


def _ordered_dict(items=()):
    if not isinstance(items, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in items):
        raise TypeError(f"OrderedDict takes a list of (key, value) pairs, got {brief(items)}")
    for key, _ in items:
        check_key(key)
    return OrderedDict(items)


def allowed_globals() -> dict[tuple[str, str], object]:
    """(module, name) -> stand-in, built afresh for every load so no load can alter another's."""
    table: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): TypeMarker("torch.Tensor"),
        ("torch.nn.parameter", "Parameter"): TypeMarker("torch.nn.parameter.Parameter"),
        ("torch", "Size"): _torch_size,
        ("torch", "device"): _torch_device,
        ("torch", "UntypedStorage"): StorageType(None),
        ("torch.storage", "UntypedStorage"): StorageType(None),
        ("argparse", "Namespace"): PickledNamespace,
        ("builtins", "set"): _set,
        ("builtins", "frozenset"): _frozenset,
        ("builtins", "complex"): _complex,
        **numpy_globals(),
    }
    for name in TORCH_DTYPES:
        table[("torch", name)] = TorchDType(name)
    for storage_class, name in STORAGE_CLASS_TO_DTYPE.items():
        table[("torch", storage_class)] = StorageType(name)
    return table


# What a checkpoint may name, for reading (each load uses its own copy from allowed_globals()).
ALLOWED_GLOBALS = MappingProxyType(allowed_globals())


def python3_name(module: str, name: str) -> tuple[str, str]:
    """Undo the Python 2 renaming that protocol <= 2 pickles apply (`__builtin__` -> `builtins`)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


# ----------------------------------------------------------------- unpickler
class RestrictedUnpickler:
    """Reads one `data.pkl` from `file`; its globals come only from a fresh `allowed_globals()`."""

    def __init__(self, file, path):
        self.file, self.path = file, path
        self.allowed = allowed_globals()

    def find_class(self, module: str, name: str):
        module, name = python3_name(module, name)
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        if module == "torch" and name in UNSUPPORTED_TORCH_DTYPES:
            raise CheckpointError(self.path, f"tensors of dtype torch.{name} are not supported")
        raise UnsafeCheckpointError(self.path, f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(self.path, f"unexpected persistent id {brief(pid)} in data.pkl")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise CheckpointError(self.path, f"persistent id names {brief(storage_type)}, not a torch storage type")
        if (not isinstance(key, str) or not isinstance(location, str) or type(numel) is not int
                or not 0 <= numel < MAX_ELEMENT_BYTES):
            raise CheckpointError(self.path, f"malformed storage reference in data.pkl (key {brief(key)}, "
                                  f"location {brief(location)}, numel {brief(numel)})")
        return StorageRef(key, storage_type.dtype, numel, location)

    def load(self):
        """The unpickled object; CheckpointError if refused or corrupt."""
        try:
            return unpickle(self.file.read(), self.find_class, persistent_load=self.persistent_load)
        except PickleRefused as exc:
            raise CheckpointError(self.path, f"data.pkl is corrupt or not a torch pickle: {exc}") from None


def load_pickle(data: bytes, path) -> object:
    """Unpickle `data.pkl` bytes with tensors as TensorRef; CheckpointError if refused or corrupt."""
    return RestrictedUnpickler(io.BytesIO(data), path).load()


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
            out = {k: walk(v) for k, v in x.fields.items()}
        elif isinstance(x, PickledNumpyArray):
            out = x.array
        elif isinstance(x, (TorchDType, PickledNumpyDType, StorageType, TypeMarker)):
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
            x = x.fields
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple, set, frozenset)):
            for v in x:
                walk(v)

    walk(obj)
    return found
