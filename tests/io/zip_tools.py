"""Small zip helpers for building valid, damaged and hostile checkpoint files in tests."""
from __future__ import annotations

import struct
import zipfile


def write_zip(path, records: dict[str, bytes]) -> None:
    """A stored (uncompressed) zip holding `records` in order."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records.items():
            zf.writestr(name, data)


def read_records(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def record_span(path, name: str) -> tuple[int, int]:
    """Byte range [start, end) of record `name`'s data inside the zip file."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.compress_size


def pickle_program(*ops: bytes, protocol: int = 2) -> bytes:
    """A pickle made of raw opcodes: PROTO `protocol`, the ops, STOP."""
    return b"\x80" + bytes([protocol]) + b"".join(ops) + b"."


def write_checkpoint_pickle(path, data_pkl: bytes, storages: dict[str, bytes] | None = None) -> None:
    """A torch-style zip holding `data_pkl` as archive/data.pkl and each storage as archive/data/<key>."""
    records = {"archive/data.pkl": data_pkl, "archive/byteorder": b"little"}
    records.update({f"archive/data/{key}": raw for key, raw in (storages or {}).items()})
    records["archive/version"] = b"3\n"
    write_zip(path, records)
