"""Zip records cannot make the reader allocate more than the file holds (or MAX_EXPANSION times it,
for compressed records): sizes are checked before anything is read (class 3, the zip layer)."""
from __future__ import annotations

import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn.io import load_checkpoint, write_torch_zip
from minisnn.io.torch_zip import MAX_EXPANSION

from .bounded import MiB, run_bounded
from .zip_tools import patch_record, read_records, write_zip

STATE = OrderedDict(w=np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16), n=np.array(3, dtype=np.int64))


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.pt"
    write_torch_zip({"state_dict": STATE}, path)
    return path


def _loads_exactly(path) -> None:
    sd = load_checkpoint(path)
    assert list(sd) == list(STATE) and all(np.array_equal(sd[k], STATE[k]) for k in STATE)


def _refused_cheaply(path, match: str) -> None:
    outcome = run_bounded(load_checkpoint, path, memory=512 * MiB, timeout=20)
    assert outcome.raised("CheckpointError"), outcome
    assert match in outcome.message and str(path) in outcome.message, outcome
    assert outcome.peak_bytes < 2 * MiB + 2 * path.stat().st_size and outcome.seconds < 1.0, outcome


def _deflated(path, records: dict, level: int = 9) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, data in records.items():
            zf.writestr(name, data)


def test_deflated_checkpoints_load_exactly(tmp_path, good):
    _deflated(tmp_path / "d.pt", read_records(good))
    _loads_exactly(tmp_path / "d.pt")


def test_a_small_file_declaring_gigabytes_is_refused_before_reading(tmp_path, good):
    """8 MiB of zeros deflate to 8 KiB; declared as 4 GiB it is refused from the directory alone."""
    records = read_records(good)
    records["archive/data/0"] = bytes(8 << 20)
    path = tmp_path / "bomb.pt"
    _deflated(path, records)
    patch_record(path, "archive/data/0", file_size=0xFFFFFFF0)
    _refused_cheaply(path, f"at most {MAX_EXPANSION} times the file's size")


def test_a_true_zip_bomb_is_refused(tmp_path, good):
    """50 MiB of zeros really inside a ~50 KiB file: more than MAX_EXPANSION times the file."""
    records = read_records(good)
    records["archive/data/9"] = bytes(50 << 20)
    path = tmp_path / "bomb.pt"
    _deflated(path, records, level=9)
    assert path.stat().st_size < (50 << 20) // MAX_EXPANSION
    _refused_cheaply(path, "declare")


def test_a_stored_record_longer_than_the_file_is_refused(tmp_path, good):
    """A stored record with CRC 0 (torch's no-CRC mode) claiming 4 GiB: once asked for 2**40 bytes."""
    patch_record(good, "archive/data/0", crc=0, compress_size=0xFFFFFFF0, file_size=0xFFFFFFF0)
    _refused_cheaply(good, "declare")


def test_records_that_overlap_are_refused(tmp_path):
    """Two thousand names for the same 64 KiB of data: their sizes add up to far more than the file."""
    path = tmp_path / "overlap.pt"
    write_zip(path, {"archive/data.pkl": b"\x80\x02}.", "archive/data/0": bytes(1 << 16)})
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("archive/data/0")
    with zipfile.ZipFile(path, "a") as zf:  # more central-directory entries pointing at the same data
        for i in range(1, 2000):
            clone = zipfile.ZipInfo(f"archive/data/{i}")
            clone.header_offset, clone.compress_size, clone.file_size, clone.CRC = (
                info.header_offset, info.compress_size, info.file_size, info.CRC)
            zf.filelist.append(clone)
            zf.NameToInfo[clone.filename] = clone
        zf._didModify = True
    _refused_cheaply(path, "declare")


@pytest.mark.parametrize("name, fields, problem", [
    ("archive/data/0", {"method": zipfile.ZIP_BZIP2}, "compression method 12"),
    ("archive/data/0", {"method": zipfile.ZIP_LZMA}, "compression method 14"),
    ("archive/data/0", {"flags": 1}, "encrypted"),
    ("archive/data/0", {"file_size": 10}, "has 10 bytes but data.pkl declares 1024"),
    ("archive/data.pkl", {"file_size": 10}, "declares 10 bytes but the file holds"),
    ("archive/data/0", {"crc": 12345}, "bad CRC-32"),
    ("archive/data/0", {"header_offset": 7}, "bad local header"),
])
def test_damaged_record_fields_are_checkpoint_errors(good, name, fields, problem):
    patch_record(good, name, **fields)
    _refused_cheaply(good, problem)


def test_a_deflated_record_that_inflates_past_its_size_stops_there(tmp_path, good):
    path = tmp_path / "d.pt"
    _deflated(path, read_records(good))
    patch_record(path, "archive/data.pkl", file_size=100)
    _refused_cheaply(path, "record 'archive/data.pkl' is corrupt or unsupported (Bad CRC-32")


@settings(max_examples=30)
@given(field=st.sampled_from(["crc", "compress_size", "file_size", "header_offset"]),
       value=st.one_of(st.integers(0, 4096), st.integers(0, 2**32 - 1)))
def test_any_size_or_offset_loads_exactly_or_is_refused_cheaply(tmp_path_factory, field, value):
    path = tmp_path_factory.mktemp("z") / "z.pt"
    write_torch_zip({"state_dict": STATE}, path)
    patch_record(path, "archive/data/0", **{field: value})
    outcome = run_bounded(load_checkpoint, path, memory=512 * MiB, timeout=20)
    assert outcome.status == "returned" or outcome.raised("CheckpointError"), outcome
    assert outcome.peak_bytes < 2 * MiB and outcome.seconds < 1.0, outcome
