"""Tensor views cannot make a small file cost more memory than the tensor bytes it stores, and
odd shapes, strides and offsets give CheckpointError, never NumPy's own errors (class 3, tensors).

Rule: a load allocates at most the bytes of the storages it reads + COPY_SLACK for copies of
views, plus a small constant.  A tensor that is a whole storage of its own is that storage's
buffer; other views are copied out (so every array is C-contiguous, writeable and its own).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.io import CheckpointError, load_checkpoint, read_torch_zip
from minisnn.io.torch_zip import COPY_SLACK

from .bounded import MiB, run_bounded
from .zip_tools import views_pickle, write_checkpoint_pickle

STORAGE = np.arange(16, dtype=np.float32)


def _write(path, views: dict, storages: dict | None = None) -> None:
    write_checkpoint_pickle(path, views_pickle(views), storages or {"0": STORAGE.tobytes()})


def _refused(path, match: str) -> None:
    outcome = run_bounded(load_checkpoint, path, memory=512 * MiB, timeout=20)
    assert outcome.raised("CheckpointError"), outcome
    assert str(path) in outcome.message and match in outcome.message, outcome
    assert outcome.peak_bytes < 2 * MiB and outcome.seconds < 1.0, outcome


def test_a_stride_0_view_of_8_gib_in_a_tiny_file_is_refused(tmp_path):
    path = tmp_path / "s0.pt"
    _write(path, {"w": ("FloatStorage", "0", 16, 0, (2**31,), (0,))})
    assert path.stat().st_size < 1000
    _refused(path, "stride-0 or overlapping views")


def test_many_overlapping_views_of_one_storage_are_refused(tmp_path):
    big = np.zeros(1 << 16, np.float32)  # 256 KiB, viewed whole 100 times: 25 MiB of copies
    views = {f"v{i}": ("FloatStorage", "0", big.size, 0, (big.size,), (1,)) for i in range(100)}
    path = tmp_path / "overlap.pt"
    _write(path, views, {"0": big.tobytes()})
    outcome = run_bounded(load_checkpoint, path, memory=512 * MiB)
    assert outcome.raised("CheckpointError") and "stride-0 or overlapping" in outcome.message, outcome
    assert outcome.peak_bytes < big.nbytes + COPY_SLACK + 2 * MiB, outcome


def test_views_within_the_slack_load_as_independent_arrays(tmp_path):
    views = {"full": ("FloatStorage", "0", 16, 0, (4, 4), (4, 1)), "t": ("FloatStorage", "0", 16, 0, (4, 4), (1, 4)),
             "bcast": ("FloatStorage", "0", 16, 3, (1000, 2), (0, 1)), "own": ("DoubleStorage", "1", 3, 0, (3,), (1,))}
    path = tmp_path / "ok.pt"
    _write(path, views, {"0": STORAGE.tobytes(), "1": np.ones(3).tobytes()})
    sd = load_checkpoint(path)
    grid = STORAGE.reshape(4, 4)
    assert np.array_equal(sd["full"], grid) and np.array_equal(sd["t"], grid.T)
    assert np.array_equal(sd["bcast"], np.broadcast_to(STORAGE[3:5], (1000, 2)))
    for array in sd.values():
        assert array.flags.c_contiguous and array.flags.writeable
    sd["full"][0, 0] = -1
    sd["own"][0] = -1  # the whole-storage tensor is the storage buffer, which is its own
    assert sd["t"][0, 0] == 0 and sd["bcast"][0, 0] == 3
    assert np.array_equal(load_checkpoint(path)["own"], np.ones(3))


@pytest.mark.parametrize("shape, stride, offset, problem", [
    ((1,) * 33, (1,) * 33, 0, "at most 32 are supported"),
    ((1,) * 65, (1,) * 65, 0, "at most 32 are supported"),
    ((0, 2**62), (1, 1), 0, "too large for any array"),
    ((0, 2**40, 2**40), (1, 1, 1), 0, "too large for any array"),
    ((2, 2), (1,), 0, "different lengths"),
    ((4,), (-1,), 3, "non-negative ints"),
    ((-4,), (1,), 0, "non-negative ints"),
    ((4,), (1,), -1, "non-negative int"),
    ((4,), (1,), 2**70, "non-negative int"),
    ((4,), (2**70,), 0, "non-negative ints"),
    ((2, 2), (2**61, 1), 0, "reaches element"),
    ((4,), (1,), 13, "reaches element 16"),
])
def test_odd_shapes_strides_and_offsets_are_checkpoint_errors(tmp_path, shape, stride, offset, problem):
    path = tmp_path / "odd.pt"
    _write(path, {"w": ("FloatStorage", "0", 16, offset, shape, stride)})
    _refused(path, problem)


def test_zero_sized_tensors_beside_large_dimensions_load(tmp_path):
    path = tmp_path / "empty.pt"
    _write(path, {"w": ("FloatStorage", "0", 16, 0, (0, 2**40), (2**40, 1))})
    assert load_checkpoint(path)["w"].shape == (0, 2**40)


@given(offset=st.integers(0, 40), shape=st.lists(st.integers(0, 6), max_size=4),
       stride=st.lists(st.integers(0, 9), min_size=4, max_size=4))
def test_any_view_loads_exactly_or_is_refused(tmp_path_factory, offset, shape, stride):
    stride = stride[:len(shape)]
    path = tmp_path_factory.mktemp("view") / "v.pt"
    _write(path, {"w": ("FloatStorage", "0", 16, offset, tuple(shape), tuple(stride))})
    reach = offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if 0 in shape or reach < 16:
        got = load_checkpoint(path)["w"]
        want = np.lib.stride_tricks.as_strided(STORAGE[offset:], shape, [4 * s for s in stride]) \
            if 0 not in shape else np.empty(shape, np.float32)
        assert got.shape == tuple(shape) and np.array_equal(got, want) and got.flags.c_contiguous
    else:
        with pytest.raises(CheckpointError, match="reaches element"):
            read_torch_zip(path)
