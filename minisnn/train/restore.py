"""Rebuild a trained model from a training checkpoint, and evaluate it on the test set."""
from __future__ import annotations

import os

from .. import data as D
from .. import models
from .state import load_trainer_checkpoint
from .trainer import evaluate


def load_trained(path: str | os.PathLike):
    """Return (model in eval mode, checkpoint state) for a `last.npz`/`best.npz` written by the trainer
    or a weights-only file written by `export_weights`."""
    st = load_trainer_checkpoint(path)
    overrides = dict(st["config"].get("model_overrides") or {})
    overrides["num_classes"] = len(st["classes"])
    model = models.create(st["model_name"], **overrides)
    model.load_state_dict(st["model"])
    model.eval()
    return model, st


def evaluate_checkpoint(path, data_dir=None, split: str = "test", batch_size: int = 256, progress: bool = True) -> dict:
    """Accuracy of a trained checkpoint on CIFAR-10's official test batch (or the validation split)."""
    model, st = load_trained(path)
    cfg = st["config"]
    ds = D.get_datasets(data_dir=data_dir or cfg.get("data_dir"), val_size=cfg.get("val_size", 5000),
                        seed=cfg.get("seed", 0))
    if split == "test":
        if ds.test is None:
            raise ValueError(f"the {ds.source} has no test split; point --data-dir at the full CIFAR-10 batches")
        x, y = ds.test
    elif split == "val":
        x, y = ds.val
    else:
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    result = evaluate(model, x, y, D.EvalTransform(normalization=st["normalization"]), batch_size, progress, split)
    result.update(split=split, images=len(y), model=st["model_name"], epoch=int(st["epoch"]), data=ds.source)
    return result
