"""Damaged and hostile training checkpoints: always the one-line TrainCheckpointError, in bounded memory.

The corruptions start from a real checkpoint of a small model after one training step
(weights, BN buffers, AdamW moments): truncations, bit flips, deleted members, metadata of
the wrong type, `.npy` headers declaring huge shapes.  Each one either still loads or raises
TrainCheckpointError (a ValueError) whose single line names the file; never KeyError,
AttributeError, RecursionError, NotImplementedError or MemoryError.  tracemalloc checks that
loading never allocates more than the file's size plus 2 MiB.
"""
from __future__ import annotations

import io
import json
import os
import stat
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisnn.cli import main
from minisnn.train import Trainer, config_for, load_trained
from minisnn.train.state import (TrainCheckpointError, load_state, load_trainer_checkpoint, load_training_state,
                                 save_state)

SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)
SLACK = 2 * 2**20


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(path, bytes) of a real last.npz after one step on the embedded sample."""
    folder = tmp_path_factory.mktemp("run")
    old = {k: os.environ.get(k) for k in ("MINISNN_DATA_DIR", "XDG_CACHE_HOME")}
    os.environ.pop("MINISNN_DATA_DIR", None)
    os.environ["XDG_CACHE_HOME"] = str(folder / "cache")
    try:
        cfg = config_for("dysvit-tiny", epochs=1, batch_size=16, train_limit=64, out=str(folder),
                         model_overrides=SMALL)
        trainer = Trainer(cfg, progress=False, log=lambda *_: None)
        trainer.train_step(*next(iter(_batches(trainer))))
        path = trainer.save()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return path, path.read_bytes()


def _batches(trainer):
    from minisnn import data as D
    return D.BatchIterator(trainer.train_x, trainer.train_y, 16, transform=trainer.train_tf, drop_last=True)


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _meta(members: dict[str, bytes]) -> dict:
    return json.loads(np.load(io.BytesIO(members["__meta__.npy"])).tobytes())


def _with_meta(members: dict[str, bytes], meta) -> dict[str, bytes]:
    raw = json.dumps(meta).encode() if not isinstance(meta, bytes) else meta
    return {**members, "__meta__.npy": _npy(np.frombuffer(raw, np.uint8))}


def _load_all(path) -> None:
    """Every reader of training checkpoints, in the order `minisnn eval`/`export`/`--resume` use them."""
    load_state(path)
    load_trainer_checkpoint(path)
    load_trained(path)
    load_training_state(path)


def _assert_refused_in_bounded_memory(path, must_fail: bool = False) -> None:
    size = os.path.getsize(path)
    tracemalloc.start()
    try:
        _load_all(path)
        failed = None
    except TrainCheckpointError as exc:
        failed = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < size + SLACK, f"peak {peak} bytes for a {size}-byte file"
    if must_fail:
        assert failed is not None
    if failed is not None:
        text = str(failed)
        assert "\n" not in text and text.startswith(str(path)), text


# ------------------------------------------------------------------ generated corruptions
@st.composite
def corruptions(draw, data: bytes):
    kind = draw(st.sampled_from(["truncate", "flip", "delete", "meta", "shape"]))
    if kind == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        out = bytearray(data)
        for pos in draw(st.lists(st.integers(0, 8 * len(data) - 1), min_size=1, max_size=4)):
            out[pos // 8] ^= 1 << (pos % 8)
        return bytes(out)
    members = _members(data)
    if kind == "delete":
        del members[draw(st.sampled_from(sorted(members)))]
        return _zip(members)
    if kind == "meta":
        meta = _meta(members)
        junk = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
                         st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(),
                                                                              max_size=3))
        target = draw(st.sampled_from(["format", "index", "skeleton", "entry", "config", "whole"]))
        if target == "whole":
            meta = draw(junk)
        elif target == "entry":                     # a top-level entry of the state gets a junk value
            entries = meta["skeleton"]["__dict__"]
            i = draw(st.integers(0, len(entries) - 1))
            entries[i][1] = draw(junk)
        elif target == "config":                    # one field of the training configuration
            entries = dict((k, v) for k, v in meta["skeleton"]["__dict__"])
            fields = entries["config"]["__dict__"]
            i = draw(st.integers(0, len(fields) - 1))
            fields[i][1] = draw(junk)
            meta["skeleton"]["__dict__"] = [[k, v] for k, v in entries.items()]
        else:
            meta[target] = draw(junk)
        return _zip(_with_meta(members, meta))
    name = draw(st.sampled_from(sorted(n for n in members if n != "__meta__.npy")))
    shape = draw(st.sampled_from([(10**12,), (2**31, 2**31), (2**62, 4), (7, 10**9)]))
    members[name] = _header(shape) + members[name][128:]
    return _zip(members)


@settings(max_examples=60)
@given(data=st.data())
def test_generated_corruptions_give_the_one_line_error_in_bounded_memory(checkpoint, tmp_path_factory, data):
    path, original = checkpoint
    damaged = data.draw(corruptions(original))
    target = tmp_path_factory.mktemp("bad") / "last.npz"
    target.write_bytes(damaged)
    _assert_refused_in_bounded_memory(target)


# ------------------------------------------------------------------ specific hostile files
def test_a_huge_declared_shape_is_refused_before_allocating(checkpoint, tmp_path):
    members = _members(checkpoint[1])
    members["a0.npy"] = _header((10**12,)) + members["a0.npy"][128:]
    bad = tmp_path / "huge.npz"
    bad.write_bytes(_zip(members))
    with pytest.raises(TrainCheckpointError, match=r"declares shape \(1000000000000,\)"):
        load_state(bad)
    _assert_refused_in_bounded_memory(bad, must_fail=True)


def _header(shape) -> bytes:
    """An .npy header (magic included) declaring float32 `shape`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_a_zip_bomb_member_is_refused(checkpoint, tmp_path):
    members = _members(checkpoint[1])
    members["a0.npy"] = _npy(np.zeros(50_000_000, np.uint8))          # 50 MB of zeros deflate to ~50 kB
    bad = tmp_path / "bomb.npz"
    bad.write_bytes(_zip(members, zipfile.ZIP_DEFLATED))
    assert bad.stat().st_size < 1_000_000
    with pytest.raises(TrainCheckpointError, match="more than the 100x expansion allowed"):
        load_state(bad)
    _assert_refused_in_bounded_memory(bad, must_fail=True)


def test_members_sharing_their_bytes_cannot_multiply_them(tmp_path):
    """Two central-directory entries pointing at the same stored data: refused, not read twice."""
    good = save_state({"x": np.arange(100_000.0)}, tmp_path / "good.npz")
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        target = zf.getinfo("a0.npy").header_offset
    meta_entry = data.rfind(b"PK\x01\x02")                          # the last central entry: __meta__.npy
    entry = data.find(b"PK\x01\x02")                                  # the first: a0.npy
    assert entry != meta_entry
    data[meta_entry + 42:meta_entry + 46] = target.to_bytes(4, "little")   # __meta__ now points at a0's bytes
    bad = tmp_path / "shared.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(TrainCheckpointError):
        load_state(bad)


def test_deep_and_malformed_skeletons_are_refused(checkpoint, tmp_path):
    members = _members(checkpoint[1])
    cases = {
        "deep-json": b"[" * 100_000 + b"]" * 100_000,
        "deep": {"format": "minisnn-train-state", "index": {}, "skeleton": json.loads("[" * 200 + "]" * 200)},
        "array-name": {"format": "minisnn-train-state", "index": {}, "skeleton": {"__array__": 5}},
        "unknown-array": {"format": "minisnn-train-state", "index": {}, "skeleton": {"__array__": "s/x"}},
        "float": {"format": "minisnn-train-state", "index": {}, "skeleton": {"__float__": "1e5"}},
        "dict": {"format": "minisnn-train-state", "index": {}, "skeleton": {"__dict__": [[1, 2, 3]]}},
        "index": {"format": "minisnn-train-state", "index": ["a0"], "skeleton": {}},
        "twice": {"format": "minisnn-train-state", "index": {"x": "a0", "y": "a0"}, "skeleton": {}},
        "not-utf8": b"\xff\xfe",
    }
    for name, meta in cases.items():
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(_zip(_with_meta(members, meta)))
        with pytest.raises(TrainCheckpointError) as info:
            load_state(bad)
        assert str(info.value).startswith(str(bad)) and "\n" not in str(info.value), name


def test_wrong_field_types_and_missing_parts_name_the_file(checkpoint, tmp_path):
    state = load_state(checkpoint[0])
    cases = {
        "epoch": dict(state, epoch="3"),
        "classes": dict(state, classes="airplane"),
        "config": dict(state, config={**state["config"], "model_overrides": "dim=3"}),
        "config-type": dict(state, config=[1, 2]),
        "history": dict(state, history=[{"epoch": 1}]),
        "model": {k: v for k, v in state.items() if k != "model"},
        "optimizer": dict(state, optimizer={"state": 3}),
        "weights-kind": dict(state, kind="weights"),
    }
    for name, bad_state in cases.items():
        path = save_state(bad_state, tmp_path / f"{name}.npz")
        with pytest.raises(TrainCheckpointError) as info:
            load_training_state(path)
        assert str(info.value).startswith(str(path)), name


def test_unsupported_compression_is_refused(checkpoint, tmp_path):
    data = bytearray(checkpoint[1])
    offset = data.find(b"PK\x01\x02")              # first central-directory entry: its method field
    data[offset + 10:offset + 12] = (99).to_bytes(2, "little")
    bad = tmp_path / "aes.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(TrainCheckpointError, match="compression method 99"):
        load_state(bad)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "symlink-to-dev-zero", "directory"])
def test_files_that_are_not_regular_are_refused_at_once(tmp_path, kind):
    path = tmp_path / "last.npz"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path = "/dev/zero"
    elif kind == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(TrainCheckpointError, match="not a regular file"):
        load_state(path)
    if kind == "fifo":
        assert stat.S_ISFIFO(os.stat(path).st_mode)


def test_paths_as_bytes_and_pathlike_work(checkpoint):
    path = checkpoint[0]

    class Where:
        def __fspath__(self):
            return str(path)

    for given_path in (bytes(path), Where(), str(path)):
        assert load_trainer_checkpoint(given_path)["model_name"] == "dysvit-tiny"


def test_a_misshaped_weight_is_one_line_naming_the_file_in_eval_and_export(checkpoint, tmp_path, capsys):
    state = load_state(checkpoint[0])
    model = dict(state["model"])
    model["head.weight"] = np.zeros((3, 3), np.float32)
    bad = save_state(dict(state, model=model), tmp_path / "misshaped.npz")
    for argv in (["eval", str(bad), "--split", "val", "--no-progress"], ["export", str(bad), str(tmp_path / "w.npz")],
                 ["verify", str(bad)]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and str(bad) in err and "head.weight" in err, err
    assert not (tmp_path / "w.npz").exists()
