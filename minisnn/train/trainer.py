"""The training loop: AdamW + warmup-cosine, clipping, NaN guards, atomic checkpoints, resume.

One optimisation step on a batch (x, y):

    snapshot parameters, optimiser state, BN buffers
    loss = CE(model(x), y; label smoothing)   # y: labels or mixup soft targets; the model starts
                                              # every neuron from rest, so no state leaks between batches
    loss.backward(); ‖g‖ = clip(g)            # global-norm clipping
    if loss or ‖g‖ is not finite: skip the step, restore the snapshot, count it
    else: optimizer.step(); if a parameter or buffer became non-finite: restore, skip, count

An epoch is its steps (`_train_steps`), then validation and the metrics record (`_epoch_record`),
then the files (`_persist`).  Files in the output folder: `last.npz` (full training state,
every epoch and on Ctrl-C), `best.npz` (best validation accuracy), `metrics.jsonl` (one line
per epoch; NaN is written as null), `curves.png`.  `resume()` continues from `last.npz` bit for
bit, whether the run was killed (it restarts at the last epoch end) or interrupted with Ctrl-C:
a step cut short is undone (`guard.StepSnapshot`) and the epoch's running sums are saved, so
the resumed run's weights, buffers, optimiser state and metrics equal the uninterrupted run's.

The first step of a process may compile the Numba kernels (30 s or more on a small CPU, once
per machine): the trainer says so before it starts, reports the time after it, and leaves
that step out of the images/s it reports (the epoch record keeps it as `compile_seconds`).
"""
from __future__ import annotations

import importlib
import json
import math
import os
import shlex
import threading
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import data as D
from .. import functional as F
from .. import kernels, models
from ..autograd.grad_mode import no_grad
from ..nn import init
from ..nn.module import StateDictError
from ..optim import AdamW, WarmupCosine, clip_grad_norm_, decay_groups
from ..viz import training_curves
from .config import TrainConfig
from .guard import StepSnapshot, interrupts_deferred
from .state import (TRAIN_KIND, TrainCheckpointError, load_training_state, remove_stale_temporaries,
                    save_state)

COMPILING = "compiling Numba kernels for this machine (first run only, cached afterwards)…"
ANNOUNCE_AFTER = 1.0  # seconds into the first step: a step still compiling then is announced


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


def _new_sums() -> dict:
    """Running sums of an epoch: loss/acc over the `n` finite steps, `skipped` steps, and the seconds
    of the `timed` steps (all but a step that compiled kernels, whose time is `compile_seconds`)."""
    return {"loss": 0.0, "acc": 0.0, "n": 0, "skipped": 0, "seconds": 0.0, "timed": 0, "compile_seconds": 0.0}


def _compile_cache():
    """`minisnn.kernels.compile_cache`, imported when first needed: it loads Numba (jit backend only)."""
    return importlib.import_module("minisnn.kernels.compile_cache")


def _json_line(record: dict) -> str:
    """One line of metrics.jsonl: NaN and infinities become null (strict JSON)."""
    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                       for k, v in record.items()}) + "\n"


class Trainer:
    """Trains `config.model` on CIFAR-10 (or the embedded sample) as described in the module docstring."""

    def __init__(self, config: TrainConfig, progress: bool = True, log=print):
        self.cfg = config.validate()
        self.progress = progress
        self.log = log
        self.out = Path(config.out or Path("runs") / config.model)

        self.data = D.get_datasets(data_dir=config.data_dir, val_size=config.val_size, seed=config.seed, announce=log)
        log(f"data: {self.data.source}")
        tx, ty = self.data.train
        if config.train_limit:
            tx, ty = tx[: config.train_limit], ty[: config.train_limit]
        self.train_x, self.train_y = tx, ty
        self.num_classes = len(self.data.classes)
        image_size = min(tx.shape[-2:])
        if config.crop_padding > image_size:
            raise ValueError(f"--crop-padding must be at most the image size ({image_size}), got {config.crop_padding}")
        self.steps_per_epoch = len(tx) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch size {config.batch_size} is larger than the training set ({len(tx)} images)")

        init.manual_seed(config.seed)
        self.model = models.create(config.model, num_classes=self.num_classes, **config.model_overrides)
        self.model_config = dict(getattr(self.model, "config", {}))
        total = self.steps_per_epoch * config.epochs
        self.optimizer = AdamW(decay_groups(self.model, config.weight_decay), lr=config.lr)
        self.schedule = WarmupCosine(
            self.optimizer,
            warmup=int(round(config.warmup_epochs * self.steps_per_epoch)),
            total=total,
            base_lr=config.lr,
            min_lr=config.min_lr,
        )
        self.snapshot = StepSnapshot(self.model, self.optimizer)
        self.train_tf = D.TrainTransform(padding=config.crop_padding, flip=config.flip, normalization=config.normalization)
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
        self._watch_compilation = False        # set by fit() under the jit backend
        self._announcer: threading.Timer | None = None

        self.out.mkdir(parents=True, exist_ok=True)
        for stale in remove_stale_temporaries(self.out):
            log(f"removed {stale}, left by an interrupted checkpoint write")

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
        """Continue from `path` (default OUT/last.npz): weights, optimiser, schedule position, data position,
        the epoch's running sums and the history.  The Trainer's config may differ only in its length."""
        path = Path(path) if path else self.out / "last.npz"
        st = load_training_state(path)
        if st["model_name"] != self.cfg.model:
            raise ValueError(f"{path} was trained as {st['model_name']!r}, not {self.cfg.model!r}")
        if st.get("train_images", len(self.train_x)) != len(self.train_x):
            raise ValueError(f"{path} was trained on {st['train_images']} images, but {self.data.source} gives "
                             f"{len(self.train_x)}: pass the --data-dir and --train-limit of that run")
        epoch, batch = st["epoch"], st["batch"]
        if batch > self.steps_per_epoch:
            raise TrainCheckpointError(path, f"is at batch {batch} of an epoch of {self.steps_per_epoch} batches")
        if self.cfg.epochs < epoch + (batch > 0):
            raise ValueError(f"{path} has already trained {epoch + (batch > 0)} epoch(s); --epochs must be at "
                             f"least that, got {self.cfg.epochs}")
        try:
            self.model.load_state_dict(st["model"])
            self.optimizer.load_state_dict(st["optimizer"])
        except (StateDictError, ValueError, KeyError, TypeError) as exc:
            raise TrainCheckpointError(path, f"does not fit this {self.cfg.model} run: {exc}") from None
        self.schedule.step(st["schedule"]["t"])       # the position; the shape comes from this config
        self.epoch, self.batch = epoch, batch
        self.sums = {**_new_sums(), **st.get("epoch_sums", {})}
        self.history = list(st["history"])
        self.best_acc = float(st["best_acc"])
        self.skipped_total = st["skipped_total"]
        self.log(f"resumed from {path} at epoch {self.epoch + 1}, batch {self.batch}")

    # ------------------------------------------------------------------ steps
    def train_step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, float, bool]:
        """One guarded step.  Returns (loss, batch accuracy, skipped).

        A skipped step (non-finite loss, gradient norm or result) leaves parameters, optimiser
        state and BN buffers exactly as they were (`self.snapshot`, taken first).  NumPy's overflow
        warnings are silenced here: the guard detects the same events and counts them.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._guarded_update(xb, yb)

    def _guarded_update(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, float, bool]:
        self.snapshot.take()
        logits = self.model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=self.cfg.label_smoothing)
        loss_value = float(loss.item())
        self.optimizer.zero_grad()
        labels = yb if yb.ndim == 1 else yb.argmax(axis=1)
        acc = accuracy(logits.data, labels)
        if not math.isfinite(loss_value):
            self.snapshot.restore()
            return loss_value, acc, True
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        norm = clip_grad_norm_(params, self.cfg.clip_grad if self.cfg.clip_grad else float("inf"))
        if not math.isfinite(float(norm)):
            self.optimizer.zero_grad()
            self.snapshot.restore()
            return loss_value, acc, True
        self.optimizer.step()
        if not self.snapshot.result_is_finite():
            self.optimizer.zero_grad()
            self.snapshot.restore()
            return loss_value, acc, True
        return loss_value, acc, False

    def mixup_active(self, epoch: int) -> bool:
        return self.mixup is not None and epoch < self.cfg.epochs - self.cfg.mixup_off_epochs

    # ------------------------------------------------------------------- loop
    def fit(self) -> list[dict]:
        cfg = self.cfg
        self.log(f"model {cfg.model}: {self.model.num_parameters():,} parameters; "
                 f"{len(self.train_x)} train / {len(self.data.val[0])} val images; "
                 f"{self.steps_per_epoch} steps x {cfg.epochs} epochs; output {self.out}")
        self._watch_compilation = kernels.backend() == "jit"
        try:
            while self.epoch < cfg.epochs:
                self._run_epoch()
        except KeyboardInterrupt:
            path = self.save()
            self.log(f"\ninterrupted: state saved to {path}; continue with: "
                     f"minisnn train --out {shlex.quote(str(self.out))} --resume")
            raise
        training_curves(self.history, path=self.out / "curves.png")
        return self.history

    def _run_epoch(self) -> None:
        epoch = self.epoch
        self._train_steps(epoch)
        record = self._epoch_record(epoch, self.sums)
        with interrupts_deferred():
            self._persist(record)

    def _train_steps(self, epoch: int) -> None:
        """The epoch's optimisation steps from batch `self.batch` on, added to `self.sums`.

        A step is all or nothing: an exception inside it (Ctrl-C included) restores the snapshot
        and the counters, so `self.state()` is always the state after a whole step.
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
        try:
            for xb, yb in batches:
                self._guarded_step(xb, yb)
                if bar is not None:
                    self._show_progress(bar)
        finally:
            if bar is not None:
                bar.close()

    def _guarded_step(self, xb: np.ndarray, yb: np.ndarray) -> None:
        """`train_step`, the schedule, the counters and the sums, undone together if anything interrupts them."""
        compiled_before = self._compilation_start()
        batch, sums, t = self.batch, dict(self.sums), self.schedule.t
        self.snapshot.taken = False
        t0 = time.perf_counter()
        try:
            loss, acc, skipped = self.train_step(xb, yb)   # runs at lr_at(global step)
            seconds = time.perf_counter() - t0
            self.schedule.step()
            self.batch += 1
            if skipped:
                self.sums["skipped"] += 1
            else:
                self.sums["loss"] += loss
                self.sums["acc"] += acc
                self.sums["n"] += 1
            if compiled_before is not None and self._compilation_end(compiled_before, seconds):
                self.sums["compile_seconds"] += seconds
            else:
                self.sums["seconds"] += seconds
                self.sums["timed"] += 1
        except BaseException:
            self._stop_announcer()
            with interrupts_deferred():
                self.snapshot.restore()
                self.batch, self.sums = batch, sums
                self.schedule.step(t)
            raise

    def _compilation_start(self) -> int | None:
        """Before the first step of `fit`: the count of compilations so far, and, when some kernels are
        cold, a timer that announces the compilation if the step is still compiling ANNOUNCE_AFTER s
        later (a cold kernel the model never calls must not make a run announce a compilation)."""
        if not self._watch_compilation:
            return None
        self._watch_compilation = False
        before = _compile_cache().compiled_in_this_process()
        if _compile_cache().cold_kernels():
            self._announcer = threading.Timer(ANNOUNCE_AFTER, self._announce_compilation, args=(before,))
            self._announcer.daemon = True
            self._announcer.start()
        return before

    def _announce_compilation(self, before: int) -> None:
        if _compile_cache().compiled_in_this_process() > before:
            self.log(COMPILING)

    def _stop_announcer(self) -> None:
        if self._announcer is not None:
            self._announcer.cancel()
            self._announcer = None

    def _compilation_end(self, before: int, seconds: float) -> bool:
        """After that step: report what it compiled; True if it compiled anything."""
        self._stop_announcer()
        compiled = _compile_cache().compiled_in_this_process() - before
        if compiled:
            self.log(f"compiled {compiled} kernels in {seconds:.0f} s")
        return compiled > 0

    def _images_per_second(self, sums: dict) -> float:
        """Images/s over the timed steps (a step that compiled kernels is left out); NaN without any."""
        return sums["timed"] * self.cfg.batch_size / sums["seconds"] if sums["timed"] else float("nan")

    def _show_progress(self, bar) -> None:
        sums = self.sums
        rate = self._images_per_second(sums)
        bar.set_postfix(loss=f"{sums['loss'] / max(sums['n'], 1):.3f}",
                        acc=f"{sums['acc'] / max(sums['n'], 1):.3f}",
                        img_s=f"{rate:.0f}" if math.isfinite(rate) else "-",
                        lr=f"{self.optimizer.param_groups[0]['lr']:.2e}", refresh=False)
        bar.update(1)

    def _epoch_record(self, epoch: int, sums: dict) -> dict:
        """Validate, then the epoch's line of metrics.jsonl (also logged)."""
        cfg = self.cfg
        vx, vy = self.data.val
        val = evaluate(self.model, vx, vy, self.eval_tf, cfg.eval_batch_size, self.progress, "validate") \
            if len(vx) else {"loss": float("nan"), "acc": float("nan")}
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
            "images_per_second": self._images_per_second(sums),
        }
        rate = record["images_per_second"]
        if n:
            train = f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}"
        else:
            train = f"train: all {sums['skipped']} steps skipped (non-finite)"
        self.log(f"epoch {epoch + 1}: {train} | val loss {val['loss']:.4f} acc {val['acc']:.4f} | "
                 + (f"{rate:.1f} img/s" if math.isfinite(rate) else "img/s n/a (the only step compiled kernels)")
                 + (f" (+{sums['compile_seconds']:.0f} s compiling)" if sums["compile_seconds"] else "")
                 + (f" | skipped {sums['skipped']} non-finite steps" if sums["skipped"] and n else ""))
        return record

    def _persist(self, record: dict) -> None:
        """Close the epoch: add `record` to the history and metrics.jsonl, then write best.npz and last.npz."""
        self.skipped_total += record["skipped_steps"]
        self.history.append(record)
        tmp = self.out / f"metrics.jsonl.tmp-{os.getpid()}"
        tmp.write_text("".join(_json_line(r) for r in self.history))
        os.replace(tmp, self.out / "metrics.jsonl")
        self.epoch += 1
        self.batch = 0
        self.sums = _new_sums()
        if record["val_acc"] > self.best_acc:
            self.best_acc = record["val_acc"]
            self.save("best.npz")
        self.save("last.npz")
