"""load_checkpoint / save_checkpoint / describe_checkpoint, round trips without torch."""
from __future__ import annotations

import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minisnn
from minisnn.io import (CheckpointError, StateDict, describe_checkpoint, load_checkpoint, read_safetensors,
                        read_safetensors_metadata, read_torch_zip, save_checkpoint, write_safetensors,
                        write_torch_zip)
from minisnn.io.torch_zip import TorchZipReader
from minisnn.nn.module import Module, Parameter

from .zip_tools import record_span

SAVABLE = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool",
           "uint16", "uint32", "uint64"]


@st.composite
def arrays(draw):
    """Arrays of every savable dtype, 0-d to 3-d (empty dims included), some non-contiguous or big-endian."""
    dtype = np.dtype(draw(st.sampled_from(SAVABLE)))
    if dtype.itemsize > 1 and draw(st.booleans()):
        dtype = dtype.newbyteorder(">")
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    array = draw(hnp.arrays(dtype, shape, elements=hnp.from_dtype(dtype, allow_nan=True) if dtype.kind == "f"
                            else None))
    if array.ndim >= 2 and draw(st.booleans()):
        array = array.T
    return array


state_dicts = st.dictionaries(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                                      max_size=12), arrays(), min_size=1, max_size=5).map(OrderedDict)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical values (NaN payloads included), shape and native dtype."""
    return (a.shape == b.shape and a.dtype == b.dtype.newbyteorder("=")
            and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b, b.dtype.newbyteorder("=")).tobytes())


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".pth.tar", ".safetensors"])
@given(state=state_dicts)
def test_save_then_load_is_exact(suffix, state):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"w{suffix}"
        save_checkpoint(state, path)
        loaded = load_checkpoint(path)
    assert isinstance(loaded, StateDict) and list(loaded) == list(state)
    assert loaded.dropped == [] and loaded.stripped_prefix is None
    assert loaded.source == ("safetensors" if suffix == ".safetensors" else "torch-zip")
    for name, array in state.items():
        assert _same(loaded[name], array), name
        assert loaded[name].flags.c_contiguous and loaded[name].flags.writeable


def test_written_zip_is_aligned_and_deterministic(tmp_path):
    state = OrderedDict((f"t{i}", np.full((i + 1, 3), i, dtype=np.float32)) for i in range(5))
    save_checkpoint(state, tmp_path / "a.pt")
    save_checkpoint(state, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.pt") as zf:
        names = zf.namelist()
    assert names[0] == "archive/data.pkl" and "archive/version" in names and "archive/byteorder" in names
    for name in names:
        assert record_span(tmp_path / "a.pt", name)[0] % 64 == 0, name


def test_safetensors_header_and_metadata(tmp_path):
    write_safetensors({"a": np.ones(3, np.float16)}, tmp_path / "a.safetensors", metadata={"format": "np"})
    raw = (tmp_path / "a.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0 and raw[8:9] == b"{"
    assert read_safetensors_metadata(tmp_path / "a.safetensors") == {"format": "np"}
    assert _same(read_safetensors(tmp_path / "a.safetensors")["a"], np.ones(3, np.float16))


def _wrapped(tmp_path, name, obj):
    path = tmp_path / name
    write_torch_zip(obj, path)
    return path


def _weights():
    return OrderedDict([("conv.weight", np.arange(6, dtype=np.float32).reshape(2, 3)),
                        ("bn.num_batches_tracked", np.array(3, dtype=np.int64))])


def _optimizer():
    return {"state": {0: {"step": np.array(10.0, np.float32), "exp_avg": np.ones((2, 3), np.float32)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "fused": None}]}


def test_timm_style_wrapper(tmp_path):
    path = _wrapped(tmp_path, "model_best.pth.tar", {
        "epoch": 299, "arch": "vitsnn", "state_dict": _weights(), "optimizer": _optimizer(), "version": 2,
        "args": {"lr": 5e-4, "model": "vitsnn"}, "amp_scaler": {"scale": 65536.0}, "metric": 95.2})
    sd = load_checkpoint(path)
    assert sd.source == "torch-zip['state_dict']"
    assert sd.dropped == ["epoch", "arch", "optimizer", "version", "args", "amp_scaler", "metric"]
    assert list(sd) == list(_weights()) and all(_same(sd[k], v) for k, v in _weights().items())


def test_mae_style_wrapper_and_explicit_key(tmp_path):
    path = _wrapped(tmp_path, "checkpoint-99.pth", {
        "model": _weights(), "optimizer": _optimizer(), "epoch": 99, "scaler": {"scale": 1.0}})
    sd = load_checkpoint(path)
    assert sd.source == "torch-zip['model']" and sd.dropped == ["optimizer", "epoch", "scaler"]
    assert set(sd) == set(_weights())
    with pytest.raises(CheckpointError, match="has no key 'ema'"):
        load_checkpoint(path, key="ema")
    with pytest.raises(CheckpointError, match="entry 'epoch' is a int"):
        load_checkpoint(path, key="epoch")


def test_only_the_chosen_tensors_are_read(tmp_path, monkeypatch):
    path = _wrapped(tmp_path, "c.pth", {"optimizer": _optimizer(), "state_dict": _weights()})
    read = []
    original = TorchZipReader._read

    def spy(self, name):
        read.append(name)
        return original(self, name)

    monkeypatch.setattr(TorchZipReader, "_read", spy)
    load_checkpoint(path)
    data_records = sorted(n for n in read if "/data/" in n)
    assert data_records == ["archive/data/2", "archive/data/3"]  # the two weights, not the optimizer's 0, 1


def test_module_prefix_is_stripped(tmp_path):
    weights = OrderedDict(("module." + k, v) for k, v in _weights().items())
    sd = load_checkpoint(_wrapped(tmp_path, "dp.pth", {"state_dict": weights}))
    assert list(sd) == list(_weights()) and sd.stripped_prefix == "module."
    # only a prefix that every tensor carries is DataParallel's: mixed names are kept as they are
    mixed = OrderedDict([("module.w", np.ones(1)), ("w", np.zeros(1)), ("module.", np.ones(2))])
    sd = load_checkpoint(_wrapped(tmp_path, "mixed.pth", mixed))
    assert list(sd) == ["module.w", "w", "module."] and sd.stripped_prefix is None


def test_plain_dict_with_extra_values_keeps_the_tensors(tmp_path):
    sd = load_checkpoint(_wrapped(tmp_path, "p.pt", {"w": np.ones(2), "note": "hello", "step": 5}))
    assert list(sd) == ["w"] and sd.source == "torch-zip" and sd.dropped == ["note", "step"]
    with pytest.raises(CheckpointError, match="contains no tensors"):
        load_checkpoint(_wrapped(tmp_path, "n.pt", {"epoch": 1}))
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(_wrapped(tmp_path, "l.pt", [np.ones(2)]))


def test_read_torch_zip_returns_everything(tmp_path):
    obj = {"state_dict": _weights(), "optimizer": _optimizer(), "epoch": 3, "nested": [(1, "a"), {"x": None}]}
    back = read_torch_zip(_wrapped(tmp_path, "all.pth", obj))
    assert back["epoch"] == 3 and back["nested"] == [(1, "a"), {"x": None}]
    assert isinstance(back["state_dict"], OrderedDict)
    assert _same(back["optimizer"]["state"][0]["exp_avg"], np.ones((2, 3), np.float32))
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_verbose_prints_one_line_and_quiet_prints_nothing(tmp_path, capsys):
    path = _wrapped(tmp_path, "v.pth", {"state_dict": _weights(), "epoch": 1})
    load_checkpoint(path)
    assert capsys.readouterr().out == ""
    load_checkpoint(path, verbose=True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "2 tensors" in out and "dropped: epoch" in out and "['state_dict']" in out


def test_describe_checkpoint(tmp_path):
    weights = OrderedDict(("module." + k, v) for k, v in _weights().items())
    path = _wrapped(tmp_path, "d.pth.tar", {"epoch": 12, "arch": "spikformer", "state_dict": weights,
                                            "optimizer": _optimizer()})
    text = describe_checkpoint(path)
    assert str(path) in text and "weights under 'state_dict'" in text
    assert "2 tensors, 7 elements" in text and "float32 x1, int64 x1" in text
    assert "epoch=12" in text and "arch='spikformer'" in text and "optimizer" in text
    assert "module." in text and "largest: conv.weight (2, 3)" in text


class Tiny(Module):
    def __init__(self):
        super().__init__()
        self.weight = Parameter(np.arange(4, dtype=np.float32).reshape(2, 2))
        self.register_buffer("count", np.array(0, dtype=np.int64))


def test_module_round_trip_through_both_formats(tmp_path):
    model = Tiny()
    for name in ("tiny.pth", "tiny.safetensors"):
        save_checkpoint(model, tmp_path / name)
        other = Tiny()
        other.weight.data[...] = 0
        other.load_state_dict(load_checkpoint(tmp_path / name))
        assert np.array_equal(other.weight.data, model.weight.data)
    assert minisnn.load_checkpoint is load_checkpoint and minisnn.save_checkpoint is save_checkpoint


def test_save_checkpoint_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        save_checkpoint(_weights(), tmp_path / "w.npz")
    with pytest.raises(TypeError, match="dtype object"):
        save_checkpoint({"w": np.array([None])}, tmp_path / "w.pt")
    with pytest.raises(TypeError, match="keys must be strings"):
        save_checkpoint({1: np.ones(1)}, tmp_path / "w.pt")
    with pytest.raises(TypeError, match="complex64 cannot be stored in safetensors"):
        save_checkpoint({"c": np.ones(1, np.complex64)}, tmp_path / "w.safetensors")
    with pytest.raises(TypeError, match="cannot save a value of type set"):
        write_torch_zip({"s": {1, 2}}, tmp_path / "w.pt")
    assert not list(tmp_path.iterdir())  # failed saves leave no files behind
