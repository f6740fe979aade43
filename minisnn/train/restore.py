"""Rebuild a trained model from a training checkpoint, and evaluate it on the test set."""
from __future__ import annotations

import os

from .. import data as D
from .. import models
from ..nn.module import StateDictError
from .state import TrainCheckpointError, load_trainer_checkpoint
from .trainer import evaluate

# How `evaluate_checkpoint` found its data (Datasets.origin), for the line that reports it.
DATA_ORIGINS = {
    "--data-dir": "given by --data-dir",
    "MINISNN_DATA_DIR": "found through $MINISNN_DATA_DIR",
    "cache": "found in the cache folder",
    "fallback": "the folder recorded in the checkpoint, since --data-dir, $MINISNN_DATA_DIR and the cache hold "
                "no CIFAR-10",
    "sample": "no CIFAR-10 in --data-dir, $MINISNN_DATA_DIR, the cache or the folder recorded in the checkpoint",
}


def build_trained(state: dict, path):
    """The model named in a trainer checkpoint's `state`, with its --set overrides and weights (eval mode).

    A model that cannot be built or weights that do not fit raise TrainCheckpointError naming `path`.
    """
    overrides = dict(state["config"].get("model_overrides") or {})
    overrides["num_classes"] = len(state["classes"])
    try:
        model = models.create(state["model_name"], **overrides)
    except ValueError as exc:
        raise TrainCheckpointError(path, f"names a model that cannot be built: {exc}") from None
    try:
        model.load_state_dict(state["model"])
    except StateDictError as exc:
        raise TrainCheckpointError(path, f"holds weights that do not fit {state['model_name']}: {exc}") from None
    model.eval()
    return model


def load_trained(path: str | os.PathLike | bytes):
    """Return (model in eval mode, checkpoint state) for a `last.npz`/`best.npz` written by the trainer
    or a weights-only file written by `export_weights`."""
    state = load_trainer_checkpoint(path)
    return build_trained(state, path), state


def evaluate_checkpoint(path, data_dir=None, split: str = "test", batch_size: int = 256, progress: bool = True,
                        flip: bool = False) -> dict:
    """Accuracy of a trained checkpoint on CIFAR-10's official test batch (or the validation split).

    flip=True averages the logits of each image and its mirror image (test-time flip, see `evaluate`).

    The data is looked for as everywhere (data_dir, $MINISNN_DATA_DIR, the cache); the folder the
    checkpoint recorded is only a last resort.  The result's "data" names the data, "found" says how.
    """
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    model, st = load_trained(path)
    cfg = st["config"]
    ds = D.get_datasets(data_dir=data_dir, val_size=cfg.get("val_size", 5000), seed=cfg.get("seed", 0),
                        fallback_dir=cfg.get("data_dir"), announce=lambda _: None)
    if split == "test":
        if ds.test is None:
            raise ValueError(f"the {ds.source} has no test split; point --data-dir at the full CIFAR-10 batches "
                             "(or use --split val)")
        x, y = ds.test
    else:
        x, y = ds.val
    result = evaluate(model, x, y, D.EvalTransform(normalization=st["normalization"]), batch_size, progress, split,
                      flip=flip)
    result.update(split=split, images=len(y), model=st["model_name"], epoch=int(st["epoch"]), data=ds.source,
                  found=DATA_ORIGINS.get(ds.origin, ds.origin))
    return result
