"""The training loop: AdamW + warmup-cosine, clipping, NaN guards, atomic checkpoints, resume.

One optimisation step on a batch (x, y):

    snapshot parameters, optimiser state, BN buffers
    loss = CE(model(x), y; label smoothing)   # y: labels or mixup soft targets; the model starts
                                              # every neuron from rest, so no state leaks between batches
    loss.backward(); ‖g‖ = clip(g)            # global-norm clipping
    if loss or ‖g‖ is not finite: skip the step, restore the snapshot, count it
    else: optimizer.step(); if a parameter or buffer became non-finite: restore, skip, count

The loop itself (data, epochs, running sums, checkpoints, resume, metrics) is `loop.TrainingLoop`, which
the PyTorch engine's `TorchTrainer` shares; this class adds the model, the optimiser, the step, the
validation and the Numba compilation watch.  An epoch is its steps (`_train_steps`), then validation and
the metrics record (`_epoch_record`), then the files (`_persist`).  Files in the output folder: `last.npz` (full training state,
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
import math
import shlex
import threading

import numpy as np
from tqdm.auto import tqdm

from .. import functional as F
from .. import kernels, models
from ..autograd.grad_mode import no_grad
from ..data import hflip
from ..nn import init
from ..optim import AdamW, WarmupCosine, clip_grad_norm_, decay_groups
from .config import TrainConfig
from .guard import StepSnapshot
from .loop import TrainingLoop

COMPILING = "compiling Numba kernels for this machine (first run only, cached afterwards)…"
ANNOUNCE_AFTER = 1.0  # seconds into the first step: a step still compiling then is announced


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean()) if len(labels) else float("nan")


def evaluate(model, x: np.ndarray, y: np.ndarray, transform, batch_size: int = 256, progress: bool = False,
             desc: str = "eval", flip: bool = False) -> dict:
    """Loss and top-1 accuracy of `model` (eval mode) on uint8 images `x` [N, 3, H, W] and labels `y`.

    flip=True is test-time flip: logits = (model(image) + model(mirror image)) / 2, the mirror taken
    along the width, as the training's random flips take it.
    """
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
            if flip:
                logits = (logits + model(hflip(xb))) * 0.5
            total_loss += float(F.cross_entropy(logits, yb, reduction="sum").item())
            correct += int((logits.data.argmax(axis=1) == yb).sum())
            n += len(yb)
    return {"loss": total_loss / max(n, 1), "acc": correct / max(n, 1)}


def _compile_cache():
    """`minisnn.kernels.compile_cache`, imported when first needed: it loads Numba (jit backend only)."""
    return importlib.import_module("minisnn.kernels.compile_cache")


class Trainer(TrainingLoop):
    """Trains `config.model` on CIFAR-10 (or the embedded sample) as described in the module docstring."""

    def __init__(self, config: TrainConfig, progress: bool = True, log=print):
        super().__init__(config, progress=progress, log=log)
        init.manual_seed(config.seed)
        self.model = models.create(config.model, num_classes=self.num_classes, **config.model_overrides)
        self.model_config = dict(getattr(self.model, "config", {}))
        self.optimizer = AdamW(decay_groups(self.model, config.weight_decay), lr=config.lr)
        self.schedule = WarmupCosine(self.optimizer, **self.schedule_arguments())
        self.snapshot = StepSnapshot(self.model, self.optimizer)
        self._watch_compilation = False        # set by fit() under the jit backend
        self._compiled_before: int | None = None
        self._announcer: threading.Timer | None = None
        self._open_output()

    # ------------------------------------------------------------- checkpoints
    def _model_state(self) -> dict:
        return dict(self.model.state_dict())

    def _optimizer_state(self) -> dict:
        return self.optimizer.state_dict()

    def _load_model_and_optimizer(self, model_state: dict, optimizer_state: dict) -> None:
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)

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

    def _set_training_mode(self) -> None:
        self.model.train()

    def _validate(self, x: np.ndarray, y: np.ndarray) -> dict:
        return evaluate(self.model, x, y, self.eval_tf, self.cfg.eval_batch_size, self.progress, "validate")

    def _num_parameters(self) -> int:
        return self.model.num_parameters()

    def _how_to_resume(self) -> str:
        return f": minisnn train --out {shlex.quote(str(self.out))} --resume"

    # ---------------------------------------------------- kernel compilation
    def fit(self) -> list[dict]:
        self._watch_compilation = kernels.backend() == "jit"
        return super().fit()

    def _guarded_step(self, xb: np.ndarray, yb: np.ndarray) -> None:
        """The loop's guarded step, watching the first step of `fit` for Numba compilations."""
        self._compiled_before = self._compilation_start()
        try:
            super()._guarded_step(xb, yb)
        except BaseException:
            self._stop_announcer()
            raise

    def _step_compiled(self, seconds: float) -> bool:
        """True when the step just taken compiled kernels (reported, and its time kept out of the images/s)."""
        before, self._compiled_before = self._compiled_before, None
        return before is not None and self._compilation_end(before, seconds)

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
