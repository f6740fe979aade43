"""Solutions to the exercises of notebook 10 (training on CIFAR-10: data and recipe)."""
import numpy as np

from minisnn import Tensor
from minisnn.optim import AdamW, TimmCosine, WarmupCosine


# Exercise 1: CutMix by hand. The target weight comes from the pasted box's true area: cutmix_box clips
# the box at the border, so it can be smaller than (1 − λ)·H·W for the λ that was drawn.
def cutmix(x, y_soft, perm, box):
    top, bottom, left, right = box
    height, width = x.shape[-2:]
    mixed = x.copy()
    mixed[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return mixed, lam * y_soft + (1.0 - lam) * y_soft[perm]


# Exercise 2: where the two per-epoch schedules differ the most.
def largest_schedule_gap(epochs=300, warmup=20, base_lr=1e-3, min_lr=1e-5):
    opt = AdamW([Tensor(np.zeros(1), requires_grad=True)], lr=base_lr)
    ours = WarmupCosine(opt, warmup=warmup, total=epochs, base_lr=base_lr, min_lr=min_lr)
    timm = TimmCosine(opt, base_lr=base_lr, t_initial=epochs, lr_min=min_lr, warmup_t=warmup)
    return int(np.argmax([abs(ours.lr_at(e) - timm.lr_at(e)) for e in range(epochs)]))


CHECKED = {
    "check_10_cutmix": (cutmix,),
    "check_10_schedule_gap": (largest_schedule_gap(),),
}
