"""Checkpoints written by torch.save load exactly, without torch at load time."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from minisnn.io import (CheckpointError, UnsafeCheckpointError, describe_checkpoint, load_checkpoint,  # noqa: E402
                        read_torch_zip)

from .zip_tools import read_records, write_zip  # noqa: E402

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool, torch.uint16]


def expected_array(t) -> np.ndarray:
    """What minisnn should return for torch tensor `t` (bfloat16 widened exactly to float32)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    if t.dtype == torch.uint16:
        return t.contiguous().view(torch.int16).numpy().view(np.uint16)
    return t.contiguous().numpy()


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == np.ascontiguousarray(b).tobytes()


def random_tensor(dtype, shape, seed):
    gen = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=gen) > 0.5
    if dtype.is_floating_point:
        t = torch.randn(shape, generator=gen, dtype=torch.float64) * 100
        flat = t.view(-1)
        if flat.numel() >= 4:  # special values survive bit for bit
            flat[:4] = torch.tensor([float("nan"), float("inf"), -0.0, 1e-40], dtype=torch.float64)
        return t.to(dtype)
    if dtype == torch.uint16:
        return torch.randint(0, 2**15, shape, generator=gen, dtype=torch.int32).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -1000), min(info.max, 1000), shape, generator=gen, dtype=torch.int64).to(dtype)


def make_view(base, kind: str):
    """Views torch.save stores as (storage, offset, size, stride) of a larger storage."""
    if kind == "transposed" and base.dim() >= 2:
        return base.transpose(0, -1)
    if kind == "strided" and base.dim() >= 1:
        return base[..., ::2]
    if kind == "offset" and base.numel() > 2:
        return base.reshape(-1)[1:-1]
    if kind == "expanded":
        return base.unsqueeze(0).expand(2, *base.shape)
    if kind == "scalar" and base.numel() > 1:
        return base.reshape(-1)[1]
    return base


@st.composite
def torch_state_dicts(draw):
    state, bases = OrderedDict(), []
    for i in range(draw(st.integers(1, 5))):
        if bases and draw(st.booleans()):  # another view of an existing storage
            base = draw(st.sampled_from(bases))
        else:
            dtype = draw(st.sampled_from(DTYPES))
            shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
            base = random_tensor(dtype, shape, draw(st.integers(0, 2**31 - 1)))
            bases.append(base)
        kind = draw(st.sampled_from(["plain", "transposed", "strided", "offset", "expanded", "scalar"]))
        state[f"layer{i}.{kind}"] = make_view(base, kind)
    return state


@given(state=torch_state_dicts())
def test_torch_save_state_dicts_load_exactly(state):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sd.pth"
        torch.save(state, path)
        loaded = load_checkpoint(path)
    assert list(loaded) == list(state)
    for name, t in state.items():
        assert same(loaded[name], expected_array(t)), name


def test_shared_storage_views_are_independent_arrays(tmp_path):
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    state = OrderedDict(full=base, rows=base[2:4], cols=base[:, 1::3], t=base.t(), one=base[1, 2])
    torch.save(state, tmp_path / "s.pt")
    assert sum("/data/" in n for n in read_records(tmp_path / "s.pt")) == 1  # one storage record
    loaded = load_checkpoint(tmp_path / "s.pt")
    for name, t in state.items():
        assert same(loaded[name], t.contiguous().numpy()), name
    loaded["full"][...] = -1
    assert loaded["rows"][0, 0] == 16.0 and loaded["one"] == 10.0


def test_bfloat16_is_widened_exactly(tmp_path):
    bits = torch.arange(0, 2**16, dtype=torch.int32).to(torch.int16)  # every bf16 bit pattern
    t = bits.view(torch.bfloat16)
    torch.save({"w": t}, tmp_path / "bf.pt")
    loaded = load_checkpoint(tmp_path / "bf.pt")["w"]
    assert loaded.dtype == np.float32
    assert same(loaded, t.to(torch.float32).numpy())


def _timm_checkpoint():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10))
    # what AdamW.state_dict() holds after one step (built by hand: torch.optim takes seconds to import)
    params = list(model.parameters())
    optimizer = {
        "state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.randn_like(p), "exp_avg_sq": torch.rand_like(p)}
                  for i, p in enumerate(params)},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.05, "amsgrad": False,
                          "foreach": None, "maximize": False, "capturable": False, "differentiable": False,
                          "fused": None, "params": list(range(len(params)))}],
    }
    args = argparse.Namespace(model="vitsnn", lr=5e-4, epochs=300, mixup=0.5, aa="rand-m9-n1-mstd0.4-inc1",
                              layer=4, dim=384, device="cuda", sched=None, input_size=(3, 32, 32),
                              world_size=1, amp=True, dev=torch.device("cuda", 0))
    return model, {
        "epoch": 299, "arch": "vitsnn", "state_dict": model.state_dict(), "optimizer": optimizer,
        "version": 2, "args": args, "amp_scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 17},
        "metric": np.float64(95.25),
    }


def test_timm_checkpoint_with_namespace_and_optimizer(tmp_path):
    model, ckpt = _timm_checkpoint()
    torch.save(ckpt, tmp_path / "model_best.pth.tar")
    sd = load_checkpoint(tmp_path / "model_best.pth.tar")
    assert sd.source == "torch-zip['state_dict']"
    assert sd.dropped == ["epoch", "arch", "optimizer", "version", "args", "amp_scaler", "metric"]
    assert list(sd) == list(model.state_dict())
    for k, t in model.state_dict().items():
        assert same(sd[k], t.numpy()), k
    assert sd["1.num_batches_tracked"].shape == () and sd["1.num_batches_tracked"].dtype == np.int64

    everything = read_torch_zip(tmp_path / "model_best.pth.tar")
    assert everything["args"]["aa"] == "rand-m9-n1-mstd0.4-inc1" and everything["args"]["input_size"] == (3, 32, 32)
    assert everything["args"]["dev"] == "cuda:0" and everything["metric"] == 95.25
    assert everything["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    exp_avg = ckpt["optimizer"]["state"][0]["exp_avg"]
    assert same(everything["optimizer"]["state"][0]["exp_avg"], exp_avg.numpy())
    text = describe_checkpoint(tmp_path / "model_best.pth.tar")
    assert "epoch=299" in text and "arch='vitsnn'" in text and "args" in text


def test_mae_checkpoint_with_module_prefix(tmp_path):
    model, ckpt = _timm_checkpoint()
    weights = OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    torch.save({"model": weights, "optimizer": ckpt["optimizer"], "epoch": 7, "scaler": {"scale": 1.0},
                "args": ckpt["args"]}, tmp_path / "checkpoint-7.pth")
    sd = load_checkpoint(tmp_path / "checkpoint-7.pth")
    assert sd.source == "torch-zip['model']" and sd.stripped_prefix == "module."
    assert sd.dropped == ["optimizer", "epoch", "scaler", "args"]
    assert list(sd) == list(model.state_dict())


def test_parameters_and_tensors_with_attributes(tmp_path):
    p = torch.nn.Parameter(torch.randn(3, 2))
    t = torch.randn(4)
    t.note = "tensor with python state"  # pickled through torch._tensor._rebuild_from_type_v2
    torch.save({"p": p, "t": t}, tmp_path / "a.pt")
    sd = load_checkpoint(tmp_path / "a.pt")
    assert same(sd["p"], p.detach().numpy()) and same(sd["t"], t.numpy())


def test_big_endian_files_are_byteswapped(tmp_path):
    state = OrderedDict(w=torch.randn(3, 5, dtype=torch.float32), n=torch.tensor(123456789, dtype=torch.int64),
                        h=torch.randn(4, dtype=torch.float64).t())
    torch.save(state, tmp_path / "le.pt")
    records = read_records(tmp_path / "le.pt")
    prefix = next(n for n in records if n.endswith("data.pkl"))[: -len("data.pkl")]
    itemsizes = {"0": 4, "1": 8, "2": 8}
    for key, size in itemsizes.items():
        raw = np.frombuffer(records[f"{prefix}data/{key}"], dtype=f"<u{size}")
        records[f"{prefix}data/{key}"] = raw.astype(f">u{size}").tobytes()
    records[f"{prefix}byteorder"] = b"big"
    write_zip(tmp_path / "be.pt", records)
    sd = load_checkpoint(tmp_path / "be.pt")
    for k, t in state.items():
        assert same(sd[k], t.numpy()), k


def test_refused_torch_files(tmp_path):
    lin = torch.nn.Linear(2, 2)
    torch.save(lin.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy"):
        load_checkpoint(tmp_path / "legacy.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(lin), tmp_path / "scripted.pt")
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_checkpoint(tmp_path / "scripted.pt")
    torch.save(lin, tmp_path / "module.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        load_checkpoint(tmp_path / "module.pt")
    torch.save({"w": torch.zeros(2, dtype=torch.float8_e4m3fn)}, tmp_path / "f8.pt")
    with pytest.raises(CheckpointError, match="torch.float8_e4m3fn are not supported"):
        load_checkpoint(tmp_path / "f8.pt")


class System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_payload_in_real_torch_checkpoint_is_not_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {"w": torch.ones(2)}, "args": System(marker)}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system"):
        load_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_loading_needs_no_torch(tmp_path):
    _, ckpt = _timm_checkpoint()
    torch.save(ckpt, tmp_path / "c.pth.tar")
    program = ("import sys; sys.modules['torch'] = None\n"
               "import minisnn\n"
               f"sd = minisnn.load_checkpoint({str(tmp_path / 'c.pth.tar')!r})\n"
               "print(len(sd), sorted(sd.dropped)[0])")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(ckpt["state_dict"])), "amp_scaler"]


def test_files_saved_without_crc(tmp_path):
    state = OrderedDict(w=torch.randn(4, 3), n=torch.tensor(2))
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(state, tmp_path / "nocrc.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    sd = load_checkpoint(tmp_path / "nocrc.pt")
    assert all(same(sd[k], t.numpy()) for k, t in state.items())
