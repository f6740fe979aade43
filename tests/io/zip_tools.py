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


def pickle_int(value: int) -> bytes:
    """Any int as a LONG1 opcode."""
    raw = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def pickle_str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def tensor_ops(storage_class: str, key: str, numel: int, offset: int, shape, stride) -> bytes:
    """Opcodes that push `_rebuild_tensor_v2(storage <key>, offset, shape, stride)`, as torch.save writes it."""
    storage = (b"(" + pickle_str("storage") + f"ctorch\n{storage_class}\n".encode() + pickle_str(key)
               + pickle_str("cpu") + pickle_int(numel) + b"tQ")
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + pickle_int(offset)
            + b"(" + b"".join(map(pickle_int, shape)) + b"t(" + b"".join(map(pickle_int, stride)) + b"t\x89}tR")


def views_pickle(views: dict) -> bytes:
    """data.pkl of a dict name -> tensor, each given as the arguments of `tensor_ops`."""
    return pickle_program(b"}(" + b"".join(pickle_str(name) + tensor_ops(*args) for name, args in views.items())
                          + b"u")


_CENTRAL_FIELDS = {"flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"), "compress_size": (20, "<I"),
                   "file_size": (24, "<I"), "header_offset": (42, "<I")}
_LOCAL_FIELDS = {"flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "compress_size": (18, "<I"),
                 "file_size": (22, "<I")}


def patch_record(path, name: str, **fields) -> None:
    """Overwrite fields (flags, method, crc, compress_size, file_size, header_offset) of record `name`
    in both its central directory entry and its local header (header_offset: central only)."""
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as zf:
        start, local = zf.start_dir, zf.getinfo(name).header_offset
    pos = start
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[pos + 28:pos + 34])
        if data[pos + 46:pos + 46 + name_len] == name.encode():
            for field, value in fields.items():
                offset, fmt = _CENTRAL_FIELDS[field]
                struct.pack_into(fmt, data, pos + offset, value)
                if field in _LOCAL_FIELDS:
                    offset, fmt = _LOCAL_FIELDS[field]
                    struct.pack_into(fmt, data, local + offset, value)
            open(path, "wb").write(bytes(data))
            return
        pos += 46 + name_len + extra_len + comment_len
    raise KeyError(name)
