"""Files written by minisnn are read by torch.load(weights_only=True) and by a torch-side safetensors parser."""
from __future__ import annotations

import json
import struct
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from minisnn.io import load_checkpoint, save_checkpoint, write_torch_zip  # noqa: E402

TORCH_ZIP_DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool",
                    "complex64", "complex128", "uint16", "uint32", "uint64"]
SAFETENSORS_DTYPES = [d for d in TORCH_ZIP_DTYPES if not d.startswith("complex")]


def as_numpy(t) -> np.ndarray:
    """Exact NumPy copy of a torch tensor (torch cannot export uint16/32/64 to numpy on every version)."""
    unsigned = {torch.uint16: np.uint16, torch.uint32: np.uint32, torch.uint64: np.uint64}
    if t.dtype in unsigned:
        signed = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}[t.dtype]
        return t.contiguous().view(signed).numpy().view(unsigned[t.dtype])
    return t.contiguous().numpy()


def same(a: np.ndarray, b: np.ndarray) -> bool:
    b = np.asarray(b, dtype=b.dtype.newbyteorder("="), order="C")
    return a.shape == b.shape and a.dtype == b.dtype and np.ascontiguousarray(a).tobytes() == b.tobytes()


def state_dicts(dtypes):
    array = st.sampled_from(dtypes).flatmap(lambda d: hnp.arrays(
        np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
    return st.dictionaries(st.from_regex(r"[a-z]{1,6}(\.[a-z0-9_]{1,6}){0,3}", fullmatch=True), array,
                           min_size=1, max_size=6).map(OrderedDict)


@pytest.mark.parametrize("suffix", [".pt", ".pth.tar"])
@given(state=state_dicts(TORCH_ZIP_DTYPES))
def test_torch_load_weights_only_reads_torch_zip(suffix, state):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"w{suffix}"
        save_checkpoint(state, path)
        back = torch.load(path, weights_only=True)
    assert isinstance(back, OrderedDict) and list(back) == list(state)
    for name, array in state.items():
        assert back[name].is_contiguous() and same(as_numpy(back[name]), array), name


def test_torch_load_reads_nested_training_state(tmp_path):
    rng = np.random.default_rng(0)
    weights = OrderedDict(w=rng.standard_normal((3, 4)).astype(np.float32), n=np.array(5, np.int64))
    obj = {"state_dict": weights, "epoch": 12, "metric": 91.5, "arch": "spikformer", "flags": [True, False, None],
           "shape": (3, 32, 32), "big": 2**70, "neg": -(2**40), "opt": {0: {"step": np.array(3.0)}}}
    write_torch_zip(obj, tmp_path / "train.pth.tar")
    back = torch.load(tmp_path / "train.pth.tar", weights_only=True)
    assert {k: v for k, v in back.items() if k not in ("state_dict", "opt")} == {
        k: v for k, v in obj.items() if k not in ("state_dict", "opt")}
    assert same(back["state_dict"]["w"].numpy(), weights["w"]) and back["state_dict"]["n"].shape == ()
    assert same(back["opt"][0]["step"].numpy(), np.array(3.0))


def test_torch_load_with_mmap_accepts_the_alignment(tmp_path):
    weights = OrderedDict((f"t{i}", np.full(2 * i + 1, i, np.float64)) for i in range(4))
    save_checkpoint(weights, tmp_path / "m.pt")
    back = torch.load(tmp_path / "m.pt", weights_only=True, mmap=True)
    assert all(same(back[k].numpy(), v) for k, v in weights.items())


def test_torch_module_load_state_dict_round_trip(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    model(torch.randn(5, 4))  # updates running stats and num_batches_tracked
    torch.save(model.state_dict(), tmp_path / "orig.pth")
    save_checkpoint(load_checkpoint(tmp_path / "orig.pth"), tmp_path / "again.pth")
    other = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    other.load_state_dict(torch.load(tmp_path / "again.pth", weights_only=True))
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b) and a.dtype == b.dtype, k


# ------------------------------------------------------------- safetensors
ST_TO_TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
               "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
               "BOOL": torch.bool, "U16": torch.uint16, "U32": torch.uint32, "U64": torch.uint64}


def torch_read_safetensors(path) -> dict:
    """A minimal independent safetensors parser that builds torch tensors from the bytes."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = bytearray(raw[8 + n:])
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        chunk = data[begin:end]
        dtype = ST_TO_TORCH[info["dtype"]]
        flat = torch.frombuffer(chunk, dtype=dtype) if chunk else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(info["shape"]).clone()
    return out


def torch_write_safetensors(tensors: dict, path) -> None:
    """Independent writer in the reference library's layout: sorted by dtype size then name, padded header."""
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    codes = {v: k for k, v in ST_TO_TORCH.items()}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in order:
        t = tensors[name].contiguous()
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@given(state=state_dicts(SAFETENSORS_DTYPES))
def test_torch_side_parser_reads_our_safetensors(state):
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(state, Path(tmp) / "w.safetensors")
        back = torch_read_safetensors(Path(tmp) / "w.safetensors")
    assert set(back) == set(state)
    for name, array in state.items():
        assert same(as_numpy(back[name]), array), name


def test_we_read_reference_layout_safetensors_with_bfloat16(tmp_path):
    gen = torch.Generator().manual_seed(0)
    tensors = {"embed.weight": torch.randn(5, 3, generator=gen).to(torch.bfloat16),
               "head.bias": torch.randn(3, generator=gen, dtype=torch.float64),
               "bn.num_batches_tracked": torch.tensor(9), "mask": torch.rand(4, generator=gen) > 0.5,
               "half": torch.randn(2, 2, generator=gen).half(), "empty": torch.zeros(0, 2)}
    torch_write_safetensors(tensors, tmp_path / "ref.safetensors")
    sd = load_checkpoint(tmp_path / "ref.safetensors")
    assert set(sd) == set(tensors)
    for name, t in tensors.items():
        expected = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        assert same(sd[name], expected), name
