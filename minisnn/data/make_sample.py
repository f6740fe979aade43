"""Build the embedded CIFAR-10 sample from the official training batches.

    python -m minisnn.data.make_sample --data-dir /path/to/cifar-10-batches-py \
        --out minisnn/assets/cifar10_sample.npz

Selection (stratified and seeded, training batches only):
  1. `stratified_subset` picks (train_per_class + val_per_class) images of every class
     from the 50,000 training images (data_batch_1..5 concatenated in order);
  2. `stratified_split` carves val_per_class of each class out of those as validation.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .cifar import load_cifar10
from .locate import find_dataset_dir
from .sample import save_sample
from .split import stratified_split, stratified_subset


def make_sample(data_dir, out, train_per_class: int = 200, val_per_class: int = 50, seed: int = 0,
                verify: bool = True) -> dict:
    """Write the sample to `out`; returns a summary (counts, file size in bytes)."""
    folder = find_dataset_dir(data_dir, "cifar10")
    train_x, train_y, _, _, classes = load_cifar10(folder, verify=verify)
    chosen = stratified_subset(train_y, train_per_class + val_per_class, seed=seed)
    k = len(classes)
    keep, held = stratified_split(train_y[chosen], val_size=val_per_class * k, seed=seed + 1)
    train_idx, val_idx = chosen[keep], chosen[held]
    save_sample(out, (train_x[train_idx], train_y[train_idx]), (train_x[val_idx], train_y[val_idx]),
                classes, source_indices=(train_idx, val_idx), seed=seed)
    return {"train": len(train_idx), "val": len(val_idx), "classes": k, "bytes": Path(out).stat().st_size}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m minisnn.data.make_sample", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True, help="cifar-10-batches-py/ or the folder containing it")
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--train-per-class", type=int, default=200)
    p.add_argument("--val-per-class", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-verify", action="store_true", help="skip the md5 check of the batches")
    args = p.parse_args(argv)
    summary = make_sample(args.data_dir, args.out, args.train_per_class, args.val_per_class, args.seed,
                          verify=not args.no_verify)
    print(f"wrote {args.out}: {summary['train']} train / {summary['val']} val images, "
          f"{summary['classes']} classes, {summary['bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
