"""Train one arm of the Dy-SViT ablation with the PyTorch engine of minisnn (`minisnn.torch.train`).

For recipes that take hours on two CPU cores (the Dy-SViT ablation at dim 256), this runs the same network
(`minisnn.torch.to_torch`: the parity-tested PyTorch version) with `minisnn train`'s recipe, on a GPU:

    python experiments/dysvit_ablation/train_oracle.py --data-dir DIR --model dysvit-cifar10 \
        --epochs 30 --warmup-epochs 1.5 --out runs/ablation/dynamic [--set dynamic_slope=false] [--no-stability]
    minisnn eval runs/ablation/dynamic/last.npz --data-dir DIR

The recipe is the engine's, which is `minisnn train`'s (Dy-SViT family defaults): the 45,000 / 5,000 split,
AdamW with weight decay on weight matrices only, linear warm-up then cosine to min_lr per step, random crop
(padding 4) + flip and mixup (alpha 0.2, off for the last 15 % of epochs) built by minisnn's data pipeline,
global-norm clipping at 0.5 and the NaN guard.  `--no-stability` is the card's "no stability protocol"
baseline, expressed as options of the same engine: the model's `stability=False` (no pre-norm, no
residual scaling, no guards inside the model), no clipping (`clip_grad=None`) and no NaN guard in the
loop (`nan_guard=False`).  The output folder holds minisnn's training files (last.npz, best.npz,
metrics.jsonl, curves.png); run again with the same arguments to resume an interrupted run.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from minisnn.torch import train
from minisnn.train import config_for


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="dysvit-cifar10")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-stability", action="store_true",
                   help="model stability=False, no gradient clipping, no NaN guard (the card's baseline)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, help="use only the first N training images (smoke tests)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--out", required=True, help="output folder (minisnn's training files)")
    return p.parse_args()


def main():
    a = parse()
    overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.overrides)}
    if a.no_stability:
        overrides["stability"] = False
    cfg = config_for(a.model, epochs=a.epochs, lr=a.lr, warmup_epochs=a.warmup_epochs, seed=a.seed,
                     train_limit=a.train_limit, data_dir=a.data_dir, out=a.out, model_overrides=overrides)
    if a.no_stability:
        cfg.clip_grad = None
    train(cfg, device=a.device, progress=False, nan_guard=not a.no_stability,
          resume=(Path(a.out) / "last.npz").exists())


if __name__ == "__main__":
    main()
