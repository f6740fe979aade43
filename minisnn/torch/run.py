"""`python -m minisnn.torch.run`: train a registered model with the torch engine (see docs/scale.md).

    python -m minisnn.torch.run --model dysvit-cifar10 --epochs 30 --data-dir DATA --out runs/dy --device cuda
    python -m minisnn.torch.run --model spikformer-tiny --device cpu --nproc 2 --batch-size 64
    torchrun --nproc-per-node 4 -m minisnn.torch.run --model dysvit-cifar10 --device cuda --out runs/dy4
    python -m minisnn.torch.run --model dysvit-cifar10 --out runs/dy --device cuda --resume

It takes the options of `minisnn train` (`minisnn.cli.add_train_options`), and two more for experiments,
--no-clip and --no-nan-guard; options left out take the model family's recipe (`minisnn.train.config_for`).
Under torchrun the processes exist already (one per GPU): --nproc is ignored and the world size is torchrun's.
The files are `minisnn train`'s: evaluate with `minisnn eval OUT/best.npz`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import models
from ..cli import TRAIN_DEFAULT_MODEL, add_train_options, given_train_options
from ..train.config import budget_note, config_for
from .engine import check_options, check_world, run_worker, train
from .distributed import torchrun_rank


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m minisnn.torch.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--model", default=TRAIN_DEFAULT_MODEL, help="registered model name (`minisnn models`)")
    add_train_options(p)
    p.add_argument("--out", help="output folder (default: runs/MODEL)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.npz (written by either engine)")
    p.add_argument("--no-clip", action="store_true", help="no gradient clipping, whatever the family's default")
    p.add_argument("--no-nan-guard", dest="nan_guard", action="store_false",
                   help="apply every step, even one with a non-finite loss, gradient norm or result")
    return p


def config_from_args(args):
    """The TrainConfig of these arguments (family defaults for what is left out)."""
    if args.model not in models.names():
        raise ValueError(f"unknown model {args.model!r}; choose one of: {', '.join(models.names())}")
    given = given_train_options(args)
    if budget_note(given):
        print(budget_note(given))
    config = config_for(given.pop("model"), out=args.out, **given)
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
            check_world(config, world)
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
