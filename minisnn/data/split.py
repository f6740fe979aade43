"""Seeded, stratified index selection (every class keeps its share).

    train_idx, val_idx = stratified_split(labels, val_size=5000, seed=0)
    idx = stratified_subset(labels, per_class=250, seed=0)

Both return sorted int64 index arrays, so the selected images keep their original order.
"""
from __future__ import annotations

import numpy as np


def _shuffled_by_class(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices grouped by class (classes ascending), in random order inside each class; and each one's
    rank within its class."""
    order = np.lexsort((rng.random(len(labels)), labels))
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(labels)) - starts
    return order, rank


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {list(labels.shape)}")
    return labels


def class_quotas(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to `counts` (largest-remainder rounding, ties to the
    lower class id); sums to `total` exactly and never exceeds a class's count."""
    share = counts * (total / counts.sum())
    quota = np.floor(share).astype(np.int64)
    leftover = total - int(quota.sum())
    if leftover:
        remainder = share - quota
        order = np.lexsort((np.arange(len(counts)), -remainder))
        quota[order[:leftover]] += 1
    return np.minimum(quota, counts)


def stratified_split(labels, val_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, val) with `val_size` validation items spread over the classes in
    proportion to their frequency.  Deterministic for a given (labels, val_size, seed)."""
    labels = _check_labels(labels)
    if not isinstance(val_size, (int, np.integer)) or not 0 <= val_size <= len(labels):
        raise ValueError(f"val_size must be an integer in [0, {len(labels)}], got {val_size!r}")
    if val_size == 0:
        return np.arange(len(labels), dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, counts = np.unique(labels, return_counts=True)
    quota = class_quotas(counts, int(val_size))
    order, rank = _shuffled_by_class(labels, np.random.default_rng(seed))
    class_index = np.repeat(np.arange(len(counts)), counts)  # class position of each sorted item
    is_val = rank < quota[class_index]
    return np.sort(order[~is_val]), np.sort(order[is_val])


def stratified_subset(labels, per_class: int, seed: int = 0) -> np.ndarray:
    """`per_class` random indices of every class (sorted).  Raises if a class has fewer."""
    labels = _check_labels(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if per_class < 0 or (counts < per_class).any():
        raise ValueError(f"per_class must be in [0, {counts.min()}] (smallest class), got {per_class}")
    order, rank = _shuffled_by_class(labels, np.random.default_rng(seed))
    return np.sort(order[rank < per_class])
