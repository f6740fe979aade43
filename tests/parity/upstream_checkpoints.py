"""Random-weight oracles that fire, saved the way the upstream training scripts save them.

* `timm`:  timm `CheckpointSaver` (Spikformer/MSViT/QKFormer CIFAR `train.py`):
           {'epoch', 'arch', 'state_dict', 'optimizer', 'version': 2, 'args': argparse.Namespace,
            'amp_scaler', 'metric'}
* `mae`:   MAE-style `misc.save_model` (MSViT/QKFormer ImageNet): {'model', 'optimizer', 'epoch', 'scaler', 'args'}
* `hf`:    a bare state_dict in `pytorch_model.bin`, as on a Hugging Face model card (Dy-SViT).

The optimizer entry is a real AdamW state after one step (moment tensors the loader must skip),
and `args` carries what the training scripts record (model name, T as `time_step`, heads, ...).
Needs torch; imported only by torch-dependent test modules.
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from hypothesis import strategies as st

from minisnn.models import MSViT, QKFormer, Spikformer
from minisnn.models.dysvit import DySViT
from minisnn.parity.oracles import build_dysvit, build_msvit, build_qkformer, build_spikformer
from minisnn.parity.oracles.calibrate import calibrate, firing_rates, perturb_hypernetworks

FAMILIES = ("spikformer", "msvit", "qkformer", "dysvit")
BUILDERS = {"spikformer": build_spikformer, "msvit": build_msvit, "qkformer": build_qkformer, "dysvit": build_dysvit}
MODELS = {"spikformer": Spikformer, "msvit": MSViT, "qkformer": QKFormer, "dysvit": DySViT}
ARCH = {"spikformer": "spikformer", "msvit": "vitsnn", "qkformer": "vitsnn"}
STYLES = {"spikformer": ("timm", "mae"), "msvit": ("timm", "mae"), "qkformer": ("timm", "mae"), "dysvit": ("hf",)}
FILE_NAMES = {"timm": "model_best.pth.tar", "mae": "checkpoint-299.pth", "hf": "pytorch_model.bin"}
HEADS_KEY = {"spikformer": "num_heads", "msvit": "num_heads", "qkformer": "num_heads", "dysvit": "heads"}


# ------------------------------------------------------------------ configurations
@st.composite
def configs(draw, family: str) -> dict:
    """Small random configurations (constructor kwargs of both the oracle and the minisnn model) + batch B."""
    if family == "dysvit":
        patch = draw(st.sampled_from([4, 8]))
        cfg = dict(dim=draw(st.sampled_from([16, 32, 48])), heads=draw(st.sampled_from([1, 2])),
                   depth=draw(st.integers(1, 2)), mlp_ratio=draw(st.sampled_from([1, 2, 4])), patch_size=patch,
                   img_size=draw(st.sampled_from([16, 32])), dynamic_slope=draw(st.booleans()),
                   stability=draw(st.booleans()), num_classes=draw(st.sampled_from([3, 10])))
    else:
        cfg = dict(T=draw(st.integers(1, 3)), img_size=draw(st.sampled_from([16, 32])),
                   mlp_ratio=draw(st.sampled_from([1, 2, 4])), num_classes=draw(st.sampled_from([3, 10])),
                   attn_threshold=draw(st.sampled_from([0.5, 0.75, 1.0])))
        if family == "spikformer":
            cfg.update(embed_dim=draw(st.sampled_from([16, 24, 32, 48])), num_heads=draw(st.sampled_from([1, 2])),
                       depth=draw(st.integers(1, 2)))
        else:
            E = draw(st.sampled_from([16, 32, 48]))
            # MSViT sums Q and P over the d channels of a head in stages 1-2: heads of more than 12
            # channels make the attention neuron fire (almost) always, whatever the BN centres.
            heads = [h for h in (1, 2) if family == "qkformer" or E // 2 // h <= 12]
            cfg.update(embed_dim=E, num_heads=draw(st.sampled_from(heads)), depth=draw(st.integers(2, 3)),
                       stage3_proj_lif=draw(st.sampled_from(["merged", "per_sample"])))
    cfg["B"] = draw(st.integers(1, 3))
    return cfg


def split(cfg: dict) -> tuple[dict, int]:
    """(constructor kwargs, batch size)."""
    kwargs = dict(cfg)
    return kwargs, kwargs.pop("B")


# ------------------------------------------------------------------ oracles
def calibrated_oracle(family: str, kwargs: dict, batch: int, seed: int):
    """(float64 oracle with random weights and calibrated BN, float64 input batch as np.ndarray)."""
    torch.manual_seed(seed)
    oracle = BUILDERS[family](**kwargs).double()
    size = kwargs["img_size"]
    x = torch.randn(batch, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    if family == "dysvit":
        perturb_hypernetworks(oracle, seed=seed)
    calibrate(oracle, x, seed=seed)
    return oracle, x.numpy()


def oracle_rates(oracle, x: np.ndarray) -> dict[str, float]:
    return firing_rates(oracle, torch.from_numpy(x))


# ------------------------------------------------------------------ saving like upstream
def _adamw_state(oracle) -> dict:
    """optimizer.state_dict() of AdamW after one step on a copy (exp_avg / exp_avg_sq tensors, param_groups)."""
    twin = copy.deepcopy(oracle).float()
    opt = torch.optim.AdamW(twin.parameters(), lr=5e-4, weight_decay=0.06)
    for p in twin.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    return opt.state_dict()


def _args(family: str, kwargs: dict) -> argparse.Namespace:
    fields = dict(model=ARCH.get(family, "dysvit"), lr=5e-4, epochs=300, batch_size=64, mixup=0.5, seed=42,
                  aa="rand-m9-n1-mstd0.4-inc1", num_classes=kwargs.get("num_classes", 10))
    if family != "dysvit":
        heads = kwargs["num_heads"] if family == "spikformer" else 8     # MSViT/QKFormer hard-code 8 upstream
        fields.update(time_step=kwargs["T"], dim=kwargs["embed_dim"], layer=kwargs["depth"], num_heads=heads,
                      mlp_ratio=kwargs.get("mlp_ratio", 4))
    return argparse.Namespace(**fields)


def save_like_upstream(oracle, family: str, kwargs: dict, folder, style: str, dtype=torch.float32):
    """torch.save the oracle's weights the way `style`'s training script does; returns the path.

    Upstream checkpoints hold float32 weights (AMP keeps float32 master weights); pass
    dtype=torch.float64 to keep every bit of a float64 oracle for the exactness tests.
    """
    state = {k: (v.to(dtype) if v.is_floating_point() else v).clone() for k, v in oracle.state_dict().items()}
    path = folder / FILE_NAMES[style]
    if style == "timm":
        obj = {"epoch": 299, "arch": ARCH[family], "state_dict": state, "optimizer": _adamw_state(oracle),
               "version": 2, "args": _args(family, kwargs),
               "amp_scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                              "_growth_tracker": 17},
               "metric": 95.19}
    elif style == "mae":
        obj = {"model": state, "optimizer": _adamw_state(oracle), "epoch": 299,
               "scaler": {"scale": 32768.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                          "_growth_tracker": 3},
               "args": _args(family, kwargs)}
    elif style == "hf":
        obj = state
    else:
        raise ValueError(f"unknown style {style!r}")
    torch.save(obj, path)
    return path
