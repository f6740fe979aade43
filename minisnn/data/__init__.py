"""CIFAR data: locate or download it, split it, augment it, and iterate over batches.

    from minisnn import data as D
    ds = D.get_datasets(data_dir=None, val_size=5000, seed=0)   # full CIFAR-10, or the embedded sample
    it = D.BatchIterator(*ds.train, 128, shuffle=True, seed=0, epoch=0, transform=D.RandomCropFlip(),
                         mixup=D.Mixup(mixup_alpha=0.2), drop_last=True)
    for images, targets in it: ...                              # float32 [B, 3, 32, 32], targets

Images are uint8 [N, 3, 32, 32] (CHW), labels int64 [N].  The official test batch is kept
for the final evaluation only.  The validation split is carved out of the training batches.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .augment import (NORMALIZATIONS, EvalTransform, Normalize, RandomCropFlip, TrainTransform, hflip,
                      normalization_stats, normalize, pad_batch, random_crop, random_flip)
from .cifar import CorruptBatchError, load_cifar10, load_cifar100, read_batch, verify_md5
from .download import ARCHIVES, ChecksumError, DownloadError, UnsafeArchiveError, download_dataset, fetch, safe_extract
from .iterator import BatchIterator
from .locate import ENV_VAR, DataNotFoundError, default_cache_dir, find_dataset_dir, resolve_root
from .mixup import Mixup, cutmix_box, mixup_active, one_hot
from .sample import load_sample, sample_path
from .split import stratified_split, stratified_subset

logger = logging.getLogger(__name__)

__all__ = [
    "Datasets", "get_datasets", "BatchIterator",
    "Normalize", "RandomCropFlip", "TrainTransform", "EvalTransform", "NORMALIZATIONS", "normalization_stats",
    "normalize", "hflip", "random_flip", "random_crop", "pad_batch",
    "Mixup", "mixup_active", "one_hot", "cutmix_box",
    "load_cifar10", "load_cifar100", "read_batch", "verify_md5", "CorruptBatchError",
    "download_dataset", "fetch", "safe_extract", "ARCHIVES", "DownloadError", "ChecksumError", "UnsafeArchiveError",
    "find_dataset_dir", "resolve_root", "default_cache_dir", "DataNotFoundError", "ENV_VAR",
    "load_sample", "sample_path", "stratified_split", "stratified_subset",
]


@dataclass(frozen=True)
class Datasets:
    """train / val / test as (images uint8 [N, 3, 32, 32], labels int64 [N]); test is None for the
    embedded sample.  `source` describes where the data came from, `classes` names the labels."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None
    source: str
    classes: list[str]
    origin: str = ""        # "--data-dir", "MINISNN_DATA_DIR", "cache", "fallback" or "sample": what led to it

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def get_datasets(data_dir=None, val_size: int = 5000, seed: int = 0, allow_sample: bool = True, *,
                 dataset: str = "cifar10", verify: bool = False, announce=None, fallback_dir=None) -> Datasets:
    """Load CIFAR-10 (or 'cifar100') and carve a stratified, seeded validation split from its training set.

    The data is looked for in data_dir, else $MINISNN_DATA_DIR, else the cache folder (see locate.py).
    If neither data_dir nor $MINISNN_DATA_DIR is set and the cache holds nothing, `fallback_dir`
    is tried when given (e.g. the folder a checkpoint recorded), then the embedded CIFAR-10
    sample is used (allow_sample=True, CIFAR-10 only).  Those last two choices are announced
    with `announce(message)`, a logging warning by default.  The sample has its own fixed
    2,000 / 500 split (val_size is ignored) and no test split.  verify=True checks the CIFAR-10
    batch md5s.  The result's `origin` says which of these led to the data.
    """
    announce = announce or logger.warning
    try:
        folder = find_dataset_dir(data_dir, dataset)
        origin = resolve_root(data_dir)[1]
    except DataNotFoundError as exc:
        if exc.origin != "cache":
            raise
        folder = _fallback(fallback_dir, dataset)
        if folder is None:
            if not allow_sample or dataset != "cifar10":
                raise
            return _embedded_sample(str(exc), announce)
        origin = "fallback"
        announce(f"{str(exc).split(';')[0]}: using {folder} (recorded with the run; pass --data-dir DIR to choose)")
    if dataset == "cifar10":
        train_x, train_y, test_x, test_y, classes = load_cifar10(folder, verify=verify)
        name = "CIFAR-10"
    else:
        train_x, train_y, test_x, test_y, classes = load_cifar100(folder)
        name = "CIFAR-100"
    train_idx, val_idx = stratified_split(train_y, val_size, seed)
    source = (f"{name} from {folder} ({len(train_idx)} train / {len(val_idx)} val from the training batches, "
              f"{len(test_y)} test)")
    return Datasets(train=(train_x[train_idx], train_y[train_idx]), val=(train_x[val_idx], train_y[val_idx]),
                    test=(test_x, test_y), source=source, classes=classes, origin=origin)


def _fallback(folder, dataset: str):
    """The batch folder under `folder` (a last resort: not set by the user), or None if it lacks the data."""
    if folder is None or str(folder) == "":
        return None
    try:
        return find_dataset_dir(folder, dataset)
    except DataNotFoundError:
        return None


def _embedded_sample(not_found: str, announce) -> Datasets:
    s = load_sample()
    n_train, n_val = len(s["train"][1]), len(s["val"][1])
    source = f"embedded CIFAR-10 sample ({n_train} train / {n_val} val images, no test split)"
    announce(f"{not_found.split(';')[0]}: using the {source}. For the full dataset run "
             f"`minisnn download cifar10` or pass --data-dir DIR.")
    return Datasets(train=s["train"], val=s["val"], test=None, source=source, classes=s["classes"], origin="sample")
