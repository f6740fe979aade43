"""Element types shared by the torch zip and safetensors readers and writers.

Every dtype is named the way torch names it ("float32", "bfloat16", ...).  NumPy has
no bfloat16, so its raw 16-bit patterns are read as uint16 and widened to float32:
bf16 is the top half of an IEEE float32, so `bits << 16` is the exact float32 value.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TorchDTypeInfo(NamedTuple):
    raw: str              # NumPy dtype of the stored bytes (little-endian, no byte-order mark)
    storage_class: str | None  # legacy torch.<X>Storage name, None for dtypes saved as UntypedStorage


TORCH_DTYPES: dict[str, TorchDTypeInfo] = {
    "float64": TorchDTypeInfo("f8", "DoubleStorage"),
    "float32": TorchDTypeInfo("f4", "FloatStorage"),
    "float16": TorchDTypeInfo("f2", "HalfStorage"),
    "bfloat16": TorchDTypeInfo("u2", "BFloat16Storage"),
    "complex128": TorchDTypeInfo("c16", "ComplexDoubleStorage"),
    "complex64": TorchDTypeInfo("c8", "ComplexFloatStorage"),
    "int64": TorchDTypeInfo("i8", "LongStorage"),
    "int32": TorchDTypeInfo("i4", "IntStorage"),
    "int16": TorchDTypeInfo("i2", "ShortStorage"),
    "int8": TorchDTypeInfo("i1", "CharStorage"),
    "uint8": TorchDTypeInfo("u1", "ByteStorage"),
    "bool": TorchDTypeInfo("?", "BoolStorage"),
    # dtypes added after the legacy storage classes were frozen: saved with
    # torch.storage.UntypedStorage and torch._utils._rebuild_tensor_v3
    "uint16": TorchDTypeInfo("u2", None),
    "uint32": TorchDTypeInfo("u4", None),
    "uint64": TorchDTypeInfo("u8", None),
}

STORAGE_CLASS_TO_DTYPE = {info.storage_class: name for name, info in TORCH_DTYPES.items() if info.storage_class}

# Torch dtypes that a checkpoint may name but minisnn cannot represent in NumPy.
UNSUPPORTED_TORCH_DTYPES = {
    "complex32", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
    "float8_e8m0fnu", "float4_e2m1fn_x2", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
    "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
}


def itemsize(torch_dtype: str) -> int:
    """Bytes per element of a torch dtype name."""
    return np.dtype(TORCH_DTYPES[torch_dtype].raw).itemsize


def raw_numpy_dtype(torch_dtype: str, byteorder: str = "little") -> np.dtype:
    """NumPy dtype that reads the stored bytes of `torch_dtype` in the given byte order."""
    dt = np.dtype(TORCH_DTYPES[torch_dtype].raw)
    return dt.newbyteorder("<" if byteorder == "little" else ">") if dt.itemsize > 1 else dt


def loaded_numpy_dtype(torch_dtype: str) -> np.dtype:
    """NumPy dtype of the array a load returns (bfloat16 widens to float32)."""
    return np.dtype(np.float32) if torch_dtype == "bfloat16" else np.dtype(TORCH_DTYPES[torch_dtype].raw)


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """bf16 bit patterns (uint16, any shape) -> float32, exactly: f32_bits = bf16_bits << 16."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def torch_dtype_of(array_dtype) -> str:
    """Torch dtype name for a NumPy dtype; TypeError if torch has no such dtype."""
    dt = np.dtype(array_dtype)
    for name, info in TORCH_DTYPES.items():
        if name != "bfloat16" and np.dtype(info.raw) == dt.newbyteorder("="):
            return name
    supported = ", ".join(n for n in TORCH_DTYPES if n != "bfloat16")
    raise TypeError(f"cannot save an array of dtype {dt}: supported dtypes are {supported}")
