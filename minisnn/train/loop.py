"""The training recipe without its arithmetic: data, epochs, running sums, checkpoints, resume, metrics.

minisnn's `Trainer` (NumPy/Numba, trainer.py) and `minisnn.torch.TorchTrainer` (PyTorch) train the same
recipe into the same files.  `TrainingLoop` is the part of it that does not depend on who computes:

    __init__        the data (`get_datasets`, --train-limit), steps per epoch, transforms, mixup, counters
    fit             the epochs until cfg.epochs, or the steps that fit cfg.time_budget (`budget.BudgetPlanner`,
                    whose plan stretches the schedule); on Ctrl-C, last.npz and how to resume
    an epoch        _train_steps (guarded steps from self.batch on), _epoch_record (validate, log), _persist
    state, save     the checkpoint (its keys and layouts are the file format both engines read)
    resume          the checks every resumed run needs; then the engine loads its weights and optimiser

An engine subclass calls `super().__init__`, builds its model, `optimizer` (with torch-style
`param_groups`), `schedule` (a `WarmupCosine`: `t`, `step`, `state_dict`; `schedule_arguments()` gives
its shape), `snapshot` (`take`/`restore`/`taken`/`result_is_finite`, see guard.py) and `model_config`,
then calls `_open_output()`.  It supplies

    train_step(xb, yb) -> (loss, accuracy, skipped)     one guarded optimisation step on a batch
    _validate(x, y) -> {"loss", "acc"}                   the validation split, in eval mode
    _model_state(), _optimizer_state()                   minisnn's checkpoint layouts (NumPy arrays)
    _load_model_and_optimizer(model, optimizer)          their inverse, for resume
    _set_training_mode(), _num_parameters()

and may change `_local_batch` (the part of a global batch this process trains on), `_step_compiled`
(a step whose time is compilation, not training), `_engine_description` and `_how_to_resume`.
With `is_main=False` (a data-parallel rank other than 0) the loop logs nothing, shows no progress,
writes no files and keeps no history: it trains its steps and moves its counters.

Time: `wall` (a `budget.WallClock`) counts the run's wall clock over its processes (`metrics.jsonl`'s
`wall_minutes`, the time budget); steps are timed with `wall.clock`, which tests may replace by a fake clock.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import data as D
from ..nn.module import StateDictError
from ..viz import training_curves
from .budget import RunLength, WallClock
from .config import TrainConfig
from .guard import interrupts_deferred
from .state import (TRAIN_KIND, TrainCheckpointError, load_training_state, remove_stale_temporaries,
                    save_state)


def _silent(*_args, **_kwargs) -> None:
    pass


def new_sums() -> dict:
    """Running sums of an epoch: loss/acc over the `n` finite steps, `skipped` steps, and the seconds of the
    `timed` steps (all but a step that compiled kernels, whose time is `compile_seconds`)."""
    return {"loss": 0.0, "acc": 0.0, "n": 0, "skipped": 0, "seconds": 0.0, "timed": 0, "compile_seconds": 0.0}


def images_per_second(sums: dict, batch_size: int) -> float:
    """Images/s over the timed steps of `sums` (a step that compiled kernels is left out); NaN without any."""
    return sums["timed"] * batch_size / sums["seconds"] if sums["timed"] and sums["seconds"] > 0 else float("nan")


def metrics_line(record: dict) -> str:
    """One line of metrics.jsonl: NaN and infinities become null (strict JSON)."""
    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                       for k, v in record.items()}) + "\n"


class TrainingLoop(ABC):
    """The engine-independent half of a trainer of `config` (see the module docstring)."""

    def __init__(self, config: TrainConfig, progress: bool = True, log=print, is_main: bool = True):
        self.cfg = config.validate()
        self.is_main = is_main
        self.progress = progress and is_main
        self.log = log if is_main else _silent
        self.out = Path(config.out or Path("runs") / config.model)

        self.data = D.get_datasets(data_dir=config.data_dir, val_size=config.val_size, seed=config.seed,
                                   announce=self.log)
        self.log(f"data: {self.data.source}")
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
        self.train_tf = D.TrainTransform(padding=config.crop_padding, flip=config.flip,
                                         normalization=config.normalization)
        self.eval_tf = D.EvalTransform(normalization=config.normalization)
        self.mixup = None
        if config.mixup_alpha > 0 or config.cutmix_alpha > 0:
            self.mixup = D.Mixup(mixup_alpha=config.mixup_alpha, cutmix_alpha=config.cutmix_alpha,
                                 num_classes=self.num_classes)
        self.epoch = 0
        self.batch = 0
        self.sums = new_sums()
        self.history: list[dict] = []
        self.best_acc = -1.0
        self.skipped_total = 0
        self.wall = WallClock()
        self.length = RunLength(config, self.steps_per_epoch, len(self.data.val[0]), self.mixup is not None,
                                lambda: self.agreed_seconds(self.wall.elapsed()), log=self.log)
        self.budget = self.length.planner

    def schedule_arguments(self) -> dict:
        """The shape of the warmup-cosine schedule, per optimisation step: warmup, total, base_lr, min_lr."""
        cfg = self.cfg
        return {"warmup": int(round(cfg.warmup_epochs * self.steps_per_epoch)),
                "total": self.steps_per_epoch * cfg.epochs, "base_lr": cfg.lr, "min_lr": cfg.min_lr}

    def _open_output(self) -> None:
        """Create the output folder (main process) and delete the temporaries of checkpoint writes that died."""
        if not self.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in remove_stale_temporaries(self.out):
            self.log(f"removed {stale}, left by an interrupted checkpoint write")

    # ------------------------------------------------------------ the engine's
    @abstractmethod
    def train_step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, float, bool]:
        """One guarded step on transformed images `xb` [B, C, H, W] and labels [B] or soft targets [B, K] `yb`.
        Returns (loss, batch accuracy, skipped); a skipped step leaves the state exactly as it was."""

    @abstractmethod
    def _validate(self, x: np.ndarray, y: np.ndarray) -> dict:
        """{"loss", "acc"} of the model in eval mode on uint8 images `x` and labels `y`."""

    @abstractmethod
    def _model_state(self) -> dict:
        """The model's state_dict as NumPy arrays (minisnn's names and layouts)."""

    @abstractmethod
    def _optimizer_state(self) -> dict:
        """The optimiser's state in minisnn's AdamW layout (`state`, `param_groups`)."""

    @abstractmethod
    def _load_model_and_optimizer(self, model_state: dict, optimizer_state: dict) -> None:
        """Load what `_model_state` and `_optimizer_state` returned (either engine's); ValueError, KeyError,
        TypeError or StateDictError when it does not fit this model."""

    @abstractmethod
    def _set_training_mode(self) -> None:
        """Put the model in training mode (BatchNorm batch statistics) before an epoch's steps."""

    @abstractmethod
    def _num_parameters(self) -> int:
        """The number of trained parameters (for the line `fit` starts with)."""

    def _local_batch(self, xb, yb):
        """The part of the global batch (xb, yb) this process trains on: all of it."""
        return xb, yb

    def agreed_seconds(self, seconds: float) -> float:
        """A time that every process of the run agrees on: the slowest process's.  The time budget's planner
        sees only such times, so all processes plan the same steps.  One process: `seconds` itself."""
        return seconds

    def _step_compiled(self, seconds: float) -> bool:
        """True when the step that just took `seconds` spent them compiling (its time goes to compile_seconds)."""
        return False

    def _engine_description(self) -> str:
        """Added to the line `fit` starts with, after the steps and epochs."""
        return ""

    def _how_to_resume(self) -> str:
        """What follows "continue with" in the line logged on Ctrl-C."""
        return " --resume"

    # ------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        """The whole training state: the checkpoint both engines write and resume (NumPy arrays, plain values)."""
        return {
            "kind": TRAIN_KIND,
            "config": self.cfg.to_dict(),
            "model_name": self.cfg.model,
            "model_config": self.model_config,
            "model": self._model_state(),
            "optimizer": self._optimizer_state(),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "epoch_sums": dict(self.sums),
            "history": self.history,
            "best_acc": self.best_acc,
            "skipped_total": self.skipped_total,
            "wall_seconds": self.wall.elapsed(),
            **({"budget": self.budget.state_dict()} if self.budget is not None else {}),
            "classes": list(self.data.classes),
            "normalization": self.cfg.normalization,
            "train_images": len(self.train_x),
        }

    def save(self, name: str = "last.npz") -> Path:
        return save_state(self.state(), self.out / name)

    def resume(self, path: str | os.PathLike | None = None) -> None:
        """Continue from `path` (default OUT/last.npz), written by either engine: weights, optimiser, schedule
        position, data position, the epoch's running sums, the history, the wall clock used and a time budget's
        plan.  The config may differ from the run's only in its length (epochs, or time_budget: the rest of the
        run is then planned again)."""
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
        if self.budget is None and self.cfg.epochs < epoch + (batch > 0):
            raise ValueError(f"{path} has already trained {epoch + (batch > 0)} epoch(s); --epochs must be at "
                             f"least that, got {self.cfg.epochs}")
        try:
            self._load_model_and_optimizer(st["model"], st["optimizer"])
        except (StateDictError, ValueError, KeyError, TypeError) as exc:
            raise TrainCheckpointError(path, f"does not fit this {self.cfg.model} run: {exc}") from None
        self.schedule.step(st["schedule"]["t"])       # the position; the shape comes from this config
        self.epoch, self.batch = epoch, batch
        self.sums = {**new_sums(), **st.get("epoch_sums", {})}
        self.history = list(st["history"])
        self.best_acc = float(st["best_acc"])
        self.skipped_total = st["skipped_total"]
        self._resume_time(st, path)
        self.log(f"resumed from {path} at epoch {self.epoch + 1}, batch {self.batch}")

    def _resume_time(self, st: dict, path: Path) -> None:
        """The wall clock the run has used and, with a time budget, its plan and stretched schedule."""
        used = st.get("wall_seconds", sum(h.get("train_seconds") or 0.0 for h in self.history))
        if isinstance(used, bool) or not isinstance(used, (int, float)) or not used >= 0:
            raise TrainCheckpointError(path, f"entry 'wall_seconds' should be a number >= 0, not {used!r}")
        self.wall.used = float(used)
        if self.budget is None:
            return
        self.length.restore(st, self.schedule, path)
        self.log(f"time budget {self.cfg.time_budget:g} min, {self.wall.used / 60:.2f} min used: "
                 + (f"continuing the plan of {self.budget.total:,} steps" if self.budget.plan_ready()
                    else "the rest of the run is planned in its first steps"))

    # ------------------------------------------------------------------- loop
    def fit(self) -> list[dict]:
        """Train until cfg.epochs, or for cfg.time_budget minutes; returns the history (the lines of metrics.jsonl)."""
        cfg = self.cfg
        self.log(f"model {cfg.model}: {self._num_parameters():,} parameters; "
                 f"{len(self.train_x)} train / {len(self.data.val[0])} val images; "
                 f"{self.length.describe()}{self._engine_description()}; output {self.out}")
        self.wall.start()
        try:
            while self.length.unfinished(self.epoch, self.batch, self.schedule.t):
                self._run_epoch()
        except KeyboardInterrupt:
            if self.is_main:
                path = self.save()
                self.log(f"\ninterrupted: state saved to {path}; continue with{self._how_to_resume()}")
            raise
        if self.is_main:
            training_curves(self.history, path=self.out / "curves.png")
        if self.budget is not None:
            self.log(self.budget.report(self.schedule.t, self.history))
        return self.history

    def _run_epoch(self) -> None:
        """The epoch's steps, then validation (main process), then the files.  The counters move only after the
        validation: a run interrupted during it resumes at the end of the epoch's steps and validates again."""
        epoch = self.epoch
        self._train_steps(epoch)
        start = self.wall.clock()
        record = self._epoch_record(epoch, self.sums) if self.is_main else None
        with interrupts_deferred():
            self._persist(record)
            if self.budget is not None and self.budget.after_epoch(self.schedule.t, self.epoch,
                                                                   self.agreed_seconds(self.wall.clock() - start)):
                self.schedule.stretch(**self.budget.stretch_arguments(self.schedule.t))

    def _train_steps(self, epoch: int) -> None:
        """The epoch's optimisation steps from batch `self.batch` to `length.epoch_stop(epoch)`, added to
        `self.sums`, in runs of steps with mixup on or off (`length.mixup_on`).  Both are read again after
        every step: a time budget's plan may move the epoch's end or the cooldown while the epoch runs."""
        self._set_training_mode()
        bar = None
        if self.progress:
            bar = tqdm(total=self.length.epoch_stop(epoch), initial=self.batch, desc=self.length.epoch_label(epoch),
                       unit="batch", dynamic_ncols=True)
        try:
            while self.batch < self.length.epoch_stop(epoch):
                self._train_run(epoch, bar)
        finally:
            if bar is not None:
                bar.close()

    def _train_run(self, epoch: int, bar) -> None:
        """Steps from `self.batch` on while mixup stays as it is now and the epoch's stop is not reached."""
        cfg = self.cfg
        mixup_on = self.length.mixup_on(self.schedule.t)
        batches = D.BatchIterator(
            self.train_x, self.train_y, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch,
            transform=self.train_tf, mixup=self.mixup if mixup_on else None, drop_last=True, start_batch=self.batch,
        )
        with contextlib.closing(iter(batches)) as steps:
            for xb, yb in steps:
                self._guarded_step(*self._local_batch(xb, yb))
                if bar is not None:
                    if bar.total != self.length.epoch_stop(epoch):
                        bar.total = self.length.epoch_stop(epoch)
                        bar.set_description(self.length.epoch_label(epoch), refresh=False)
                    self._show_progress(bar)
                if self.batch >= self.length.epoch_stop(epoch) or self.length.mixup_on(self.schedule.t) != mixup_on:
                    return

    def _guarded_step(self, xb, yb) -> None:
        """`train_step`, the schedule, the counters and the sums, undone together if anything interrupts them;
        then, with a time budget, the planner sees the step's time (and may stretch the schedule).

        A step is all or nothing: an exception inside it (Ctrl-C included) restores the snapshot and the
        counters, so `self.state()` is always the state after a whole step.
        """
        batch, sums, t = self.batch, dict(self.sums), self.schedule.t
        self.snapshot.taken = False
        clock = self.wall.clock
        t0 = clock()
        try:
            loss, acc, skipped = self.train_step(xb, yb)   # runs at lr_at(global step)
            seconds = clock() - t0
            self.schedule.step()
            self.batch += 1
            if skipped:
                self.sums["skipped"] += 1
            else:
                self.sums["loss"] += loss
                self.sums["acc"] += acc
                self.sums["n"] += 1
            compiled = self._step_compiled(seconds)
            if compiled:
                self.sums["compile_seconds"] += seconds
            else:
                self.sums["seconds"] += seconds
                self.sums["timed"] += 1
        except BaseException:
            with interrupts_deferred():
                self.snapshot.restore()
                self.batch, self.sums = batch, sums
                self.schedule.step(t)
            raise
        if self.budget is not None:
            with interrupts_deferred():
                if self.budget.after_step(self.schedule.t, self.epoch, self.agreed_seconds(seconds),
                                          self.agreed_seconds(float(compiled)) > 0):
                    self.schedule.stretch(**self.budget.stretch_arguments(self.schedule.t))

    def _show_progress(self, bar) -> None:
        sums = self.sums
        rate = images_per_second(sums, self.cfg.batch_size)
        bar.set_postfix(loss=f"{sums['loss'] / max(sums['n'], 1):.3f}",
                        acc=f"{sums['acc'] / max(sums['n'], 1):.3f}",
                        img_s=f"{rate:.0f}" if math.isfinite(rate) else "-",
                        lr=f"{self.optimizer.param_groups[0]['lr']:.2e}", refresh=False)
        bar.update(1)

    def _epoch_record(self, epoch: int, sums: dict) -> dict:
        """Validate, then the epoch's line of metrics.jsonl (also logged)."""
        vx, vy = self.data.val
        val = self._validate(vx, vy) if len(vx) else {"loss": float("nan"), "acc": float("nan")}
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
            "images_per_second": images_per_second(sums, self.cfg.batch_size),
            "steps": self.schedule.t,
            "wall_minutes": self.wall.elapsed() / 60.0,
        }
        rate = record["images_per_second"]
        if n:
            train = f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}"
        else:
            train = f"train: all {sums['skipped']} steps skipped (non-finite)"
        self.log(f"epoch {epoch + 1}: {train} | val loss {val['loss']:.4f} acc {val['acc']:.4f} | "
                 + (f"{rate:.1f} img/s" if math.isfinite(rate)
                    else "img/s n/a" + (" (the only step compiled kernels)" if sums["compile_seconds"] else ""))
                 + (f" (+{sums['compile_seconds']:.0f} s compiling)" if sums["compile_seconds"] else "")
                 + (f" | skipped {sums['skipped']} non-finite steps" if sums["skipped"] and n else ""))
        return record

    def _persist(self, record: dict | None) -> None:
        """Close the epoch: count its skipped steps and move the counters to the next epoch; the main process
        (`record` not None) adds `record` to the history and metrics.jsonl, then writes best.npz and last.npz."""
        self.skipped_total += self.sums["skipped"]
        self.epoch += 1
        self.batch = 0
        self.sums = new_sums()
        if record is None:
            return
        self.history.append(record)
        tmp = self.out / f"metrics.jsonl.tmp-{os.getpid()}"
        tmp.write_text("".join(metrics_line(r) for r in self.history))
        os.replace(tmp, self.out / "metrics.jsonl")
        if record["val_acc"] > self.best_acc:
            self.best_acc = record["val_acc"]
            self.save("best.npz")
        self.save("last.npz")
