"""Reading the CIFAR-10 / CIFAR-100 "python version" batches.

Each batch file is a pickled dict (keys are bytes):

    b'data'        uint8 [N, 3072]   one row per image: 1024 red, 1024 green, 1024 blue values,
                                     each plane row-major 32x32, so row.reshape(3, 32, 32) is CHW
    b'labels'      list[int]         CIFAR-10 (CIFAR-100 has b'fine_labels' and b'coarse_labels')
    b'batch_label' bytes, b'filenames' list[bytes]

`batches.meta` (CIFAR-10) holds b'label_names'; `meta` (CIFAR-100) holds b'fine_label_names'.

The files are pickles, and unpickling can run arbitrary code, so they are read with
an unpickler that only rebuilds plain containers and NumPy arrays.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

IMAGE_SHAPE = (3, 32, 32)

# Folder name inside the official archive, files it must contain, and their md5s.
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}

CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_TRAIN_FILE = "train"
CIFAR100_TEST_FILE = "test"
CIFAR100_META_FILE = "meta"

# What each dataset's folder must hold to count as present.
REQUIRED_FILES = {
    "cifar10": (CIFAR10_FOLDER, CIFAR10_TRAIN_FILES + [CIFAR10_TEST_FILE, CIFAR10_META_FILE]),
    "cifar100": (CIFAR100_FOLDER, [CIFAR100_TRAIN_FILE, CIFAR100_TEST_FILE, CIFAR100_META_FILE]),
}


class CorruptBatchError(ValueError):
    """A batch file that is not a CIFAR pickle, or whose md5 does not match."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except what a pickled ndarray needs."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store raw bytes
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # written by NumPy 1.x
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def file_md5(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def read_pickle(path: str | Path) -> dict:
    """Load one CIFAR pickle (dict with bytes keys) safely."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise CorruptBatchError(f"{path} is not a readable CIFAR batch file ({exc})") from None
    if not isinstance(obj, dict):
        raise CorruptBatchError(f"{path} should hold a dict, found {type(obj).__name__}")
    return obj


def read_batch(path: str | Path, label_key: bytes = b"labels") -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images uint8 [N, 3, 32, 32], labels int64 [N])."""
    d = read_pickle(path)
    if b"data" not in d or label_key not in d:
        raise CorruptBatchError(f"{path} lacks b'data' or {label_key!r} (keys: {sorted(d)})")
    data = np.asarray(d[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise CorruptBatchError(f"{path}: b'data' should be uint8 [N, 3072], got {data.dtype} {list(data.shape)}")
    labels = np.asarray(d[label_key], dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise CorruptBatchError(f"{path}: {len(labels)} labels for {data.shape[0]} images")
    return data.reshape((-1,) + IMAGE_SHAPE), labels


def _names(meta: dict, key: bytes, path: Path) -> list[str]:
    if key not in meta:
        raise CorruptBatchError(f"{path} lacks {key!r}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]


def verify_md5(folder: str | Path, expected: dict[str, str] = CIFAR10_MD5) -> None:
    """Raise CorruptBatchError naming every file in `folder` whose md5 differs from `expected`."""
    folder = Path(folder)
    bad = [name for name, md5 in expected.items() if file_md5(folder / name) != md5]
    if bad:
        raise CorruptBatchError(f"md5 mismatch for {', '.join(bad)} in {folder}; delete them and download again")


def load_cifar10(folder: str | Path, verify: bool = False):
    """Read `cifar-10-batches-py/`.

    Returns (train_x [50000,3,32,32] uint8, train_y [50000] int64, test_x, test_y, classes).
    With verify=True every batch's md5 is checked against the official values first.
    """
    folder = Path(folder)
    if verify:
        verify_md5(folder, CIFAR10_MD5)
    parts = [read_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = read_batch(folder / CIFAR10_TEST_FILE)
    classes = _names(read_pickle(folder / CIFAR10_META_FILE), b"label_names", folder / CIFAR10_META_FILE)
    return train_x, train_y, test_x, test_y, classes


def load_cifar100(folder: str | Path, label: str = "fine"):
    """Read `cifar-100-python/` with the 'fine' (100) or 'coarse' (20) labels.

    Returns (train_x, train_y, test_x, test_y, classes) like `load_cifar10`.
    """
    if label not in ("fine", "coarse"):
        raise ValueError(f"label must be 'fine' or 'coarse', got {label!r}")
    folder = Path(folder)
    key = f"{label}_labels".encode()
    train_x, train_y = read_batch(folder / CIFAR100_TRAIN_FILE, key)
    test_x, test_y = read_batch(folder / CIFAR100_TEST_FILE, key)
    meta_path = folder / CIFAR100_META_FILE
    classes = _names(read_pickle(meta_path), f"{label}_label_names".encode(), meta_path)
    return train_x, train_y, test_x, test_y, classes
