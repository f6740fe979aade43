"""`python -m minisnn.torch.run`: train a registered model with the torch engine (see docs/scale.md).

    python -m minisnn.torch.run --model dysvit-cifar10 --epochs 30 --data-dir DATA --out runs/dy --device cuda
    python -m minisnn.torch.run --model spikformer-tiny --device cpu --nproc 2 --batch-size 64
    torchrun --nproc-per-node 4 -m minisnn.torch.run --model dysvit-cifar10 --device cuda --out runs/dy4
    python -m minisnn.torch.run --model dysvit-cifar10 --out runs/dy --device cuda --resume

Options left out take the model family's recipe (`minisnn.train.config_for`), as `minisnn train`.
Under torchrun the processes exist already (one per GPU): --nproc is ignored and the world size is torchrun's.
The files are `minisnn train`'s: evaluate with `minisnn eval OUT/best.npz`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import models
from ..train.config import config_for
from .engine import check_batch_split, check_options, run_worker, train
from .distributed import torchrun_rank


def _key_value(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip().replace("-", "_"), json.loads(value)
    except ValueError:
        return key.strip().replace("-", "_"), value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m minisnn.torch.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--model", default="spikformer-tiny", help="registered model name (`minisnn models`)")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--batch-size", type=int, help="global batch (split evenly over the processes)")
    p.add_argument("--lr", type=float, help="peak learning rate of AdamW, for the global batch")
    p.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine decay")
    p.add_argument("--warmup-epochs", type=float, help="epochs of linear warm-up (fractions allowed)")
    p.add_argument("--clip-grad", type=float, help="global gradient-norm clip (default: the family's)")
    p.add_argument("--no-clip", action="store_true", help="no gradient clipping, whatever the family's default")
    p.add_argument("--no-nan-guard", dest="nan_guard", action="store_false",
                   help="apply every step, even one with a non-finite loss, gradient norm or result")
    p.add_argument("--seed", type=int, help="seeds the split, the initialisation and the batch order")
    p.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ (default: as `minisnn train`)")
    p.add_argument("--out", help="output folder (default: runs/MODEL)")
    p.add_argument("--train-limit", type=int, help="use only the first N training images")
    p.add_argument("--set", dest="model_overrides", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="model constructor override, e.g. --set stability=false (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.npz (written by either engine)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel processes (one per GPU on cuda)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the forward pass (cuda only)")
    p.add_argument("--threads", type=int, help="PyTorch CPU threads per process (default: PyTorch's; with "
                                               "--nproc on the CPU, the cores divided by the processes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(args):
    """The TrainConfig of these arguments (family defaults for what is left out)."""
    if args.model not in models.names():
        raise ValueError(f"unknown model {args.model!r}; choose one of: {', '.join(models.names())}")
    config = config_for(args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
                        warmup_epochs=args.warmup_epochs, clip_grad=args.clip_grad, seed=args.seed,
                        data_dir=args.data_dir, out=args.out, train_limit=args.train_limit, threads=args.threads,
                        model_overrides=dict(args.model_overrides))
    if args.no_clip:
        config.clip_grad = None
    return config.validate()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        under_torchrun = torchrun_rank()
        if under_torchrun is None:
            train(config, device=args.device, nproc=args.nproc, progress=not args.no_progress, bf16=args.bf16,
                  resume=args.resume, nan_guard=args.nan_guard)
        else:
            rank, world, local_rank = under_torchrun
            check_options(config, args.device, 1, args.bf16)      # this process; the world is torchrun's
            check_batch_split(config.batch_size, world)
            run_worker(rank, world, args.device, config, progress=not args.no_progress, bf16=args.bf16,
                       resume=args.resume, nan_guard=args.nan_guard, local_rank=local_rank)
    except (ValueError, ImportError, FileNotFoundError) as exc:
        print(f"python -m minisnn.torch.run: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if under_torchrun is None or under_torchrun[0] == 0:
        out = Path(config.out or Path("runs") / config.model)
        print(f"files: {out / 'best.npz'} (best epoch), {out / 'last.npz'} (to --resume, by either engine), "
              f"{out / 'metrics.jsonl'}, {out / 'curves.png'}\nevaluate: minisnn eval {out / 'best.npz'} "
              f"(with --split val after a run on the embedded sample, which has no test split)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
