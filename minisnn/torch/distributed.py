"""Data parallelism for the torch engine: processes, process groups, per-rank shards, BatchNorm over the global batch.

    launch(worker, nproc=4, device="cuda", args=(...))   # torch.multiprocessing.spawn; worker(rank, world, device, *args)
    with process_group(rank, world, "cuda") as place:    # process group (NCCL on GPUs, gloo on CPUs), device
        x_rank = shard(x_global, place)                  # this rank's contiguous slice of a global batch
        sync_batch_norms(module, place.device)           # BN statistics over the global batch

Under `torchrun --nproc-per-node N -m minisnn.torch.run ...` the processes already exist: `torchrun_rank()`
reads RANK / WORLD_SIZE / LOCAL_RANK and the same worker runs in each one.

NCCL's NVLink multicast (NVLS) is switched off by default (`NCCL_NVLS_ENABLE=0`, unless the environment
sets it): on shared GPU hosts a program using it can put every GPU of the host out of service.

BatchNorm: DistributedDataParallel averages gradients but not BatchNorm statistics, so each rank would
normalise with its own slice's mean and variance, and the result would differ from one process on the
whole batch.  `sync_batch_norms` makes every BatchNorm use the statistics of the global batch, in the
forward and the backward pass: on GPUs with `torch.nn.SyncBatchNorm`'s own kernels; on CPUs (gloo),
where SyncBatchNorm refuses to run, with `AllReduceBatchNorm`, which all-reduces the per-channel sums
in an autograd Function whose backward all-reduces the gradients of those sums (which is what makes
the gradients those of the global batch).
"""
from __future__ import annotations

import contextlib
import functools
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

LAUNCHER_ENV = {"NCCL_NVLS_ENABLE": "0"}     # NVLink multicast off on shared hosts (see the module doc)


@dataclass(frozen=True)
class Place:
    """Where this process works: its rank among `world` processes and its torch device."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, shows progress and writes files."""
        return self.rank == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_rank() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when started by torchrun (its environment variables), else None."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        return rank, world, int(os.environ.get("LOCAL_RANK", rank))
    return None


def launch(worker, nproc: int, device: str, args: tuple = ()) -> None:
    """Run `worker(rank, nproc, device, *args)` in `nproc` processes (torch.multiprocessing.spawn); 1: here."""
    for key, value in LAUNCHER_ENV.items():
        os.environ.setdefault(key, value)
    if nproc == 1:
        worker(0, 1, device, *args)
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    mp.spawn(_spawned, args=(worker, nproc, device, args), nprocs=nproc, join=True)


def _spawned(rank: int, worker, nproc: int, device: str, args: tuple) -> None:
    worker(rank, nproc, device, *args)


def setup(rank: int, world: int, device: str, local_rank: int | None = None) -> Place:
    """This process's Place; with world > 1 also the default process group (NCCL for cuda, gloo for cpu).

    Each rank takes GPU `local_rank` (default: its rank).  MASTER_ADDR / MASTER_PORT come from the
    environment (set by `launch` or torchrun).
    """
    local_rank = rank if local_rank is None else local_rank
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        where = torch.device("cuda", local_rank)
    else:
        where = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        for key, value in LAUNCHER_ENV.items():
            os.environ.setdefault(key, value)
        dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=rank, world_size=world)
    return Place(rank, world, where)


def teardown(synchronise: bool = False) -> None:
    """Destroy the process group; with `synchronise`, after a barrier that every rank reaches first."""
    if dist.is_initialized():
        if synchronise:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(rank: int, world: int, device: str, local_rank: int | None = None):
    """`setup(...)` for the block (its Place), then `teardown`.  When the block ends normally, the ranks
    meet at a barrier first: a rank that destroyed the group while another still finished its last
    collective could abort that rank's communication threads ("terminate called without an active
    exception", SIGABRT).  After an error the group is torn down at once (the others may never come)."""
    place = setup(rank, world, device, local_rank)
    try:
        yield place
    except BaseException:
        teardown()
        raise
    teardown(synchronise=True)


def shard(batch, place: Place):
    """Rank r's contiguous slice [r·b, (r+1)·b) of a global batch of world·b items (an array or tensor)."""
    per_rank = len(batch) // place.world
    return batch[place.rank * per_rank:(place.rank + 1) * per_rank]


def all_reduce_sum(values: torch.Tensor, place: Place) -> torch.Tensor:
    """The sum over ranks of `values` (a no-op for one process)."""
    if place.world > 1:
        dist.all_reduce(values)
    return values


def all_reduce_max(value: float, place: Place) -> float:
    """The largest `value` over the ranks (`value` itself for one process)."""
    if place.world == 1:
        return value
    values = torch.tensor([value], dtype=torch.float64, device=place.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return float(values.item())


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm whose training-mode statistics are those of the global batch, for CPU processes (gloo).

    torch.nn.SyncBatchNorm does this on GPUs only (on CPU tensors it raises, and DistributedDataParallel
    refuses CPU modules holding one).  Used as a mixin by `sync_batch_norms`, which puts it right after a
    BatchNorm's own class, so a subclass that reshapes around `super().forward` (Dy-SViT's TokenBN) keeps
    doing so.  Eval mode, and a single process, use the ordinary BatchNorm.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return _all_reduce_batch_norm(self, input)
        return super().forward(input)


class _AllReduceSum(torch.autograd.Function):
    """y = Σ over ranks of x; the gradient of x is Σ over ranks of the gradient of y (each rank's loss
    depends on every rank's x through y)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _all_reduce_batch_norm(bn: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """Training-mode batch norm of x [N, C, ...] with the mean and (biased) variance over every rank's batch.

    mean = Σ x / n, var = Σ (x − mean)² / n, both sums all-reduced by `_AllReduceSum`; running statistics
    as torch updates them (momentum, or the cumulative average when momentum is None; unbiased variance).
    """
    channels = x.shape[1]
    shape = (1, channels) + (1,) * (x.dim() - 2)
    axes = [0] + list(range(2, x.dim()))
    count = torch.tensor([x.numel() // channels], dtype=torch.int64)
    dist.all_reduce(count)
    n = int(count.item())
    mean = _AllReduceSum.apply(x.sum(axes)) / n
    centred = x - mean.reshape(shape)
    var = _AllReduceSum.apply((centred * centred).sum(axes)) / n
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
            bn.running_var.mul_(1 - factor).add_(var.detach() * (n / max(n - 1, 1)), alpha=factor)
    y = centred * torch.rsqrt(var + bn.eps).reshape(shape)
    if bn.affine:
        y = y * bn.weight.reshape(shape) + bn.bias.reshape(shape)
    return y


@functools.cache
def _global_class(cls: type, mixin: type) -> type:
    """`cls` with `mixin`'s forward between its own and _BatchNorm's (method resolution order:
    cls, its BatchNorm base (BatchNorm1d/2d), mixin, _BatchNorm)."""
    return type(f"{mixin.__name__.removesuffix('BatchNorm')}{cls.__name__}", (cls, mixin), {})


def sync_batch_norms(module: nn.Module, device: torch.device) -> int:
    """Make every BatchNorm of `module` normalise with global-batch statistics; returns how many.

    On a CUDA device the mixin is torch.nn.SyncBatchNorm, on the CPU AllReduceBatchNorm.  The modules keep
    their parameters, buffers and state_dict keys: only their class changes.
    """
    mixin = nn.SyncBatchNorm if device.type == "cuda" else AllReduceBatchNorm
    count = 0
    for m in module.modules():
        if isinstance(m, _BatchNorm) and not isinstance(m, mixin):
            m.__class__ = _global_class(type(m), mixin)
            m.process_group = None              # SyncBatchNorm's attribute: the default (world) group
            count += 1
    return count
