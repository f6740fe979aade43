"""Optimisers, gradient clipping and learning-rate schedules.

    from minisnn.optim import AdamW, WarmupCosine, clip_grad_norm_, decay_groups
    opt = AdamW(decay_groups(model, 0.05), lr=1e-3)
    sched = WarmupCosine(opt, warmup=500, total=10_000, base_lr=1e-3)
    loss.backward(); clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad(); sched.step()
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .clip import clip_grad_norm_
from .schedule import LRSchedule, WarmupCosine, TimmCosine, timm_cosine_lr
from .param_groups import ALWAYS_SKIP, decay_groups, decay_split_names

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_",
    "LRSchedule", "WarmupCosine", "TimmCosine", "timm_cosine_lr",
    "ALWAYS_SKIP", "decay_groups", "decay_split_names",
]
