"""Split a model's parameters into a weight-decay group and a no-decay group.

Weight decay is meant for weight matrices and convolution kernels.  Decaying a
bias, a norm layer's scale/shift or a position embedding only pulls it towards
zero for no benefit, so (as timm does) these get weight_decay = 0:

* tensors with ndim <= 1 (biases, BatchNorm/LayerNorm weight and bias, scalar
  parameters such as a learnable tau),
* names ending in `.bias`,
* names listed in `skip`, in `ALWAYS_SKIP`, or returned by the model's own
  `no_weight_decay()` method; a listed name matches the full dotted name or its
  last component (so `pos_embed` matches `encoder.pos_embed`).
"""
from __future__ import annotations

from typing import Iterable

ALWAYS_SKIP = ("pos_embed", "cls_token")


def _skipped(name: str, skip: set[str]) -> bool:
    return name in skip or name.rsplit(".", 1)[-1] in skip


def decay_groups(model, weight_decay: float, skip: Iterable[str] = ()) -> list[dict]:
    """[{"params": decayed, "weight_decay": weight_decay}, {"params": not decayed, "weight_decay": 0.0}].

    Only parameters with requires_grad are included; both groups are always
    present (possibly empty) so optimizer state dicts keep the same layout.
    """
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if isinstance(skip, str):
        skip = (skip,)
    names = set(ALWAYS_SKIP) | set(skip)
    if hasattr(model, "no_weight_decay"):
        names |= set(model.no_weight_decay())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias") or name == "bias" or _skipped(name, names):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)},
            {"params": no_decay, "weight_decay": 0.0}]


def decay_split_names(model, skip: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(decayed names, not-decayed names) under the same rules; handy for printing and tests."""
    groups = decay_groups(model, 0.0, skip)
    ids = {id(p): n for n, p in model.named_parameters()}
    return [ids[id(p)] for p in groups[0]["params"]], [ids[id(p)] for p in groups[1]["params"]]
