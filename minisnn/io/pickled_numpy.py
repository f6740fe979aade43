"""Stand-ins for the NumPy globals a pickle needs to rebuild an ndarray, a dtype or a scalar.

NumPy pickles an array `a` as

    numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')      -> empty array
    BUILD (1, a.shape, numpy.dtype('f8', False, True) + BUILD, is_fortran, raw_bytes)

and, with protocol 5, as `numpy.core.numeric._frombuffer(raw, dtype, shape, order)`.
The stand-ins below accept only plain numeric dtypes (no object arrays, which would
hold further pickles), check that the raw bytes are exactly as many as the shape needs,
and copy them into a fresh native-order array, so an array never costs more memory than
the bytes the file holds for it.  Used by the torch checkpoint unpickler and the CIFAR
batch reader (`numpy_globals`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .pickle_limits import brief

MAX_DIMS = 32                   # NumPy 1.x's limit (2.x allows 64); no real tensor comes near it
MAX_ELEMENT_BYTES = 2**62       # elements x itemsize (zero dimensions counted as 1) must stay below


@dataclass(frozen=True, slots=True)
class TypeMarker:
    """Stand-in for a class a pickle names only as an argument: torch.Tensor, numpy.ndarray, ..."""
    name: str

    def __str__(self) -> str:
        return self.name


NDARRAY_TYPE = TypeMarker("numpy.ndarray")


def dims(value, what: str, itemsize: int = 1) -> tuple[int, ...]:
    """`value` as a shape: a tuple/list of at most MAX_DIMS non-negative ints whose product fits."""
    if not isinstance(value, (tuple, list)) or not all(
            type(v) is int and v >= 0 for v in value):
        raise TypeError(f"{what} must be a tuple of non-negative ints, got {brief(value)}")
    if len(value) > MAX_DIMS:
        raise ValueError(f"{what} has {len(value)} dimensions; at most {MAX_DIMS} are supported")
    if math.prod(max(v, 1) for v in value) * itemsize >= MAX_ELEMENT_BYTES:
        raise ValueError(f"{what} {tuple(value)} is too large for any array")
    return tuple(value)


class PickledNumpyDType:
    """Stand-in for `numpy.dtype(code)` limited to bool/int/uint/float/complex codes."""
    __slots__ = ("code", "byteorder")
    _CODE = re.compile(r"^(b1|[iuf](1|2|4|8)|c(8|16))$")

    def __init__(self, code, align=False, copy=True):
        if isinstance(code, bytes):  # Python 2 pickles read with encoding="bytes" (the CIFAR batches)
            code = code.decode("ascii", "replace")
        if not isinstance(code, str) or not self._CODE.match(code):
            raise TypeError(f"numpy dtype {brief(code)} is not a plain numeric dtype")
        self.code, self.byteorder = code, "="

    def pickle_build(self, state):
        order = state[1] if isinstance(state, tuple) and len(state) >= 2 else None
        order = order.decode("ascii", "replace") if isinstance(order, bytes) else order
        if order not in ("<", ">", "|", "="):
            raise TypeError("malformed numpy dtype state")
        self.byteorder = order

    def to_numpy(self) -> np.dtype:
        return np.dtype(self.code).newbyteorder(self.byteorder if self.byteorder != "|" else "=")

    def __str__(self) -> str:
        return str(np.dtype(self.code))


def _array_from_bytes(raw, dtype, shape, order: str) -> np.ndarray:
    """A new native-order array of `shape` filled from exactly the right number of raw bytes."""
    if not isinstance(dtype, PickledNumpyDType) or not isinstance(raw, (bytes, bytearray)):
        raise TypeError("a numpy array needs a numeric dtype and raw bytes")
    dt = dtype.to_numpy()
    shape = dims(shape, "numpy array shape", dt.itemsize)
    if len(raw) != math.prod(shape) * dt.itemsize:
        raise ValueError(f"numpy array data has {len(raw)} bytes, its shape {shape} needs "
                         f"{math.prod(shape) * dt.itemsize}")
    flat = np.frombuffer(raw, dtype=dt)
    return flat.reshape(shape, order=order).astype(dt.newbyteorder("="), order="K")


class PickledNumpyArray:
    """Stand-in for an ndarray made by `numpy.core.multiarray._reconstruct`, filled in by BUILD."""
    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def pickle_build(self, state):
        if self.array is not None or not isinstance(state, tuple) or len(state) != 5:
            raise TypeError("malformed numpy array state")
        _version, shape, dtype, fortran, raw = state
        self.array = _array_from_bytes(raw, dtype, shape, "F" if fortran else "C")


def _numpy_reconstruct(cls, shape, typecode):
    if cls != NDARRAY_TYPE:
        raise TypeError("numpy _reconstruct is only allowed for numpy.ndarray")
    return PickledNumpyArray()


def _numpy_frombuffer(buffer, dtype, shape, order="C"):
    if order not in ("C", "F"):
        raise TypeError(f"array order must be 'C' or 'F', got {brief(order)}")
    return _array_from_bytes(buffer, dtype, shape, order)


def _numpy_scalar(dtype, data):
    if not isinstance(dtype, PickledNumpyDType) or not isinstance(data, bytes):
        raise TypeError("a numpy scalar needs a numeric dtype and raw bytes")
    dt = dtype.to_numpy()
    if len(data) != dt.itemsize:
        raise ValueError("numpy scalar data has the wrong length")
    return np.frombuffer(data, dtype=dt)[0].astype(dt.newbyteorder("="))


def _codecs_encode(text, encoding="latin1"):
    """Protocol-2 pickles written by Python 3 store bytes as `_codecs.encode(text, 'latin1')`."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TypeError("_codecs.encode is only allowed on a str with the latin1 codec")
    return text.encode("latin1")


def numpy_globals() -> dict[tuple[str, str], object]:
    """(module, name) -> stand-in for the globals of pickled arrays, dtypes, scalars and bytes (fresh each call)."""
    table: dict[tuple[str, str], object] = {
        ("numpy", "dtype"): PickledNumpyDType,
        ("numpy", "ndarray"): TypeMarker("numpy.ndarray"),
        ("_codecs", "encode"): _codecs_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "scalar")] = _numpy_scalar
        table[(f"{core}.multiarray", "_reconstruct")] = _numpy_reconstruct
        table[(f"{core}.numeric", "_frombuffer")] = _numpy_frombuffer
    return table
