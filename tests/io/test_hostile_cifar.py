"""The CIFAR batch reader shares the checkpoint reader's defences: one restricted pickle machine, regular
files only, bounded memory and time, and a one-line CorruptBatchError naming the file (class 5)."""
from __future__ import annotations

import copyreg
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn.data import CorruptBatchError, cifar, load_cifar10, load_cifar100
from minisnn.data.cifar import BATCH_BYTES_PER_BYTE
from minisnn.io.errors import InputFileError
from minisnn.io.pickle_machine import BUILD_SLACK

from ..data.synthetic import batch_dict, write_cifar10, write_cifar100
from .bounded import MiB, run_bounded
from .zip_tools import pickle_program


def _batch(n: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return batch_dict(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % 10, "training batch 1")


def _write(path, obj, protocol: int = 2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def _write_program(path, body: bytes):
    path.write_bytes(pickle_program(body))
    return path


def _refused(path, match: str, reader=cifar.read_batch):
    outcome = run_bounded(reader, path, memory=512 * MiB, timeout=20)
    assert outcome.raised("CorruptBatchError") and outcome.raised("ValueError"), outcome
    assert outcome.message.startswith(f"{path}: ") and match in outcome.message, outcome
    assert "\n" not in outcome.message, outcome
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    assert outcome.peak_bytes <= BATCH_BYTES_PER_BYTE * size + BUILD_SLACK + 2 * MiB, outcome
    return outcome


@pytest.mark.parametrize("labels, found", [
    (None, "got None"), ("0123", "got '0123'"), ([0, 1, 2, "3"], "found '3'"), ([0, 1, 2, None], "found None"),
    ([0, 1, 2, 10], "found 10"), ([0, 1, -1, 2], "found -1"), ([0, 1, 2, 2**70], "found an int of 71 bits"),
    ([0, 1, 2, 3.0], "found 3.0"), ([0, 1, 2, True], "found True"), ({0: 1}, "got a dict of 1 items"),
])
def test_labels_must_be_integers_in_range(tmp_path, labels, found):
    path = _write(tmp_path / "data_batch_1", _batch() | {b"labels": labels})
    _refused(path, f"labels must be integers in 0..9, {found}")


def test_label_count_and_data_shape(tmp_path):
    _refused(_write(tmp_path / "a", _batch() | {b"labels": [1, 2]}), "2 labels for 4 images")
    _refused(_write(tmp_path / "b", _batch() | {b"data": "pixels"}), "b'data' should be uint8 [N, 3072], got 'pixels'")
    _refused(_write(tmp_path / "c", _batch() | {b"data": np.zeros((4, 3072), np.float32)}), "got float32 [4, 3072]")
    _refused(_write(tmp_path / "d", {b"data": 1}), "lacks b'data' or b'labels' (keys: b'data')")


def test_keys_of_mixed_types_and_non_dicts(tmp_path):
    _refused(_write(tmp_path / "a", _batch() | {"labels": [0], 3: 4}),
             "dict keys should all be bytes, found b'batch_label'")
    _refused(_write(tmp_path / "b", [1, 2, 3]), "should hold a dict, found a list of 3 items")
    _refused(_write(tmp_path / "c", _batch() | {(1, 2): 3}), "dict key a tuple of 2 items is not allowed")


@pytest.mark.parametrize("meta, problem", [
    ({b"label_names": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}, "b'label_names' should be a list of 10 class names"),
    ({b"label_names": [b"a"] * 9}, "should be a list of 10 class names (bytes), got a list of 9 items"),
    ({b"label_names": b"airplane"}, "got b'airplane'"),
    ({b"names": []}, "got nothing"),
    ({b"label_names": [b"\xff"] * 10}, "is not UTF-8"),
])
def test_meta_files_with_odd_names(tmp_path, meta, problem):
    folder = write_cifar10(tmp_path, per_batch=2, test=2)["folder"]
    _write(folder / "batches.meta", meta)
    with pytest.raises(CorruptBatchError, match=problem.replace("(", r"\(").replace(")", r"\)")) as info:
        load_cifar10(folder)
    assert str(info.value).startswith(f"{folder / 'batches.meta'}: ")


class System:
    def __reduce__(self):
        return os.system, ("echo pwned",)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_hostile_globals_are_refused_by_name(tmp_path, protocol):
    path = _write(tmp_path / "data_batch_1", _batch() | {b"x": System()}, protocol)
    _refused(path, "refusing to load posix.system from a CIFAR batch file")


def test_a_1_kib_batch_cannot_ask_for_16_gib(tmp_path):
    """An ndarray whose BUILD claims shape (131072, 131072) with a few raw bytes behind it."""
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
             b"(K\x01J\x00\x00\x02\x00J\x00\x00\x02\x00\x86cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R"
             b"\x89C\x04abcdtb")
    path = _write_program(tmp_path / "data_batch_1", b"}(C\x04data" + array + b"C\x06labels]u")
    assert path.stat().st_size < 1024
    _refused(path, "numpy array data has 4 bytes, its shape (131072, 131072) needs 17179869184")


def test_extension_opcodes_are_refused_with_the_registry_filled(tmp_path):
    copyreg.add_extension("posix", "system", 0xF3)
    try:
        pickle.loads(pickle_program(b"\x82\xf3"))  # the stock unpickler fills copyreg's cache
        _refused(_write_program(tmp_path / "data_batch_1", b"\x82\xf3X\x04\x00\x00\x00true\x85R"),
                 "extension codes")
    finally:
        copyreg.remove_extension("posix", "system", 0xF3)


@pytest.mark.parametrize("body, problem", [
    (b"(" * 300_000, "per byte"), (b"]" * 300_000, "per byte"), (b"N" + b"\x85" * 300_000, "per byte"),
    (b"Nr\xff\xff\xff\x7f", "per byte"),
    (b"X" + struct.pack("<I", 65536) + b"x" * 65536 + b"q\x00" + b"c_codecs\nencode\nh\x00\x85R0" * 10000 + b"N",
     "per byte"),
])
def test_amplifying_pickles_stay_within_the_batch_budget(tmp_path, body, problem):
    _refused(_write_program(tmp_path / "data_batch_1", body), problem)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_special_files_are_refused_at_once(tmp_path, kind):
    path = {"device": "/dev/zero", "directory": str(tmp_path)}.get(kind, str(tmp_path / "data_batch_1"))
    if kind == "fifo":
        os.mkfifo(path)
    for reader in (cifar.read_batch, cifar.read_pickle, cifar.file_md5):
        outcome = run_bounded(reader, path, timeout=10)
        assert outcome.raised("CorruptBatchError") and "not a regular file" in outcome.message, outcome
        assert outcome.seconds < 1.0, outcome


def test_batches_larger_than_the_limit_are_refused_unread(tmp_path):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        f.truncate(cifar.MAX_BATCH_BYTES + 1)  # sparse: nothing is written to disk
    _refused(path, f"more than the {cifar.MAX_BATCH_BYTES} bytes allowed")


def test_paths_may_be_bytes_that_are_not_utf8(tmp_path):
    root = os.fsencode(tmp_path) + b"/caf\xe9"
    written = write_cifar10(os.fsdecode(root), per_batch=3, test=2)
    folder = os.fsencode(written["folder"])
    x, y = cifar.read_batch(folder + b"/data_batch_1")
    np.testing.assert_array_equal(x, written["train_x"][:3])
    assert load_cifar10(folder)[4] == load_cifar10(written["folder"])[4]
    (written["folder"] / "data_batch_2").write_bytes(b"junk")
    with pytest.raises(CorruptBatchError) as info:
        load_cifar10(folder)
    assert str(info.value).startswith(f"{tmp_path}/caf\\xe9/cifar-10-batches-py/data_batch_2: ")
    assert isinstance(info.value, InputFileError)


@settings(max_examples=30)
@given(position=st.floats(0, 0.999), mask=st.integers(1, 255), protocol=st.sampled_from([2, 4, 5]))
def test_any_flipped_byte_loads_or_gives_corrupt_batch_error(tmp_path_factory, position, mask, protocol):
    data = bytearray(pickle.dumps(_batch(n=3), protocol=protocol))
    data[int(position * len(data))] ^= mask
    path = tmp_path_factory.mktemp("flip") / "data_batch_1"
    path.write_bytes(bytes(data))
    outcome = run_bounded(cifar.read_batch, path, memory=512 * MiB)
    assert outcome.status == "returned" or outcome.raised("CorruptBatchError"), outcome
    assert outcome.peak_bytes <= BATCH_BYTES_PER_BYTE * len(data) + BUILD_SLACK + 2 * MiB, outcome


def test_cifar100_fine_and_coarse_label_ranges(tmp_path):
    written = write_cifar100(tmp_path)
    train = written["folder"] / "train"
    d = pickle.loads(train.read_bytes(), encoding="bytes")
    d[b"coarse_labels"][0] = 20
    _write(train, d)
    load_cifar100(written["folder"], label="fine")
    with pytest.raises(CorruptBatchError, match=r"train: labels must be integers in 0\.\.19, found 20"):
        load_cifar100(written["folder"], label="coarse")


def test_train_reports_a_bad_batch_in_one_line(tmp_path):
    folder = write_cifar10(tmp_path / "data", per_batch=10, test=10)["folder"]
    _write(folder / "data_batch_3", _batch(n=10) | {b"labels": [None] * 10})
    out = subprocess.run([sys.executable, "-m", "minisnn", "train", "--data-dir", str(folder.parent), "--epochs", "1",
                          "--out", str(tmp_path / "run"), "--no-progress", "--val-size", "10"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert f"{folder / 'data_batch_3'}: labels must be integers in 0..9, found None" in out.stderr, out.stderr
