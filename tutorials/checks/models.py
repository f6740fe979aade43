"""Checkers for notebooks 07-11: attention, MSViT, Dy-SViT, the training recipe, checkpoints."""
from __future__ import annotations

import os
import pickletools
import struct
import tempfile
import zipfile

import numpy as np

from minisnn import Tensor
from minisnn.attention import ssa
from minisnn.io import UnsafeCheckpointError, load_checkpoint, save_checkpoint
from minisnn.optim import AdamW, TimmCosine, WarmupCosine
from minisnn.spiking import LIF, surrogate

from .verdict import Wrong, checker, close, close_to_d_alpha


# ----------------------------------------------------------------------------- 07 attention

@checker
def check_07_max_entry(largest):
    """`largest`: the largest possible entry of (QKᵀ)V for binary Q, K, V with N = 64 tokens and d = 32."""
    if int(largest) != 64 * 32:
        raise Wrong(f"{largest}: each entry of QKᵀ is at most d = 32 and (QKᵀ)V sums N = 64 of them")
    return "N·d = 2048 = 2^11: exact in float32 (24 bits) and, only just, in float16 (11 bits)"


@checker
def check_07_costs(costs):
    """`costs(nq, nk, d, dv)` -> (multiply-adds of (QKᵀ)V, of Q(KᵀV))."""
    for nq, nk, d, dv in ((64, 64, 32, 32), (16, 256, 32, 32), (8, 8, 64, 16), (100, 3, 5, 7)):
        got = tuple(int(c) for c in costs(nq, nk, d, dv))
        expected = (nq * nk * d + nq * nk * dv, nk * d * dv + nq * d * dv)
        if got != expected:
            raise Wrong(f"Nq={nq}, Nk={nk}, d={d}, dv={dv}: expected {expected}, got {got}")
    return ("(QKᵀ)V costs Nq·Nk·(d + dv), Q(KᵀV) costs (Nq + Nk)·d·dv; "
            "for Nq = 16, Nk = 256 QKᵀ first is cheaper")


@checker
def check_07_ssa_backward(ssa_backward_kv):
    """`ssa_backward_kv(q, k, v, g, scale)` -> (dq, dk, dv) of z = scale·(QKᵀ)V, without an N×N array."""
    rng = np.random.default_rng(10)
    q, k, v = (rng.standard_normal((2, 12, 4)) for _ in range(3))
    g = rng.standard_normal((2, 12, 4))
    leaves = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    ssa(*leaves, scale=0.25).backward(g)
    for name, got, leaf in zip("qkv", ssa_backward_kv(q, k, v, g, 0.25), leaves):
        close(f"d{name}", got, leaf.grad)
    return "dQ = s·G·Mᵀ with M = KᵀV, dK = s·V·(GᵀQ)ᵀ, dV = s·K·(QᵀG): only d×d products"


# ----------------------------------------------------------------------------- 08 MSViT

@checker
def check_08_attention_trains(trains):
    """`trains`: {1.0: spikes [4], 0.5: spikes [4]} of a τ = 2 LIF under the constant input 1."""
    x = Tensor(np.ones((4, 1)))
    for threshold in (1.0, 0.5):
        expected = LIF(tau=2.0, v_threshold=threshold)(x).data[:, 0]
        if threshold not in trains:
            raise Wrong(f"give the spike train for threshold {threshold}")
        close(f"threshold {threshold}", np.asarray(trains[threshold], dtype=np.float64).ravel(), expected)
    return "threshold 1.0: H climbs 0.5, 0.75, 0.875, 0.9375 and never fires; threshold 0.5: fires every step"


# ----------------------------------------------------------------------------- 09 Dy-SViT

@checker
def check_09_atan_d_alpha(d_k):
    """`d_k(x, k)`: ∂p_k/∂k for p_k(x) = arctan(πkx/2)/π + 1/2."""
    close_to_d_alpha(d_k, surrogate.ATan(), (1.0, 2.0, 5.0), atol=1e-8, relative_step=False)
    return "∂p/∂k = x / (2(1 + (πkx/2)²)), equal to ATan().d_alpha and to finite differences"


# ----------------------------------------------------------------------------- 10 training

@checker
def check_10_cutmix(cutmix):
    """`cutmix(x, y_soft, perm, box)` -> (mixed images, mixed targets) for box = (top, bottom, left, right)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 3, 8, 8))
    y = np.eye(10)[[1, 4, 4, 9]]
    perm = np.array([2, 0, 3, 1])
    for box in ((2, 6, 1, 4), (0, 8, 0, 8), (3, 3, 0, 8)):
        top, bottom, left, right = box
        expected_x = x.copy()
        expected_x[:, :, top:bottom, left:right] = x[perm][:, :, top:bottom, left:right]
        lam = 1 - (bottom - top) * (right - left) / 64
        got_x, got_y = cutmix(x.copy(), y.copy(), perm, box)
        close(f"box {box}: images", got_x, expected_x)
        close(f"box {box}: targets (weight of the own label = 1 − box area / image area)", got_y,
               lam * y + (1 - lam) * y[perm])
    return "the pasted box's true area sets the label weight, also when the box is clipped at the border"


@checker
def check_10_schedule_gap(epoch):
    """`epoch`: where WarmupCosine and TimmCosine (300 epochs, 20 warm-up, 1e-3 -> 1e-5) differ the most."""
    opt = AdamW([Tensor(np.zeros(1), requires_grad=True)], lr=1e-3)
    ours = WarmupCosine(opt, warmup=20, total=300, base_lr=1e-3, min_lr=1e-5)
    timm = TimmCosine(opt, base_lr=1e-3, t_initial=300, lr_min=1e-5, warmup_t=20)
    gap = np.array([abs(ours.lr_at(e) - timm.lr_at(e)) for e in range(300)])
    if int(epoch) != int(gap.argmax()):
        raise Wrong(f"epoch {epoch}: the gap there is {gap[int(epoch)]:.2e}, the largest is {gap.max():.2e} "
                    f"at epoch {gap.argmax()}")
    return (f"epoch {gap.argmax()}: timm's cosine runs over all 300 epochs from epoch 0, ours over the 280 after "
            f"warm-up, so timm's is ahead in the middle")


# ----------------------------------------------------------------------------- 11 checkpoints

def _data_pkl(path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return next(archive.read(name) for name in archive.namelist() if name.endswith("data.pkl"))


@checker
def check_11_storage_classes(names):
    """`names`: the storage classes a float16 and a bool tensor name in a checkpoint's data.pkl."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "two.pt")
        save_checkpoint({"h": np.zeros(2, np.float16), "b": np.zeros(2, bool)}, path)
        pkl = _data_pkl(path)
    found = {arg.split()[-1] for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL" and "Storage" in arg}
    if set(names) != found:
        raise Wrong(f"data.pkl names {sorted(found)}, you gave {sorted(set(names))}")
    return f"{sorted(found)}: the storage class carries the dtype"


@checker
def check_11_global_names(global_names):
    """`global_names`: {"eval": ..., "Popen": ...}, the global_name UnsafeCheckpointError reports for each."""
    expected = {}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "hostile.pt")
        for key, module in (("eval", "builtins"), ("Popen", "subprocess")):
            call = f"c{module}\n{key}\n".encode() + b"X" + struct.pack("<I", 1) + b"1" + b"\x85R."
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("archive/data.pkl", b"\x80\x02" + call)
            try:
                load_checkpoint(path)
            except UnsafeCheckpointError as err:
                expected[key] = err.global_name
    for key, name in expected.items():
        if global_names.get(key) != name:
            raise Wrong(f"{key}: the error reports {name!r}, you gave {global_names.get(key)!r}")
    return f"{expected}: refused by name before anything runs"
