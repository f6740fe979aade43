"""`TorchTrainer`: one process's share of minisnn's training recipe on PyTorch (see `engine.py` for the recipe,
the data parallelism and what differs from minisnn's Trainer).

    trainer = TorchTrainer(config, Place(rank, world, device), progress=True)
    trainer.resume()          # optional: OUT/last.npz, written by either engine
    history = trainer.fit()

Like `minisnn.train.Trainer` it extends `minisnn.train.loop.TrainingLoop`, which holds the data, the epochs, the
running sums, `state()` (the same keys and layouts), `resume`, the metrics and the files; this class adds the
PyTorch parts: the module (`module` is the torch.nn.Module, `net` it or its DistributedDataParallel wrapper), the
optimiser and schedule, `train_step` on this rank's slice of the global batch, and `evaluate`.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import torch
import torch.nn.functional as tF
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .. import models
from ..nn import init
from ..train.config import TrainConfig
from ..train.loop import TrainingLoop
from .convert import numpy_state_dict, to_torch
from .distributed import Place, all_reduce_max, all_reduce_sum, shard, sync_batch_norms
from .guard import StepGuard
from .optim import WarmupCosineLR, adamw, adamw_state_to_minisnn, load_minisnn_adamw_state


class TorchTrainer(TrainingLoop):
    """One rank's trainer: `config` as minisnn's Trainer reads it, on `place` (see the module docstring).

    dtype "float64" trains in double precision (exactness checks); bf16 runs the forward pass under bfloat16
    autocast; nan_guard=False applies every step, finite or not; compile_model=True trains through
    `torch.compile(module)` (one process; validation runs the module as it is, and a step that compiled graphs
    is kept out of the images/s, as a step that compiled Numba kernels is in minisnn).
    """

    def __init__(self, config: TrainConfig, place: Place, progress: bool = True, bf16: bool = False,
                 nan_guard: bool = True, dtype: str = "float32", log=print, compile_model: bool = False):
        super().__init__(config, progress=progress, log=log, is_main=place.is_main)
        self.place = place
        self.bf16, self.nan_guard = bf16, nan_guard
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        init.manual_seed(config.seed)                  # minisnn's initial weights, as its Trainer draws them
        model = models.create(config.model, num_classes=self.num_classes, **config.model_overrides)
        self.model_config = dict(model.config)
        self.module = to_torch(model.to_dtype(np.dtype(dtype))).to(place.device)
        self.optimizer = adamw(self.module, model, config.lr, config.weight_decay)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.schedule = WarmupCosineLR(self.optimizer, **self.schedule_arguments())
        self.snapshot = StepGuard(self.module, self.optimizer)
        self.net = self.module
        if place.world > 1:
            sync_batch_norms(self.module, place.device)
            # static_graph: the same parameters take part in every step, and the few that never do (Spikformer's
            # unused LayerNorms, kept for the upstream keys) are found in the first step
            self.net = DistributedDataParallel(self.module, device_ids=None if place.device.index is None
                                               else [place.device.index], static_graph=True)
        elif compile_model:
            self.net = torch.compile(self.module)
        self._graphs = _compiled_graphs()
        self._open_output()

    # ------------------------------------------------------------- checkpoints
    def _model_state(self) -> dict:
        return numpy_state_dict(self.module)

    def _optimizer_state(self) -> dict:
        return adamw_state_to_minisnn(self.optimizer)

    def _load_model_and_optimizer(self, model_state: dict, optimizer_state: dict) -> None:
        """Weights and AdamW state in minisnn's layout, written by either engine."""
        own = self.module.state_dict()
        if set(model_state) != set(own):
            raise ValueError(f"differing weight names: {', '.join(sorted(set(model_state) ^ set(own))[:5])}")
        self.module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model_state.items()})
        load_minisnn_adamw_state(self.optimizer, optimizer_state)

    # ------------------------------------------------------------------ steps
    def train_step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, float, bool]:
        """One guarded step on this rank's slice (images, labels or soft targets).

        Returns the global batch's (mean loss, accuracy, skipped); every rank gets the same values.  A skipped
        step (non-finite loss, gradient norm or result, with the NaN guard on) leaves parameters, optimiser
        state and buffers exactly as they were (`self.snapshot`, taken first).
        """
        device = self.place.device
        # copies in torch's own (aligned) memory: CPU kernels may round differently on differently aligned input
        x = torch.from_numpy(xb).to(device, self.dtype, copy=True)
        y = torch.from_numpy(yb).to(device, self.dtype if yb.ndim == 2 else torch.int64, copy=True)
        self.snapshot.take()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.net(x)
        logits = logits.to(self.dtype)
        loss = tF.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        labels = y if y.ndim == 1 else y.argmax(dim=1)
        correct = (logits.argmax(dim=1) == labels).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()                                   # DDP averages the gradients over the ranks here
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad if self.cfg.clip_grad else math.inf)
        sums = all_reduce_sum(torch.stack([loss.detach(), correct.float(), torch.ones_like(loss)]), self.place)
        loss_sum, correct_sum, ranks, norm_value = torch.cat([sums, norm.reshape(1).to(sums)]).tolist()
        loss_value, acc = loss_sum / ranks, correct_sum / (ranks * len(yb))
        if self.nan_guard and not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            self.optimizer.zero_grad(set_to_none=True)
            self.snapshot.restore()
            return loss_value, acc, True
        self.optimizer.step()
        if self.nan_guard and not self.snapshot.result_is_finite():
            self.optimizer.zero_grad(set_to_none=True)
            self.snapshot.restore()
            return loss_value, acc, True
        return loss_value, acc, False

    @torch.no_grad()
    def evaluate(self, x: np.ndarray, y: np.ndarray, desc: str = "validate") -> dict:
        """Loss and top-1 accuracy on uint8 images `x`: eval mode, no autocast, minisnn's eval batches (rank 0)."""
        self.module.eval()
        total_loss, correct = 0.0, 0
        steps = range(0, len(x), self.cfg.eval_batch_size)
        if self.progress:
            steps = tqdm(steps, desc=desc, leave=False, unit="batch")
        for i in steps:
            xb = torch.from_numpy(self.eval_tf(x[i:i + self.cfg.eval_batch_size])).to(self.place.device, self.dtype,
                                                                                      copy=True)
            yb = torch.from_numpy(y[i:i + self.cfg.eval_batch_size]).to(self.place.device)
            logits = self.module(xb)
            total_loss += float(tF.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
        return {"loss": total_loss / max(len(y), 1), "acc": correct / max(len(y), 1)}

    def _validate(self, x: np.ndarray, y: np.ndarray) -> dict:
        return self.evaluate(x, y)

    def _set_training_mode(self) -> None:
        self.net.train()

    def _num_parameters(self) -> int:
        return sum(p.numel() for p in self.params)

    def _local_batch(self, xb: np.ndarray, yb: np.ndarray):
        """This rank's contiguous slice of the global batch."""
        return shard(xb, self.place), shard(yb, self.place)

    def agreed_seconds(self, seconds: float) -> float:
        """The slowest rank's `seconds` (a time budget's plan is the same on every rank)."""
        return all_reduce_max(seconds, self.place)

    def _step_compiled(self, seconds: float) -> bool:
        """True when the step just taken compiled graphs (torch.compile's first steps)."""
        before, self._graphs = self._graphs, _compiled_graphs()
        return self._graphs > before

    def _engine_description(self) -> str:
        place = self.place
        parallel = f"{place.world} processes (DistributedDataParallel)" if place.world > 1 else "1 process"
        compiled = ", torch.compile" if self.net is not self.module and place.world == 1 else ""
        return f"; PyTorch on {place.device.type}, {parallel}{compiled}{', bf16 autocast' if self.bf16 else ''}"


def _compiled_graphs() -> int:
    """The graphs torch.compile has compiled in this process so far (Dynamo's own count; 0 while Dynamo, which
    takes seconds to import, is not loaded: then nothing was compiled)."""
    dynamo = sys.modules.get("torch._dynamo.utils")
    return int(dynamo.counters["stats"]["unique_graphs"]) if dynamo is not None else 0
