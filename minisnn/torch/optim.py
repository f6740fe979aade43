"""minisnn's optimiser and schedule on a torch module, with state in minisnn's checkpoint layout.

    optimizer = adamw(module, model, lr=1e-3, weight_decay=0.05)     # torch.optim.AdamW
    schedule = WarmupCosineLR(optimizer, warmup=351, total=10530, base_lr=1e-3, min_lr=1e-5)
    state = adamw_state_to_minisnn(optimizer)                           # what minisnn's AdamW saves
    load_minisnn_adamw_state(optimizer, state)                          # and back

The parameter groups are minisnn's (`minisnn.optim.decay_groups` on the minisnn model: weight
decay on weight matrices only), parameters in minisnn's order, so parameter i of one engine's
optimizer state is parameter i of the other's.  torch's AdamW and minisnn's run the same update
(m, v, bias corrections; decoupled decay θ ← θ·(1 − η·λ) first) and keep the same state per
parameter: `step`, `exp_avg`, `exp_avg_sq`.  The only differences are types: torch stores `step` as
a float tensor and the moments as tensors, minisnn as an int and NumPy arrays, and torch's groups
carry implementation flags (foreach, fused, ...) that minisnn's do not.  So a checkpoint's
"optimizer" entry written from either engine resumes in the other.
"""
from __future__ import annotations

import numpy as np
import torch

from ..optim import decay_split_names
from ..optim.schedule import WarmupCosine

# The hyper-parameters of a minisnn AdamW param group, in its state_dict's order (then "params").
MINISNN_GROUP_KEYS = ("lr", "betas", "eps", "weight_decay", "amsgrad")


def adamw(module: torch.nn.Module, model, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """torch AdamW over `module` with the decay / no-decay groups that minisnn's trainer gives `model`
    (the same architecture), parameters in minisnn's order; betas (0.9, 0.999), eps 1e-8 as minisnn's."""
    decay, rest = decay_split_names(model)
    params = dict(module.named_parameters())
    return torch.optim.AdamW([{"params": [params[n] for n in decay], "weight_decay": float(weight_decay)},
                              {"params": [params[n] for n in rest], "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


def adamw_state_to_minisnn(optimizer: torch.optim.AdamW) -> dict:
    """The optimiser's state_dict in minisnn's AdamW layout: int steps, NumPy moments, minisnn's group keys."""
    saved = optimizer.state_dict()
    state = {}
    for index, s in saved["state"].items():
        state[int(index)] = {"step": int(float(s["step"])), "exp_avg": s["exp_avg"].detach().cpu().numpy().copy(),
                             "exp_avg_sq": s["exp_avg_sq"].detach().cpu().numpy().copy()}
        if "max_exp_avg_sq" in s:
            state[int(index)]["max_exp_avg_sq"] = s["max_exp_avg_sq"].detach().cpu().numpy().copy()
    groups = [{**{k: (tuple(g[k]) if k == "betas" else g[k]) for k in MINISNN_GROUP_KEYS},
               "params": [int(i) for i in g["params"]]} for g in saved["param_groups"]]
    return {"state": state, "param_groups": groups}


def load_minisnn_adamw_state(optimizer: torch.optim.AdamW, saved: dict) -> None:
    """Restore a state written by `adamw_state_to_minisnn` or by minisnn's AdamW (same groups and order)."""
    template = optimizer.state_dict()
    groups = saved["param_groups"]
    if len(groups) != len(template["param_groups"]):
        raise ValueError(f"optimizer state has {len(groups)} param groups, this optimizer has "
                         f"{len(template['param_groups'])}")
    for i, (g, own) in enumerate(zip(groups, template["param_groups"])):
        if len(g["params"]) != len(own["params"]):
            raise ValueError(f"param group {i}: optimizer state has {len(g['params'])} parameters, "
                             f"this optimizer has {len(own['params'])}")
        own.update({k: (tuple(g[k]) if k == "betas" else g[k]) for k in MINISNN_GROUP_KEYS if k in g})
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state = {}
    for index, s in saved["state"].items():
        p = params[int(index)]
        restored = {"step": torch.tensor(float(s["step"]), dtype=torch.float32)}
        for k, v in s.items():
            if k != "step":
                if tuple(np.shape(v)) != tuple(p.shape):
                    raise ValueError(f"optimizer state {k!r} of parameter {index} has shape {np.shape(v)}, "
                                     f"the parameter has shape {tuple(p.shape)}")
                restored[k] = torch.from_numpy(np.array(v)).to(p.dtype)
        state[int(index)] = restored
    template["state"] = state
    optimizer.load_state_dict(template)     # moves the moments to each parameter's device and dtype


class WarmupCosineLR(WarmupCosine):
    """minisnn's `WarmupCosine` (same `lr_at`, `step`, `state_dict`) driving a torch optimizer.

    Linear warm-up over `warmup` steps, cosine from `base_lr` to `min_lr` at `total`; optimiser step t runs
    with lr_at(t).  Only the constructor differs: minisnn's checks that its optimizer is a minisnn one, and
    everything else reads and writes `optimizer.param_groups[i]["lr"]`, which torch optimizers have too.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup: int, total: int, base_lr: float,
                 min_lr: float = 0.0):
        if not 0 <= warmup <= total or total <= 0:
            raise ValueError(f"need 0 <= warmup <= total and total > 0, got warmup {warmup}, total {total}")
        self.warmup, self.total = warmup, total
        self.base_lr, self.min_lr, self.warmup_start_lr = float(base_lr), float(min_lr), 0.0
        self.knots = []
        self.optimizer = optimizer
        self.t = 0
        self._apply()
