"""The `minisnn` command (also `python -m minisnn`).

    minisnn train --model spikformer-tiny --epochs 10     # train on CIFAR-10 (or the embedded sample)
    minisnn eval runs/spikformer-tiny/best.npz             # accuracy on the official test batch
    minisnn export runs/dysvit-tiny/best.npz small.npz     # weights-only copy of a checkpoint
    minisnn models                                         # list registered models and pretrained weights
    minisnn download cifar10 --data-dir ~/data             # fetch and verify the dataset
    minisnn verify CHECKPOINT [--model NAME]               # compare against PyTorch (needs torch)
    minisnn verify-neuron PKG.MOD:FACTORY --claims "lif tau=2"  # check a PyTorch neuron's dynamics (needs torch)

Bad arguments, and files or values the library refuses, end with a one-line error and exit
status 2: the command catches the library's error classes (ValueError and its subclasses such
as CheckpointError and ModelArgumentError, OSError, StateDictError), never prints a traceback
(set MINISNN_DEBUG=1 to see one).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numba

from . import __version__, models
from .data import download_dataset
from .data.locate import DataNotFoundError, find_dataset_dir
from .nn.module import StateDictError   # a KeyError (for `except KeyError` users): reported as one line too
from .parity import verify_checkpoint
from .train import Trainer, config_for, evaluate_checkpoint, export_weights, pretrained_names, pretrained_path
from .train.config import FAMILY_DEFAULTS, TrainConfig, budget_note, recipe_note, resumed_config
from .train.runs import clear_run, run_files
from .train.state import load_training_state

TRAIN_DEFAULT_MODEL = "spikformer-tiny"
ENGINES = ("minisnn", "torch")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class CliError(Exception):
    """An error to report as one line, without a traceback."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _key_value(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        value = json.loads(v)
    except ValueError:
        value = v
    return k.strip().replace("-", "_"), value


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): `minisnn train: error: ...`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _examples() -> str:
    """The example lines of this module's docstring, for `minisnn --help`."""
    lines = [line for line in (__doc__ or "").splitlines() if line.startswith("    minisnn ")]
    return "examples:\n" + "\n".join(lines)


def _train_epilog() -> str:
    """The defaults of `minisnn train`: the common ones, then each model family's recipe."""
    base = TrainConfig()
    shown = ("epochs", "batch_size", "lr", "min_lr", "warmup_epochs", "weight_decay", "label_smoothing",
             "crop_padding", "val_size", "seed")
    lines = ["defaults: " + ", ".join(f"{k.replace('_', '-')} {getattr(base, k)}" for k in shown),
             "each model family changes some of them (its paper's recipe, shortened for a CPU):"]
    for family, recipe in FAMILY_DEFAULTS.items():
        lines.append(f"  {family}-*: " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in recipe.items()))
    recipes = [n for n in models.names() if models.network_of(n) != n]
    if recipes:
        lines.append("speedrun presets train a registered network with a recipe of their own:")
    for name in recipes:
        lines.append(f"  {name} ({models.network_of(name)}): " + ", ".join(
            f"{k.replace('_', '-')} {v}" for k, v in models.training_recipe(name).items()))
    lines += ["", "examples:",
              "  minisnn train                                          # spikformer-tiny, 10 epochs",
              "  minisnn train --model dysvit-tiny --epochs 12 --lr 2e-3 --threads 2 --data-dir DATA",
              "  minisnn train --model dysvit-tiny --time-budget 60 --threads 2 --data-dir DATA  # fit in an hour",
              "  minisnn train --model speedrun-10 --threads 2 --data-dir DATA   # 10 minutes, its own recipe",
              "  minisnn train --out runs/a --resume                    # continue an interrupted run"]
    return "\n".join(lines)


def add_train_options(p: argparse.ArgumentParser) -> None:
    """The options of `minisnn train` that `python -m minisnn.torch.run` takes as well: the recipe, the data,
    --set, the torch engine's --device/--nproc/--bf16, --threads and --no-progress.  (--model, --out and
    --resume mean a little more under `minisnn train`, so each command declares its own.)"""
    p.add_argument("--epochs", type=_positive_int, help="number of epochs")
    p.add_argument("--time-budget", type=_number, metavar="MINUTES",
                   help="train for the steps that fit in MINUTES of wall clock, validation included: warm-up, "
                        "cosine and mixup cooldown are planned over them (--epochs then only sets their shares)")
    p.add_argument("--batch-size", type=_positive_int, help="training images per step (with --nproc, the global "
                                                            "batch, split evenly over the processes)")
    p.add_argument("--lr", type=_number, help="peak learning rate of AdamW (for the global batch)")
    p.add_argument("--min-lr", type=_number, help="learning rate at the end of the cosine decay")
    p.add_argument("--warmup-epochs", type=_number, help="epochs of linear warm-up (fractions allowed)")
    p.add_argument("--weight-decay", type=_number, help="AdamW weight decay (not applied to norms and biases)")
    p.add_argument("--clip-grad", type=_number, help="global gradient-norm clip (default: the family's; none "
                                                     "for most)")
    p.add_argument("--label-smoothing", type=_number, help="label smoothing of the cross-entropy, in [0, 1)")
    p.add_argument("--mixup", dest="mixup_alpha", type=_number, help="mixup alpha (0 = off)")
    p.add_argument("--cutmix", dest="cutmix_alpha", type=_number, help="cutmix alpha (0 = off)")
    p.add_argument("--mixup-off-epochs", type=int, help="turn mixup off for the last N epochs "
                                                        "(default: 15 %% of the epochs when mixup is on)")
    p.add_argument("--crop-padding", type=int, help="pixels of zero padding for the random crop (0 = no crop)")
    p.add_argument("--no-flip", dest="flip", action="store_const", const=False,
                   help="no random horizontal flips")
    p.add_argument("--normalization", choices=("upstream", "dysvit"),
                   help="per-channel mean/std of the inputs (default: the family's)")
    p.add_argument("--val-size", type=int, help="training images held out for validation (seeded, stratified)")
    p.add_argument("--train-limit", type=_positive_int, help="use only the first N training images")
    p.add_argument("--seed", type=int, help="seeds the split, the initialisation and the batch order")
    p.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ (default: $MINISNN_DATA_DIR, then "
                                      "~/.cache/minisnn, then the embedded sample)")
    p.add_argument("--set", dest="model_overrides", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="model constructor override, e.g. --set T=2 (repeatable)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="torch engine: where to train (default: cpu)")
    p.add_argument("--nproc", type=_positive_int, default=1,
                   help="torch engine: data-parallel processes (DistributedDataParallel; one per GPU with "
                        "--device cuda); --batch-size is the global batch (default: 1)")
    p.add_argument("--bf16", action="store_true", help="torch engine with --device cuda: bfloat16 autocast")
    p.add_argument("--threads", type=_positive_int, help="CPU threads: Numba/BLAS's (default: all cores), or "
                                                         "PyTorch's per process with the torch engine (default: "
                                                         "PyTorch's; with --nproc, the cores divided by the "
                                                         "processes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def given_train_options(args) -> dict:
    """The options of `add_train_options` (and --model) typed on the command line: TrainConfig field -> value
    ("model_overrides": a dict of the --set values); those left out are not there."""
    given = {f: getattr(args, f) for f in TRAIN_FIELDS if getattr(args, f, None) is not None}
    if args.model_overrides:
        given["model_overrides"] = dict(args.model_overrides)
    return given


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="minisnn", description="Spiking vision transformers in NumPy/Numba.", epilog=_examples(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"minisnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model on CIFAR-10", epilog=_train_epilog(),
                       description="Train a registered model on CIFAR-10 (or on the embedded 2,500-image sample "
                                   "when no dataset is found). Options left out take the model family's recipe "
                                   "(listed below).", formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--model", help=f"registered model name (default: {TRAIN_DEFAULT_MODEL}, or the run's own "
                                   "with --resume; list: `minisnn models`)")
    add_train_options(t)
    t.add_argument("--out", help="output folder (default: runs/MODEL); one that holds a run is refused unless "
                                 "--resume or --overwrite")
    t.add_argument("--resume", action="store_true", help="continue the run in OUT from its last.npz, with its "
                                                         "own settings (--epochs may change its length)")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in OUT")
    t.add_argument("--engine", choices=ENGINES, default="minisnn",
                   help="minisnn (NumPy/Numba, the default) or torch: the same model, recipe and checkpoint files "
                        "trained with PyTorch (needs torch; see docs/scale.md)")

    e = sub.add_parser("eval", help="evaluate a training checkpoint on the CIFAR-10 test batch")
    e.add_argument("checkpoint", help="last.npz / best.npz written by `minisnn train`, or exported weights")
    e.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ (default: $MINISNN_DATA_DIR, then "
                                      "~/.cache/minisnn)")
    e.add_argument("--split", choices=("test", "val"), default="test",
                   help="the official test batch, or the run's validation split (default: test)")
    e.add_argument("--batch-size", type=_positive_int, default=256, help="images per forward pass (default: 256)")
    e.add_argument("--flip", action="store_true",
                   help="test-time flip: average the logits of each image and its mirror image (twice the work)")
    e.add_argument("--threads", type=_positive_int, help="Numba/BLAS threads (default: all cores)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")

    x = sub.add_parser("export", help="write a weights-only copy of a training checkpoint (.npz)")
    x.add_argument("checkpoint")
    x.add_argument("out")
    x.add_argument("--data-dir", help="the CIFAR-10 it was trained on: records which training images it never saw")
    x.add_argument("--note", dest="notes", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="metadata stored with the weights, e.g. --note test_acc=0.68 (repeatable)")
    sub.add_parser("models", help="list registered models and the pretrained weights shipped")

    d = sub.add_parser("download", help="download and verify CIFAR-10/100")
    d.add_argument("dataset", choices=("cifar10", "cifar100"))
    d.add_argument("--data-dir", help="destination folder (default: $MINISNN_DATA_DIR, then the cache)")

    v = sub.add_parser("verify", help="compare a checkpoint's outputs and gradients with PyTorch (needs torch)",
                       description="Load CHECKPOINT into minisnn (without torch) and into the PyTorch oracle, run "
                                   "both on the same batch and print spikes, logits and gradients layer by layer. "
                                   "Exit status 0: PASS, 1: FAIL, 2: error.")
    v.add_argument("checkpoint", help="torch.save file (.pth.tar/.pth/.pt/.bin) or .safetensors")
    v.add_argument("--model", help="registered model to use as is (see `minisnn models`); "
                                   "default: inferred from the checkpoint's keys and shapes")
    v.add_argument("--set", dest="model_overrides", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="model constructor value, e.g. --set num_heads=8 --set T=4 (repeatable)")
    v.add_argument("--batch-size", type=_positive_int, default=2)
    v.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    v.add_argument("--seed", type=int, default=0, help="picks the images and the gradient cotangent")
    v.add_argument("--train", action="store_true", help="compare in training mode (BN batch statistics)")
    v.add_argument("--no-grads", dest="grads", action="store_false", help="compare the forward pass only")

    n = sub.add_parser("verify-neuron", help="check a PyTorch spiking neuron against the dynamics it claims "
                                             "(needs torch)",
                       description="Build the module FACTORY(**KWARGS), run it and the claimed minisnn neuron on "
                                   "random and adversarial inputs in float32 and float64, and print spikes, "
                                   "gradients, NaN/zero gradients, batch coupling and state between calls. "
                                   "Exit status 0: PASS, 1: FAIL, 2: error.")
    n.add_argument("factory", help="importable module factory, e.g. spikingjelly.activation_based.neuron:LIFNode")
    n.add_argument("--kwargs", default="", help="factory arguments KEY=VALUE,KEY=VALUE, e.g. step_mode=m,tau=2.0")
    n.add_argument("--claims", required=True, help='the claimed dynamics, e.g. "lif tau=2 v_threshold=1 '
                                                   'reset=hard surrogate=atan:2 detach_reset=1 fire=gt"')
    n.add_argument("--reset", help="the module's reset method (default: detected)")
    n.add_argument("--stepwise", action="store_true", default=None,
                   help="call the module once per time step (default: detected; snnTorch is step-wise)")
    n.add_argument("--seed", type=int, default=0)
    return p


def _apply_threads(n: int | None, argv: list[str]) -> None:
    """Pin Numba/BLAS threads.  BLAS reads its variables at start-up, so re-exec once if needed."""
    if not n:
        return
    want = str(n)
    if any(os.environ.get(k) != want for k in _THREAD_VARS) and os.environ.get("MINISNN_THREADS_SET") != want:
        env = dict(os.environ, **{k: want for k in _THREAD_VARS}, MINISNN_THREADS_SET=want)
        os.execve(sys.executable, [sys.executable, "-m", "minisnn", *argv], env)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


TRAIN_FIELDS = ("model", "epochs", "time_budget", "batch_size", "lr", "min_lr", "warmup_epochs", "weight_decay",
                "clip_grad", "label_smoothing", "mixup_alpha", "cutmix_alpha", "mixup_off_epochs", "crop_padding",
                "flip", "normalization", "val_size", "train_limit", "seed", "data_dir", "threads")


def _cmd_train(args) -> int:
    if args.model is not None and args.model not in models.names():
        raise CliError(f"unknown model {args.model!r}; choose one of: {', '.join(models.names())}")
    given = given_train_options(args)
    out = Path(args.out) if args.out else Path("runs") / (args.model or TRAIN_DEFAULT_MODEL)
    given["out"] = str(out)
    if args.resume:
        if args.overwrite:
            raise CliError("--resume continues the run in --out and --overwrite replaces it: choose one")
        last = out / "last.npz"
        if not last.exists():
            raise CliError(f"nothing to resume in {out}: it has no last.npz (start the run without --resume)")
        state = load_training_state(last)
        cfg, changes = resumed_config(state["config"], given, str(last))
        for line in changes:
            print(line)
    else:
        existing = run_files(out)
        if existing and not args.overwrite:
            raise CliError(f"{out} already holds a run ({', '.join(existing)}); continue it with "
                           f"`minisnn train --out {shlex.quote(str(out))} --resume`, choose another --out, "
                           "or pass --overwrite to replace it")
        if existing:
            clear_run(out)
        for note in (budget_note(given), recipe_note(given.get("model", TRAIN_DEFAULT_MODEL), given)):
            if note:
                print(note)
        cfg = config_for(given.pop("model", TRAIN_DEFAULT_MODEL), **given)
    if args.engine == "torch":
        return _train_with_torch(args, cfg)
    if args.nproc > 1 or args.device != "cpu" or args.bf16:
        raise CliError("--device cuda, --nproc and --bf16 are options of --engine torch")
    trainer = Trainer(cfg, progress=not args.no_progress)
    if args.resume:
        trainer.resume()
    history = trainer.fit()
    if history:
        print(training_summary(cfg, history, images=len(trainer.train_x), source=trainer.data.source,
                               on_sample=trainer.data.test is None))
    return 0


def _train_with_torch(args, cfg) -> int:
    """`--engine torch`: minisnn.torch.train with the same configuration and files."""
    try:
        import minisnn.torch as engine  # optional dependency: torch is imported only for this engine
    except ImportError as exc:
        raise CliError(str(exc)) from None
    history = engine.train(cfg, device=args.device, nproc=args.nproc, progress=not args.no_progress,
                           bf16=args.bf16, resume=args.resume)
    if history:
        try:
            find_dataset_dir(cfg.data_dir)
            on_sample = False
        except DataNotFoundError:
            on_sample = True
        print(training_summary(cfg, history, on_sample=on_sample, engine=f"PyTorch on {args.device}"
                               + (f" in {args.nproc} processes" if args.nproc > 1 else "")))
    return 0


# The README's headline result, and the commands that reproduce it (tests check that the README says the same).
README_RESULT = "75.3 % CIFAR-10 test accuracy in an hour on 2 CPU cores"
README_RECIPE = "minisnn train --model speedrun-60 --threads 2 --data-dir DATA --out runs/speedrun-60"


def training_summary(cfg, history: list[dict], images: int | None = None, source: str | None = None,
                     on_sample: bool = False, engine: str | None = None) -> str:
    """The closing lines of `minisnn train`: what was trained on what, where the files are, what next."""
    out = Path(cfg.out or Path("runs") / cfg.model)
    best = max(history, key=lambda h: h["val_acc"] if h["val_acc"] is not None else -1.0)
    data = f" on {images:,} images of the {source}" if images is not None and source else ""
    length, budget = f"{len(history)} epoch(s)", getattr(cfg, "time_budget", None)
    if budget:
        length = f"{history[-1].get('steps', 0):,} steps within its {budget:g}-minute budget ({length} validated)"
    lines = [f"done: {cfg.model} trained for {length}{data}"
             + (f" with {engine}" if engine else "") + ".",
             f"best validation accuracy {best['val_acc']:.2%} (epoch {best['epoch']}).",
             f"files: {out / 'best.npz'} (best epoch), {out / 'last.npz'} (to --resume), "
             f"{out / 'metrics.jsonl'}, {out / 'curves.png'}",
             f"evaluate: minisnn eval {out / 'best.npz'}" + (" --split val" if on_sample else "")]
    if on_sample or len(history) < 3:
        lines.append("this was a short run"
                     + (" on the small embedded sample, so a low accuracy is expected" if on_sample else "")
                     + f"; the README's result ({README_RESULT}) comes from the full dataset: "
                     + ("minisnn download cifar10 --data-dir DATA, then " if on_sample else "") + README_RECIPE)
    return "\n".join(lines)


def _cmd_eval(args) -> int:
    r = evaluate_checkpoint(args.checkpoint, data_dir=args.data_dir, split=args.split, batch_size=args.batch_size,
                            progress=not args.no_progress, flip=args.flip)
    print(f"data: {r['data']}; {r['found']}")
    print(f"{r['model']} (epoch {r['epoch']}) on {r['split']} ({r['images']} images"
          f"{', each also mirrored' if args.flip else ''}): accuracy {r['acc']:.4f}, loss {r['loss']:.4f}")
    return 0


def _cmd_export(args) -> int:
    path = export_weights(args.checkpoint, args.out, notes=dict(args.notes), data_dir=args.data_dir)
    print(f"wrote {path} ({Path(path).stat().st_size / 2**20:.2f} MiB)")
    return 0


def _cmd_models(args) -> int:
    for name in models.names():
        print(f"{name:28s} {models.describe(name)}")
    for name in pretrained_names():
        print(f"pretrained: {name:16s} minisnn.pretrained({name!r}) or `minisnn eval {pretrained_path(name)}`")
    return 0


def _cmd_download(args) -> int:
    path = download_dataset(args.dataset, args.data_dir)
    print(f"{args.dataset} ready at {path}")
    return 0


def _cmd_verify(args) -> int:
    report = verify_checkpoint(args.checkpoint, args.model, overrides=dict(args.model_overrides),
                               batch_size=args.batch_size, dtype=args.dtype, seed=args.seed, grads=args.grads,
                               train=args.train)
    print(report.format())
    return 0 if report.ok else 1


def _cmd_verify_neuron(args) -> int:
    try:
        from .torch import neuron_adapters, verify_neuron  # optional dependency: torch is imported only here
    except ImportError as exc:
        raise CliError(str(exc)) from None
    try:
        module = neuron_adapters.load_factory(args.factory, neuron_adapters.parse_kwargs(args.kwargs))
        report = verify_neuron.verify_neuron(module, args.claims, reset=args.reset, stepwise=args.stepwise,
                                             seed=args.seed)
    except (neuron_adapters.NeuronModuleError, TypeError) as exc:
        raise CliError(str(exc)) from None
    print(report.format())
    return 0 if report.ok else 1


_COMMANDS = {"train": _cmd_train, "eval": _cmd_eval, "export": _cmd_export, "models": _cmd_models,
             "download": _cmd_download, "verify": _cmd_verify, "verify-neuron": _cmd_verify_neuron}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _apply_threads(getattr(args, "threads", None), argv)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (CliError, ValueError, OSError, ImportError, StateDictError, MemoryError) as exc:
        if os.environ.get("MINISNN_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, MemoryError):
            message = f"out of memory ({message}); try a smaller --batch-size or smaller --set values"
        print(f"minisnn {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
