"""The small CIFAR-10 sample shipped in the package (`minisnn/assets/cifar10_sample.npz`).

It lets training run with no download: 2,000 training and 500 validation images, 200 / 50 per
class, drawn with a fixed seed from the official *training* batches only (see make_sample.py).
It has no test split, so it cannot give a CIFAR-10 test accuracy.

Storage.  Natural images compress poorly with zlib, so the images are stored as prediction
residuals that compress to about two thirds of the raw size.  All arithmetic is uint8, i.e. mod 256,
so the transform is exactly invertible:

    encode:  r = diff_W(diff_H(x))        residual of the predictor left + up - upper-left
             r_R -= r_G,  r_B -= r_G       colour channels predicted from green
    decode:  r_R += r_G,  r_B += r_G,  x = cumsum_H(cumsum_W(r))
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

SAMPLE_FILE = "cifar10_sample.npz"
CODEC = "grad-green-residual-v1"


def encode_images(x: np.ndarray) -> np.ndarray:
    """uint8 [N, 3, H, W] -> uint8 residuals of the same shape (see the module docstring)."""
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected uint8 images [N, 3, H, W], got {x.dtype} {list(x.shape)}")
    r = np.diff(np.diff(x, axis=2, prepend=np.uint8(0)), axis=3, prepend=np.uint8(0))
    r[:, 0] -= r[:, 1]
    r[:, 2] -= r[:, 1]
    return r


def decode_images(r: np.ndarray) -> np.ndarray:
    """Inverse of `encode_images`."""
    x = r.copy()
    x[:, 0] += x[:, 1]
    x[:, 2] += x[:, 1]
    return np.cumsum(np.cumsum(x, axis=3, dtype=np.uint8), axis=2, dtype=np.uint8)


def sample_path() -> Path:
    """Location of the embedded sample inside the installed package."""
    return Path(str(resources.files("minisnn") / "assets" / SAMPLE_FILE))


def save_sample(path, train, val, classes, source_indices=None, seed: int = 0) -> None:
    """Write a sample npz: train/val = (uint8 images [N, 3, 32, 32], int64 labels [N])."""
    arrays = dict(
        x_train=encode_images(train[0]), y_train=np.asarray(train[1], dtype=np.int64),
        x_val=encode_images(val[0]), y_val=np.asarray(val[1], dtype=np.int64),
        classes=np.array(classes), codec=np.array(CODEC), seed=np.array(seed, dtype=np.int64),
    )
    if source_indices is not None:  # positions in the 50,000 concatenated training images
        arrays["train_source_index"] = np.asarray(source_indices[0], dtype=np.int64)
        arrays["val_source_index"] = np.asarray(source_indices[1], dtype=np.int64)
    np.savez_compressed(path, **arrays)


def load_sample(path=None) -> dict:
    """Read the embedded sample (or `path`).

    Returns a dict with 'train' and 'val' (images uint8 [N, 3, 32, 32], labels int64 [N]),
    'classes' (list[str]) and, when stored, 'train_source_index' / 'val_source_index'.
    """
    path = Path(path) if path is not None else sample_path()
    if not path.is_file():
        raise FileNotFoundError(f"embedded CIFAR-10 sample missing at {path}; reinstall minisnn")
    with np.load(path, allow_pickle=False) as z:
        if str(z["codec"]) != CODEC:
            raise ValueError(f"{path}: unknown image codec {str(z['codec'])!r}, expected {CODEC!r}")
        out = {
            "train": (decode_images(z["x_train"]), z["y_train"].astype(np.int64)),
            "val": (decode_images(z["x_val"]), z["y_val"].astype(np.int64)),
            "classes": [str(c) for c in z["classes"]],
            "seed": int(z["seed"]),
        }
        for key in ("train_source_index", "val_source_index"):
            if key in z:
                out[key] = z[key]
    return out
