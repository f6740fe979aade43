"""The training loop: AdamW + warmup-cosine, clipping, NaN guards, atomic checkpoints, resume.

One optimisation step on a batch (x, y):

    loss = CE(model(x), y; label smoothing)   # y: labels or mixup soft targets; the model starts
                                              # every neuron from rest, so no state leaks between batches
    loss.backward(); ‖g‖ = clip(g)            # global-norm clipping
    if loss or ‖g‖ is not finite: skip the step, restore BN running stats, count it
    else: optimizer.step()

An epoch is its steps (`_train_steps`), then validation and the metrics record (`_epoch_record`),
then the files (`_persist`).  Files in the output folder: `last.npz` (full training state,
every epoch and on Ctrl-C), `best.npz` (best validation accuracy), `metrics.jsonl` (one line
per epoch), `curves.png`.  `resume=True` continues from `last.npz` bit for bit.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import data as D
from .. import functional as F
from .. import models
from ..autograd.grad_mode import no_grad
from ..nn import init
from ..optim import AdamW, WarmupCosine, clip_grad_norm_, decay_groups
from ..viz import training_curves
from .config import TrainConfig
from .state import TRAIN_KIND, WEIGHTS_KIND, load_state, save_state


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean()) if len(labels) else float("nan")


def evaluate(model, x: np.ndarray, y: np.ndarray, transform, batch_size: int = 256, progress: bool = False,
             desc: str = "eval") -> dict:
    """Loss and top-1 accuracy of `model` (eval mode) on uint8 images `x` and labels `y`."""
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    steps = range(0, len(x), batch_size)
    if progress:
        steps = tqdm(steps, desc=desc, leave=False, unit="batch")
    with no_grad():
        for i in steps:
            xb = transform(x[i:i + batch_size])
            yb = y[i:i + batch_size]
            logits = model(xb)
            total_loss += float(F.cross_entropy(logits, yb, reduction="sum").item())
            correct += int((logits.data.argmax(axis=1) == yb).sum())
            n += len(yb)
    return {"loss": total_loss / max(n, 1), "acc": correct / max(n, 1)}


class Trainer:
    """Trains `config.model` on CIFAR-10 (or the embedded sample) as described in the module docstring."""

    def __init__(self, config: TrainConfig, progress: bool = True, log=print):
        self.cfg = config.validate()
        self.progress = progress
        self.log = log
        self.out = Path(config.out or Path("runs") / config.model)
        self.out.mkdir(parents=True, exist_ok=True)

        self.data = D.get_datasets(data_dir=config.data_dir, val_size=config.val_size, seed=config.seed, announce=log)
        log(f"data: {self.data.source}")
        tx, ty = self.data.train
        if config.train_limit:
            tx, ty = tx[: config.train_limit], ty[: config.train_limit]
        self.train_x, self.train_y = tx, ty
        self.num_classes = len(self.data.classes)

        init.manual_seed(config.seed)
        self.model = models.create(config.model, num_classes=self.num_classes, **config.model_overrides)
        self.model_config = dict(getattr(self.model, "config", {}))
        self.steps_per_epoch = len(tx) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch size {config.batch_size} is larger than the training set ({len(tx)} images)")
        total = self.steps_per_epoch * config.epochs
        self.optimizer = AdamW(decay_groups(self.model, config.weight_decay), lr=config.lr)
        self.schedule = WarmupCosine(
            self.optimizer,
            warmup=int(round(config.warmup_epochs * self.steps_per_epoch)),
            total=total,
            base_lr=config.lr,
            min_lr=config.min_lr,
        )
        self.train_tf = D.TrainTransform(padding=config.crop_padding, flip=config.flip, normalization=config.normalization)
        self.eval_tf = D.EvalTransform(normalization=config.normalization)
        self.mixup = None
        if config.mixup_alpha > 0 or config.cutmix_alpha > 0:
            self.mixup = D.Mixup(mixup_alpha=config.mixup_alpha, cutmix_alpha=config.cutmix_alpha,
                                 num_classes=self.num_classes)
        self.epoch = 0
        self.batch = 0
        self.history: list[dict] = []
        self.best_acc = -1.0
        self.skipped_total = 0

    # ------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        return {
            "kind": TRAIN_KIND,
            "config": self.cfg.to_dict(),
            "model_name": self.cfg.model,
            "model_config": self.model_config,
            "model": dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "history": self.history,
            "best_acc": self.best_acc,
            "skipped_total": self.skipped_total,
            "classes": list(self.data.classes),
            "normalization": self.cfg.normalization,
        }

    def save(self, name: str = "last.npz") -> Path:
        return save_state(self.state(), self.out / name)

    def resume(self, path: str | os.PathLike | None = None) -> None:
        path = Path(path) if path else self.out / "last.npz"
        st = load_state(path)
        if st.get("kind") == WEIGHTS_KIND:
            raise ValueError(f"{path} holds exported weights only (no optimiser state): it cannot be resumed")
        if st.get("model_name") != self.cfg.model:
            raise ValueError(f"{path} was trained as {st.get('model_name')!r}, not {self.cfg.model!r}")
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.schedule.load_state_dict(st["schedule"])
        self.epoch, self.batch = int(st["epoch"]), int(st["batch"])
        self.history = list(st["history"])
        self.best_acc = float(st["best_acc"])
        self.skipped_total = int(st["skipped_total"])
        self.log(f"resumed from {path} at epoch {self.epoch + 1}, batch {self.batch}")

    # ------------------------------------------------------------------ steps
    def train_step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, float, bool]:
        """One guarded step.  Returns (loss, batch accuracy, skipped)."""
        saved = self.model.buffers_snapshot()
        logits = self.model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=self.cfg.label_smoothing)
        loss_value = float(loss.item())
        self.optimizer.zero_grad()
        labels = yb if yb.ndim == 1 else yb.argmax(axis=1)
        acc = accuracy(logits.data, labels)
        if not math.isfinite(loss_value):
            self.model.load_buffers_snapshot(saved)
            return loss_value, acc, True
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        norm = clip_grad_norm_(params, self.cfg.clip_grad if self.cfg.clip_grad else float("inf"))
        if not math.isfinite(float(norm)):
            self.optimizer.zero_grad()
            self.model.load_buffers_snapshot(saved)
            return loss_value, acc, True
        self.optimizer.step()
        return loss_value, acc, False

    def mixup_active(self, epoch: int) -> bool:
        return self.mixup is not None and epoch < self.cfg.epochs - self.cfg.mixup_off_epochs

    # ------------------------------------------------------------------- loop
    def fit(self) -> list[dict]:
        cfg = self.cfg
        self.log(f"model {cfg.model}: {self.model.num_parameters():,} parameters; "
                 f"{len(self.train_x)} train / {len(self.data.val[0])} val images; "
                 f"{self.steps_per_epoch} steps x {cfg.epochs} epochs; output {self.out}")
        try:
            while self.epoch < cfg.epochs:
                self._run_epoch()
        except KeyboardInterrupt:
            path = self.save()
            self.log(f"\ninterrupted: state saved to {path}; continue with --resume")
            raise
        training_curves(self.history, path=self.out / "curves.png")
        return self.history

    def _run_epoch(self) -> None:
        epoch = self.epoch
        sums, train_seconds = self._train_steps(epoch)
        record = self._epoch_record(epoch, sums, train_seconds)
        self._persist(record)

    def _train_steps(self, epoch: int) -> tuple[dict, float]:
        """The epoch's optimisation steps from batch `self.batch` on.

        Returns the sums over the steps ("loss", "acc" and their count "n" over the steps taken,
        "skipped" for the non-finite ones) and the seconds they took.
        """
        cfg = self.cfg
        self.model.train()
        batches = D.BatchIterator(
            self.train_x, self.train_y, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch,
            transform=self.train_tf, mixup=self.mixup if self.mixup_active(epoch) else None,
            drop_last=True, start_batch=self.batch,
        )
        bar = None
        if self.progress:
            bar = tqdm(total=self.steps_per_epoch, initial=self.batch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       unit="batch", dynamic_ncols=True)
        sums = {"loss": 0.0, "acc": 0.0, "n": 0, "skipped": 0}
        t0 = time.perf_counter()
        for xb, yb in batches:
            loss, acc, skipped = self.train_step(xb, yb)   # runs at lr_at(global step)
            self.schedule.step()
            self.batch += 1
            if skipped:
                sums["skipped"] += 1
            else:
                sums["loss"] += loss
                sums["acc"] += acc
                sums["n"] += 1
            if bar is not None:
                self._show_progress(bar, sums, time.perf_counter() - t0)
        if bar is not None:
            bar.close()
        return sums, time.perf_counter() - t0

    def _show_progress(self, bar, sums: dict, elapsed: float) -> None:
        done = sums["n"] + sums["skipped"]
        bar.set_postfix(loss=f"{sums['loss'] / max(sums['n'], 1):.3f}",
                        acc=f"{sums['acc'] / max(sums['n'], 1):.3f}",
                        img_s=f"{done * self.cfg.batch_size / max(elapsed, 1e-9):.0f}",
                        lr=f"{self.optimizer.param_groups[0]['lr']:.2e}", refresh=False)
        bar.update(1)

    def _epoch_record(self, epoch: int, sums: dict, train_seconds: float) -> dict:
        """Validate, then the epoch's line of metrics.jsonl (also logged)."""
        cfg = self.cfg
        vx, vy = self.data.val
        val = evaluate(self.model, vx, vy, self.eval_tf, cfg.eval_batch_size, self.progress, "validate") \
            if len(vx) else {"loss": float("nan"), "acc": float("nan")}
        record = {
            "epoch": epoch + 1,
            "train_loss": sums["loss"] / max(sums["n"], 1),
            "train_acc": sums["acc"] / max(sums["n"], 1),
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "skipped_steps": sums["skipped"],
            "train_seconds": train_seconds,
            "images_per_second": sums["n"] * cfg.batch_size / max(train_seconds, 1e-9),
        }
        self.log(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f} | "
                 f"val loss {val['loss']:.4f} acc {val['acc']:.4f} | {record['images_per_second']:.1f} img/s"
                 + (f" | skipped {sums['skipped']} non-finite steps" if sums["skipped"] else ""))
        return record

    def _persist(self, record: dict) -> None:
        """Close the epoch: add `record` to the history and metrics.jsonl, then write best.npz and last.npz."""
        self.skipped_total += record["skipped_steps"]
        self.history.append(record)
        tmp = self.out / "metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.history))
        os.replace(tmp, self.out / "metrics.jsonl")
        self.epoch += 1
        self.batch = 0
        if record["val_acc"] > self.best_acc:
            self.best_acc = record["val_acc"]
            self.save("best.npz")
        self.save("last.npz")
