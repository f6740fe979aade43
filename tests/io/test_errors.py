"""Damaged and foreign files give a CheckpointError that names the file and the problem."""
from __future__ import annotations

import json
import struct
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn.io import CheckpointError, describe_checkpoint, load_checkpoint, save_checkpoint, write_torch_zip

from .zip_tools import read_records, record_span, write_zip


def _state():
    rng = np.random.default_rng(0)
    return OrderedDict([("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                        ("bn.num_batches_tracked", np.array(7, dtype=np.int64)),
                        ("head.bias", rng.standard_normal(10))])


@pytest.fixture(scope="module")
def good_zip(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.pth"
    write_torch_zip({"state_dict": _state(), "epoch": 3}, path)
    return path


@pytest.fixture(scope="module")
def good_safetensors(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.safetensors"
    save_checkpoint(_state(), path)
    return path


def _load_or_checkpoint_error(path):
    """Loading a damaged file either works or raises CheckpointError, never anything else."""
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        assert str(path) in str(exc)
        return None


@settings(max_examples=40)
@given(cut=st.floats(0.0, 0.999))
def test_truncated_zip_is_a_checkpoint_error(tmp_path_factory, good_zip, cut):
    data = good_zip.read_bytes()
    path = tmp_path_factory.mktemp("cut") / "cut.pth"
    path.write_bytes(data[: max(1, int(cut * len(data)))])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@settings(max_examples=30)
@given(position=st.floats(0.0, 0.999), mask=st.integers(1, 255))
def test_flipped_byte_in_data_pkl_is_detected(tmp_path_factory, good_zip, position, mask):
    data = bytearray(good_zip.read_bytes())
    start, end = record_span(good_zip, "archive/data.pkl")
    data[start + int(position * (end - start))] ^= mask
    path = tmp_path_factory.mktemp("flip") / "flip.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


@settings(max_examples=60)
@given(position=st.floats(0.0, 0.999), mask=st.integers(1, 255))
def test_flipped_byte_anywhere_never_crashes(tmp_path_factory, good_zip, good_safetensors, position, mask):
    expected = _state()
    for good in (good_zip, good_safetensors):
        data = bytearray(good.read_bytes())
        data[int(position * len(data))] ^= mask
        path = tmp_path_factory.mktemp("fuzz") / good.name
        path.write_bytes(bytes(data))
        state = _load_or_checkpoint_error(path)
        if state is not None and good is good_zip:  # zip data is CRC-checked: a load that works is exact
            assert list(state) == list(expected)
            assert all(np.array_equal(state[k], expected[k]) for k in expected)


def test_missing_data_record(tmp_path, good_zip):
    records = read_records(good_zip)
    del records["archive/data/1"]
    write_zip(tmp_path / "m.pth", records)
    with pytest.raises(CheckpointError, match=r"missing record 'archive/data/1'"):
        load_checkpoint(tmp_path / "m.pth")


def test_short_data_record(tmp_path, good_zip):
    records = read_records(good_zip)
    records["archive/data/0"] = records["archive/data/0"][:-4]
    write_zip(tmp_path / "s.pth", records)
    with pytest.raises(CheckpointError, match="has 428 bytes but data.pkl declares 432"):
        load_checkpoint(tmp_path / "s.pth")


def test_view_past_the_end_of_its_storage(tmp_path):
    # a float32 tensor of 3 elements at offset 2 in a storage of 4
    pkl = (b"\x80\x02}X\x01\x00\x00\x00w"
           b"ctorch._utils\n_rebuild_tensor_v2\n("
           b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
           b"K\x02K\x03\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.")
    write_zip(tmp_path / "v.pt", {"archive/data.pkl": pkl, "archive/data/0": bytes(16)})
    with pytest.raises(CheckpointError, match="reaches element 4 of storage '0', which has only 4"):
        load_checkpoint(tmp_path / "v.pt")


@pytest.mark.parametrize("content, problem", [
    (b"", "file is empty"),
    (b"epoch,loss\n1,0.5\n", "it is a text file"),
    (b"\x00\x01\x02\x03\xff\xfe\xfd\xfc" * 8, "starts with bytes"),
    (b"\x93NUMPY\x01\x00" + b"x" * 40, "NumPy .npy"),
    (b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", "legacy"),
])
def test_wrong_file_types(tmp_path, content, problem):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=problem):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=problem):
        describe_checkpoint(path)


def test_npz_and_other_zips(tmp_path):
    np.savez(tmp_path / "a.npz", w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"NumPy \.npz"):
        load_checkpoint(tmp_path / "a.npz")
    write_zip(tmp_path / "b.zip", {"readme.txt": b"hello"})
    with pytest.raises(CheckpointError, match="data.pkl"):
        load_checkpoint(tmp_path / "b.zip")
    write_zip(tmp_path / "c.pt", {"m/data.pkl": b"\x80\x02}.", "m/constants.pkl": b"", "m/code/m.py": b""})
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_checkpoint(tmp_path / "c.pt")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.pth")


def _safetensors_bytes(header, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("content, problem", [
    (_safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(4)), "truncated"),
    (_safetensors_bytes({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)), "shape needs 12"),
    (_safetensors_bytes({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)), "unsupported dtype"),
    (_safetensors_bytes({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "unsupported dtype"),
    (_safetensors_bytes({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)), "shape list"),
    (_safetensors_bytes({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                         "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, bytes(3)), "overlap"),
    (_safetensors_bytes(b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
                        b'"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', bytes(1)), "unique names"),
    (_safetensors_bytes(b'{"a": [1, 2}'), "JSON"),
    (_safetensors_bytes({"__metadata__": {"k": 1}}), "__metadata__"),
    (_safetensors_bytes({"w": [1, 2]}), "not a JSON object"),
    (_safetensors_bytes({}), "contains no tensors"),
])
def test_bad_safetensors(tmp_path, content, problem):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=problem):
        load_checkpoint(path)


def test_truncated_safetensors(tmp_path, good_safetensors):
    data = good_safetensors.read_bytes()
    for cut in (1, 7, 9, 40, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
