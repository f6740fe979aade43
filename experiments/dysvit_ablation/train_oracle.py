"""Train a minisnn model's PyTorch oracle (same math, parity-tested) with `minisnn train`'s recipe.

For recipes that take hours on two CPU cores (the Dy-SViT ablation at dim 256), this runs the
same network, the same split, augmentation and schedule on a GPU.  The weights are written in
minisnn's weights format, so minisnn itself measures the accuracy on the CPU:

    python experiments/dysvit_ablation/train_oracle.py --data-dir DIR --model dysvit-cifar10 \
        --epochs 30 --warmup-epochs 1.5 --out runs/oracle/dyn.npz [--set dynamic_slope=false] [--no-stability]
    minisnn eval runs/oracle/dyn.npz --data-dir DIR

Recipe (as `minisnn train`'s Dy-SViT family defaults): AdamW, weight decay on weight matrices
only, linear warmup then cosine to min_lr per step, random crop (padding 4) + flip, mixup
(alpha 0.2, one permutation per batch, off for the last 15 % of epochs), global-norm clip,
loss/gradient NaN guard that skips the step and restores the BN statistics.  `--no-stability`
is the card's "no stability protocol" baseline: the model's `stability=False`, no clipping and
no NaN guard in the loop.  Needs torch (and a GPU to be quick).  One JSON line per epoch.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as tF

from minisnn import data as D
from minisnn.data.augment import normalization_stats
from minisnn import models
from minisnn.parity import build_oracle
from minisnn.train import TrainConfig, config_for, export


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="dysvit-cifar10")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-stability", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, help="use only the first N training images (smoke tests)")
    p.add_argument("--out", required=True, help="weights file (.npz); a resumable <out>.pt is kept beside it")
    return p.parse_args()


def main():
    a = parse()
    overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.overrides)}
    if a.no_stability:
        overrides["stability"] = False
    cfg = config_for(a.model, epochs=a.epochs, lr=a.lr, warmup_epochs=a.warmup_epochs, seed=a.seed,
                     train_limit=a.train_limit, model_overrides=overrides)
    if a.no_stability:
        cfg.clip_grad = None
    guard = not a.no_stability
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.manual_seed(a.seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    ds = D.get_datasets(a.data_dir, val_size=cfg.val_size, seed=0, allow_sample=False)
    mean, std = normalization_stats(cfg.normalization)
    mean = torch.tensor(mean, device=dev, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(std, device=dev, dtype=torch.float32).view(1, 3, 1, 1)
    X, Y = (torch.tensor(v[:cfg.train_limit], device=dev) for v in ds.train)
    Xv, Yv = (torch.tensor(v, device=dev) for v in ds.val)
    Y, Yv = Y.long(), Yv.long()

    ours = models.create(a.model, **overrides)
    net = build_oracle(a.model, dict(ours.config)).to(dev).float()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    decay = [p for n, p in net.named_parameters() if p.ndim >= 2 and "pos" not in n]
    rest = [p for n, p in net.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
    B = cfg.batch_size
    steps = len(Y) // B
    total, warm = steps * cfg.epochs, int(round(cfg.warmup_epochs * steps))
    bn = [b for n, b in net.named_buffers() if "running" in n]
    ck, start, t_used, skipped, history = a.out + ".pt", 0, 0.0, 0, []
    if os.path.exists(ck):
        st = torch.load(ck, weights_only=False)
        net.load_state_dict(st["net"]), opt.load_state_dict(st["opt"])
        start, t_used, skipped, history = st["epoch"], st["t"], st["skipped"], st["history"]

    def lr_at(t):
        if t < warm:
            return cfg.lr * (t + 1) / warm
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * (t - warm) / max(total - warm, 1)))

    def reset():
        for m in net.modules():
            if type(m).__name__.endswith("Node") and hasattr(m, "reset"):
                m.reset()

    ar = torch.arange(32, device=dev)
    gen = torch.Generator(device=dev)
    t0 = time.time() - t_used
    for ep in range(start, cfg.epochs):
        gen.manual_seed(1000 + ep)
        net.train()
        perm = torch.randperm(len(Y), device=dev, generator=gen)
        mix = cfg.mixup_alpha > 0 and ep < cfg.epochs - cfg.mixup_off_epochs
        for b in range(steps):
            idx = perm[b * B:(b + 1) * B]
            n = len(idx)
            xb = tF.pad(X[idx].float() / 255.0, (4, 4, 4, 4))        # random crop, padding 4
            oy, ox = (torch.randint(0, 9, (n,), device=dev, generator=gen) for _ in range(2))
            xb = torch.gather(xb, 2, (oy[:, None] + ar).view(n, 1, 32, 1).expand(n, 3, 32, 40))
            xb = torch.gather(xb, 3, (ox[:, None] + ar).view(n, 1, 1, 32).expand(n, 3, 32, 32))
            flip = torch.rand(n, device=dev, generator=gen) < 0.5
            xb = (torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb) - mean) / std
            yb = Y[idx]
            if mix:
                lam = float(np.random.default_rng(ep * steps + b).beta(cfg.mixup_alpha, cfg.mixup_alpha))
                partner = torch.randperm(n, device=dev, generator=gen)
                xb = lam * xb + (1 - lam) * xb[partner]
            for g in opt.param_groups:
                g["lr"] = lr_at(ep * steps + b)
            saved = [t.clone() for t in bn] if guard else None
            reset()
            out = net(xb)
            loss = tF.cross_entropy(out, yb, label_smoothing=cfg.label_smoothing)
            if mix:
                loss = lam * loss + (1 - lam) * tF.cross_entropy(out, yb[partner], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad or float("inf"))
            if guard and not (torch.isfinite(loss) and torch.isfinite(norm)):
                skipped += 1
                with torch.no_grad():
                    for t, s in zip(bn, saved):
                        t.copy_(s)
                continue
            opt.step()
        net.eval()
        correct = 0
        with torch.no_grad():
            for b in range(0, len(Yv), 1000):
                reset()
                out = net((Xv[b:b + 1000].float() / 255.0 - mean) / std)
                correct += (out.argmax(1) == Yv[b:b + 1000]).sum().item()
        rec = {"epoch": ep + 1, "val_acc": correct / len(Yv), "train_loss": float(loss.detach()),
               "skipped": skipped, "seconds": round(time.time() - t0, 1)}
        history.append(rec)
        print(json.dumps({"out": a.out, **rec}), flush=True)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "epoch": ep + 1, "t": time.time() - t0,
                    "skipped": skipped, "history": history}, ck + ".tmp")
        os.replace(ck + ".tmp", ck)
    write_weights({k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}, cfg, history, ds.classes,
                  a.out, notes={"trained_by": "PyTorch oracle (experiments/dysvit_ablation/train_oracle.py)",
                                "device": dev, "no_stability": a.no_stability})


def write_weights(state: dict, cfg: TrainConfig, history: list, classes, out: str, notes: dict):
    """Save a state_dict in minisnn's weights format (loads with `minisnn eval` / `load_trained`)."""
    models.create(cfg.model, **cfg.model_overrides).load_state_dict(state)   # checks every key and shape first
    export.write_weights(out, model_name=cfg.model, config=cfg.to_dict(), model=state, classes=classes,
                         normalization=cfg.normalization, history=history, notes=notes)


if __name__ == "__main__":
    main()
