"""Small CIFAR-format datasets written to disk, in the exact layout of the official python batches."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def batch_dict(x: np.ndarray, y: np.ndarray, title: str, label_key: bytes = b"labels", extra=None) -> dict:
    d = {
        b"batch_label": title.encode(),
        label_key: [int(v) for v in y],
        b"data": x.reshape(len(x), 3072),
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(x))],
    }
    d.update(extra or {})
    return d


def write_cifar10(root: Path, per_batch: int = 40, test: int = 30, seed: int = 0) -> dict:
    """Write `root/cifar-10-batches-py/`; returns the arrays that were written."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        y = np.arange(per_batch) % 10
        rng.shuffle(y)
        _dump(folder / f"data_batch_{i}", batch_dict(x, y, f"training batch {i} of 5"))
        xs.append(x)
        ys.append(y)
    tx = rng.integers(0, 256, (test, 3, 32, 32), dtype=np.uint8)
    ty = rng.integers(0, 10, test)
    _dump(folder / "test_batch", batch_dict(tx, ty, "testing batch 1 of 1"))
    _dump(folder / "batches.meta", {b"num_cases_per_batch": per_batch,
                                    b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072})
    return {"folder": folder, "train_x": np.concatenate(xs), "train_y": np.concatenate(ys).astype(np.int64),
            "test_x": tx, "test_y": ty.astype(np.int64)}


def write_cifar100(root: Path, train: int = 50, test: int = 20, seed: int = 0) -> dict:
    """Write `root/cifar-100-python/` (train, test, meta with fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out = {"folder": folder}
    for name, n in (("train", train), ("test", test)):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        fine = rng.integers(0, 100, n)
        coarse = fine // 5
        _dump(folder / name, batch_dict(x, fine, name, b"fine_labels", {b"coarse_labels": [int(c) for c in coarse]}))
        out[name] = (x, fine, coarse)
    _dump(folder / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]})
    return out
