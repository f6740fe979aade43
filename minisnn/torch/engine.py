"""minisnn's training recipe on PyTorch: one process, or data-parallel with DistributedDataParallel.

    from minisnn.train import config_for
    from minisnn.torch import train
    train(config_for("dysvit-cifar10", epochs=30, data_dir=DATA, out="runs/dy"), device="cuda", nproc=1)

The recipe is `minisnn.train.Trainer`'s, piece for piece:

* data: `minisnn.data.get_datasets` (the same seeded validation split), `BatchIterator` with the same
  transforms and mixup, built on the CPU in NumPy (so batch b of epoch e holds the same images, crops,
  flips and mixup partners as in minisnn), then moved to the device;
* model: minisnn builds and initialises it (same seed, so the same initial weights), `to_torch` converts it;
* AdamW with minisnn's decay groups, WarmupCosine per step, label smoothing, global-norm clipping, the
  mixup cooldown, and the NaN guard (a step whose loss, gradient norm or updated weights are not finite
  is skipped; weights, optimiser state and BatchNorm statistics are restored; `nan_guard=False` turns it off);
* a time budget (`config.time_budget`): the steps that fit are planned by the shared loop
  (`minisnn.train.budget`), from this engine's own step times; with several processes every rank plans
  from the slowest rank's times (`TorchTrainer.agreed_seconds`), so all take the same steps;
* files: `last.npz` (each epoch and on Ctrl-C), `best.npz`, `metrics.jsonl`, `curves.png`, in minisnn's
  checkpoint format with `Trainer.state()`'s keys (the optimiser state in minisnn's AdamW layout), so
  `minisnn eval`/`export` read them and either engine resumes the other's `last.npz`.

Data parallelism (nproc > 1): torch.distributed with NCCL on GPUs, gloo on CPUs, one process per GPU,
launched by torch.multiprocessing.spawn (or torchrun, see `run.py`).  `config.batch_size` is the global
batch (it must divide by nproc) and `config.lr` is for that batch.  Every rank builds the whole global
batch b (the same seeded permutation and augmentation) and trains on its contiguous slice; DDP averages
the gradients, and BatchNorm uses the global batch's statistics (`distributed.sync_batch_norms`), so a step
equals one process's step on the whole batch up to float rounding.  Rank 0 alone validates (the whole
validation split, in minisnn's eval batches), logs, shows progress and writes files.

What differs from minisnn: float32 kernels round differently (a spike near its threshold can flip);
gradient norms are summed in float32 (minisnn: float64); `bf16=True` runs the forward pass under bfloat16
autocast (GPU only); TF32 is off, so float32 means float32.  MSViT/QKFormer with the upstream "merged"
stage-3 neuron carry membrane potential across the samples of a batch, so under DDP they see only the
rank's slice.  Validation runs on rank 0 without autocast (in the weights' dtype).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..train.config import TrainConfig
from .distributed import launch, process_group
from .trainer import TorchTrainer

DEVICES = ("cpu", "cuda")


def check_world(config: TrainConfig, world: int, compile_model: bool = False) -> None:
    """Refuse what `world` processes cannot share: a global batch that does not split evenly, or
    torch.compile (tried in one process only)."""
    if config.batch_size % world:
        raise ValueError(f"--batch-size {config.batch_size} is not divisible by {world} processes: the global batch "
                         f"is split evenly over the processes")
    if world > 1 and compile_model:
        raise ValueError(f"compile_model=True runs in one process, not in {world}")


def check_options(config: TrainConfig, device: str, nproc: int, bf16: bool, dtype: str = "float32",
                  compile_model: bool = False) -> None:
    """Refuse, with one line, what the engine cannot run in `nproc` local processes (before any starts)."""
    config.validate()
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"--nproc must be a positive integer, got {nproc!r}")
    check_world(config, nproc, compile_model)
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but PyTorch sees no CUDA GPU here")
        if nproc > torch.cuda.device_count():
            raise ValueError(f"--nproc {nproc} needs {nproc} GPUs (one per process), "
                             f"PyTorch sees {torch.cuda.device_count()}")
    if bf16 and device != "cuda":
        raise ValueError("--bf16 (bfloat16 autocast) is for --device cuda only")


def train(config: TrainConfig, device: str = "cpu", nproc: int = 1, progress: bool = True, bf16: bool = False,
          resume: bool = False, nan_guard: bool = True, dtype: str = "float32", log=print,
          compile_model: bool = False) -> list[dict]:
    """Train `config` with PyTorch on `device` ('cpu' or 'cuda') in `nproc` data-parallel processes.

    config.batch_size is the global batch, split evenly over the processes; resume=True continues from
    OUT/last.npz (written by either engine); nan_guard=False trains without the NaN guard; dtype="float64"
    trains in double precision (for exactness checks; the checkpoints then hold float64); compile_model=True
    trains the module through torch.compile (one process).  Returns the history (the lines of metrics.jsonl).
    `log` is used in a single process (processes print).
    """
    check_options(config, device, nproc, bf16, dtype, compile_model)
    if nproc == 1:
        return run_worker(0, 1, device, config, progress, bf16, resume, nan_guard, dtype, log,
                          compile_model=compile_model)
    launch(run_worker, nproc, device, args=(config, progress, bf16, resume, nan_guard, dtype))
    out = Path(config.out or Path("runs") / config.model)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def run_worker(rank: int, world: int, device: str, config: TrainConfig, progress: bool = True, bf16: bool = False,
               resume: bool = False, nan_guard: bool = True, dtype: str = "float32", log=print,
               local_rank: int | None = None, compile_model: bool = False) -> list[dict]:
    """The training of one rank (what every process runs); tears its process group down at the end."""
    with process_group(rank, world, device, local_rank) as place:
        torch.manual_seed(config.seed)
        if device == "cuda":                            # float32 means float32 (no TF32 matmuls or convolutions)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        elif config.threads or world > 1:
            torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // world))
        trainer = TorchTrainer(config, place, progress=progress, bf16=bf16, nan_guard=nan_guard, dtype=dtype, log=log,
                               compile_model=compile_model)
        if resume:
            trainer.resume()
        return trainer.fit()
