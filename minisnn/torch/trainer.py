"""`TorchTrainer`: one process's share of minisnn's training recipe on PyTorch (see `engine.py` for the recipe,
the data parallelism and what differs from minisnn's Trainer).

    trainer = TorchTrainer(config, Place(rank, world, device), progress=True)
    trainer.resume()          # optional: OUT/last.npz, written by either engine
    history = trainer.fit()

It mirrors `minisnn.train.Trainer`: the same attributes (cfg, data, train_x, steps_per_epoch, epoch, batch, sums,
history, best_acc, skipped_total), `state()` with the same keys and layouts, `train_step`, `fit`; `module` is the
torch.nn.Module (`net` is it, or its DistributedDataParallel wrapper).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as tF
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .. import data as D
from .. import models
from ..nn import init
from ..train.config import TrainConfig
from ..train.state import TRAIN_KIND, WEIGHTS_KIND, load_state, save_state
from ..viz import training_curves
from .convert import numpy_state_dict, to_torch
from .distributed import Place, all_reduce_sum, shard, sync_batch_norms
from .guard import StepGuard
from .optim import WarmupCosineLR, adamw, adamw_state_to_minisnn, load_minisnn_adamw_state


def _silent(*_args, **_kwargs) -> None:
    pass


def _new_sums() -> dict:
    """Running sums of an epoch, as minisnn's trainer keeps them: loss/acc over the `n` finite steps, `skipped`
    steps, and the `seconds` of the `timed` steps (`compile_seconds` stays 0: PyTorch compiles nothing here)."""
    return {"loss": 0.0, "acc": 0.0, "n": 0, "skipped": 0, "seconds": 0.0, "timed": 0, "compile_seconds": 0.0}


def _images_per_second(sums: dict, batch_size: int) -> float:
    return sums["timed"] * batch_size / sums["seconds"] if sums["timed"] and sums["seconds"] > 0 else float("nan")


def _json_line(record: dict) -> str:
    """One line of metrics.jsonl: NaN and infinities become null (strict JSON)."""
    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                       for k, v in record.items()}) + "\n"


class TorchTrainer:
    """One rank's trainer: `config` as minisnn's Trainer reads it, on `place` (see the module docstring).

    dtype "float64" trains in double precision (exactness checks); bf16 runs the forward pass under bfloat16
    autocast; nan_guard=False applies every step, finite or not.
    """

    def __init__(self, config: TrainConfig, place: Place, progress: bool = True, bf16: bool = False,
                 nan_guard: bool = True, dtype: str = "float32", log=print):
        self.cfg = config.validate()
        self.place = place
        self.progress = progress and place.is_main
        self.log = log if place.is_main else _silent
        self.bf16, self.nan_guard = bf16, nan_guard
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        self.out = Path(config.out or Path("runs") / config.model)
        if place.is_main:
            self.out.mkdir(parents=True, exist_ok=True)

        self.data = D.get_datasets(data_dir=config.data_dir, val_size=config.val_size, seed=config.seed,
                                   announce=self.log)
        self.log(f"data: {self.data.source}")
        tx, ty = self.data.train
        if config.train_limit:
            tx, ty = tx[: config.train_limit], ty[: config.train_limit]
        self.train_x, self.train_y = tx, ty
        self.num_classes = len(self.data.classes)
        self.steps_per_epoch = len(tx) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch size {config.batch_size} is larger than the training set ({len(tx)} images)")

        init.manual_seed(config.seed)                  # minisnn's initial weights, as its Trainer draws them
        model = models.create(config.model, num_classes=self.num_classes, **config.model_overrides)
        self.model_config = dict(model.config)
        self.module = to_torch(model.to_dtype(np.dtype(dtype))).to(place.device)
        self.optimizer = adamw(self.module, model, config.lr, config.weight_decay)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.schedule = WarmupCosineLR(self.optimizer, warmup=int(round(config.warmup_epochs * self.steps_per_epoch)),
                                       total=self.steps_per_epoch * config.epochs, base_lr=config.lr,
                                       min_lr=config.min_lr)
        self.guard = StepGuard(self.module, self.optimizer)
        self.net = self.module
        if place.world > 1:
            sync_batch_norms(self.module, place.device)
            # static_graph: the same parameters take part in every step, and the few that never do (Spikformer's
            # unused LayerNorms, kept for the upstream keys) are found in the first step
            self.net = DistributedDataParallel(self.module, device_ids=None if place.device.index is None
                                               else [place.device.index], static_graph=True)
        self.train_tf = D.TrainTransform(padding=config.crop_padding, flip=config.flip,
                                         normalization=config.normalization)
        self.eval_tf = D.EvalTransform(normalization=config.normalization)
        self.mixup = None
        if config.mixup_alpha > 0 or config.cutmix_alpha > 0:
            self.mixup = D.Mixup(mixup_alpha=config.mixup_alpha, cutmix_alpha=config.cutmix_alpha,
                                 num_classes=self.num_classes)
        self.epoch = 0
        self.batch = 0
        self.sums = _new_sums()
        self.history: list[dict] = []
        self.best_acc = -1.0
        self.skipped_total = 0

    # ------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        """The training state with minisnn `Trainer.state()`'s keys and layouts (NumPy arrays, plain numbers)."""
        return {
            "kind": TRAIN_KIND,
            "config": self.cfg.to_dict(),
            "model_name": self.cfg.model,
            "model_config": self.model_config,
            "model": numpy_state_dict(self.module),
            "optimizer": adamw_state_to_minisnn(self.optimizer),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "epoch_sums": dict(self.sums),
            "history": self.history,
            "best_acc": self.best_acc,
            "skipped_total": self.skipped_total,
            "classes": list(self.data.classes),
            "normalization": self.cfg.normalization,
            "train_images": len(self.train_x),
        }

    def save(self, name: str = "last.npz") -> Path:
        return save_state(self.state(), self.out / name)

    def resume(self, path: str | os.PathLike | None = None) -> None:
        """Continue from `path` (default OUT/last.npz), written by this engine or by minisnn's Trainer: weights,
        optimiser, schedule position, data position, the epoch's running sums and the history.  The config may
        differ from the run's only in its length (epochs)."""
        path = Path(path) if path else self.out / "last.npz"
        st = load_state(path)
        if st.get("kind") == WEIGHTS_KIND:
            raise ValueError(f"{path} holds exported weights only (no optimiser state): it cannot be resumed")
        if st.get("kind") != TRAIN_KIND or "optimizer" not in st:
            raise ValueError(f"{path} is not a training checkpoint of `minisnn train` or minisnn.torch")
        if st.get("model_name") != self.cfg.model:
            raise ValueError(f"{path} was trained as {st.get('model_name')!r}, not {self.cfg.model!r}")
        if st.get("train_images", len(self.train_x)) != len(self.train_x):
            raise ValueError(f"{path} was trained on {st['train_images']} images, but {self.data.source} gives "
                             f"{len(self.train_x)}: pass the --data-dir and --train-limit of that run")
        epoch, batch = int(st["epoch"]), int(st["batch"])
        if self.cfg.epochs < epoch + (batch > 0):
            raise ValueError(f"{path} has already trained {epoch + (batch > 0)} epoch(s); --epochs must be at "
                             f"least that, got {self.cfg.epochs}")
        own = self.module.state_dict()
        if set(st["model"]) != set(own):
            raise ValueError(f"{path} does not hold the weights of this {self.cfg.model} "
                             f"(differing keys: {', '.join(sorted(set(st['model']) ^ set(own))[:5])})")
        self.module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in st["model"].items()})
        load_minisnn_adamw_state(self.optimizer, st["optimizer"])
        self.schedule.step(int(st["schedule"]["t"]))    # the position; the shape comes from this config
        self.epoch, self.batch = epoch, batch
        self.sums = {**_new_sums(), **st.get("epoch_sums", {})}
        self.history = list(st["history"])
        self.best_acc = float(st["best_acc"])
        self.skipped_total = int(st["skipped_total"])
        self.log(f"resumed from {path} at epoch {self.epoch + 1}, batch {self.batch}")

    # ------------------------------------------------------------------ steps
    def train_step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, float, bool]:
        """One guarded step on this rank's slice (images, labels or soft targets).

        Returns the global batch's (mean loss, accuracy, skipped); every rank gets the same values.  A skipped
        step (non-finite loss, gradient norm or result, with the NaN guard on) leaves parameters, optimiser
        state and buffers exactly as they were (`self.guard`, taken first).
        """
        device = self.place.device
        # copies in torch's own (aligned) memory: CPU kernels may round differently on differently aligned input
        x = torch.from_numpy(xb).to(device, self.dtype, copy=True)
        y = torch.from_numpy(yb).to(device, self.dtype if yb.ndim == 2 else torch.int64, copy=True)
        self.guard.take()
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
            self.guard.restore()
            return loss_value, acc, True
        self.optimizer.step()
        if self.nan_guard and not self.guard.result_is_finite():
            self.optimizer.zero_grad(set_to_none=True)
            self.guard.restore()
            return loss_value, acc, True
        return loss_value, acc, False

    def mixup_active(self, epoch: int) -> bool:
        return self.mixup is not None and epoch < self.cfg.epochs - self.cfg.mixup_off_epochs

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

    # ------------------------------------------------------------------- loop
    def fit(self) -> list[dict]:
        cfg, place = self.cfg, self.place
        parallel = f"{place.world} processes (DistributedDataParallel)" if place.world > 1 else "1 process"
        self.log(f"model {cfg.model}: {sum(p.numel() for p in self.params):,} parameters; "
                 f"{len(self.train_x)} train / {len(self.data.val[0])} val images; "
                 f"{self.steps_per_epoch} steps x {cfg.epochs} epochs; PyTorch on {place.device.type}, {parallel}"
                 f"{', bf16 autocast' if self.bf16 else ''}; output {self.out}")
        try:
            while self.epoch < cfg.epochs:
                self._train_steps(self.epoch)
                self._close_epoch()
        except KeyboardInterrupt:
            if place.is_main:
                self.log(f"\ninterrupted: state saved to {self.save()}; continue with --resume")
            raise
        if place.is_main:
            training_curves(self.history, path=self.out / "curves.png")
        return self.history

    def _train_steps(self, epoch: int) -> None:
        """The epoch's steps from batch `self.batch` on, added to `self.sums`."""
        cfg = self.cfg
        self.net.train()
        batches = D.BatchIterator(self.train_x, self.train_y, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                  epoch=epoch, transform=self.train_tf,
                                  mixup=self.mixup if self.mixup_active(epoch) else None,
                                  drop_last=True, start_batch=self.batch)
        bar = None
        if self.progress:
            bar = tqdm(total=self.steps_per_epoch, initial=self.batch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       unit="batch", dynamic_ncols=True)
        try:
            for xb, yb in batches:                         # the global batch; this rank trains on its slice
                self._guarded_step(shard(xb, self.place), shard(yb, self.place))
                if bar is not None:
                    sums, rate = self.sums, _images_per_second(self.sums, cfg.batch_size)
                    bar.set_postfix(loss=f"{sums['loss'] / max(sums['n'], 1):.3f}",
                                    acc=f"{sums['acc'] / max(sums['n'], 1):.3f}", img_s=f"{rate:.0f}",
                                    lr=f"{self.optimizer.param_groups[0]['lr']:.2e}", refresh=False)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    def _guarded_step(self, xb: np.ndarray, yb: np.ndarray) -> None:
        """`train_step`, the schedule, the counters and the sums, undone together if an exception cuts them short."""
        batch, sums, t = self.batch, dict(self.sums), self.schedule.t
        self.guard.taken = False
        t0 = time.perf_counter()
        try:
            loss, acc, skipped = self.train_step(xb, yb)   # runs at lr_at(global step)
            self.schedule.step()
            self.batch += 1
            if skipped:
                self.sums["skipped"] += 1
            else:
                self.sums["loss"] += loss
                self.sums["acc"] += acc
                self.sums["n"] += 1
            self.sums["seconds"] += time.perf_counter() - t0
            self.sums["timed"] += 1
        except BaseException:
            self.guard.restore()
            self.batch, self.sums = batch, sums
            self.schedule.step(t)
            raise

    def _close_epoch(self) -> None:
        """Rank 0 validates and writes metrics.jsonl, best.npz and last.npz; every rank moves to the next epoch.

        The counters move only after the validation: a run interrupted during it resumes at the end of the
        epoch's steps and validates again.
        """
        record = self._epoch_record(self.epoch, self.sums) if self.place.is_main else None
        self.skipped_total += self.sums["skipped"]
        self.epoch += 1
        self.batch = 0
        self.sums = _new_sums()
        if record is None:
            return
        self.history.append(record)
        tmp = self.out / f"metrics.jsonl.tmp-{os.getpid()}"
        tmp.write_text("".join(_json_line(r) for r in self.history))
        os.replace(tmp, self.out / "metrics.jsonl")
        if record["val_acc"] > self.best_acc:
            self.best_acc = record["val_acc"]
            self.save("best.npz")
        self.save("last.npz")

    def _epoch_record(self, epoch: int, sums: dict) -> dict:
        """Validate, then the epoch's line of metrics.jsonl (also logged), with minisnn's Trainer's keys."""
        vx, vy = self.data.val
        val = self.evaluate(vx, vy) if len(vx) else {"loss": float("nan"), "acc": float("nan")}
        n = sums["n"]
        record = {
            "epoch": epoch + 1,
            "train_loss": sums["loss"] / n if n else float("nan"),
            "train_acc": sums["acc"] / n if n else float("nan"),
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "skipped_steps": sums["skipped"],
            "train_seconds": sums["seconds"] + sums["compile_seconds"],
            "compile_seconds": sums["compile_seconds"],
            "images_per_second": _images_per_second(sums, self.cfg.batch_size),
        }
        train = (f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}" if n
                 else f"train: all {sums['skipped']} steps skipped (non-finite)")
        self.log(f"epoch {epoch + 1}: {train} | val loss {val['loss']:.4f} acc {val['acc']:.4f} | "
                 f"{record['images_per_second']:.1f} img/s"
                 + (f" | skipped {sums['skipped']} non-finite steps" if sums["skipped"] and n else ""))
        return record
