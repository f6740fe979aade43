"""Reading the CIFAR-10 / CIFAR-100 "python version" batches.

Each batch file is a pickled dict (keys are bytes):

    b'data'        uint8 [N, 3072]   one row per image: 1024 red, 1024 green, 1024 blue values,
                                     each plane row-major 32x32, so row.reshape(3, 32, 32) is CHW
    b'labels'      list[int]         CIFAR-10 (CIFAR-100 has b'fine_labels' and b'coarse_labels')
    b'batch_label' bytes, b'filenames' list[bytes]

`batches.meta` (CIFAR-10) holds b'label_names'; `meta` (CIFAR-100) holds b'fine_label_names'.

The files are pickles, and unpickling can run arbitrary code, so they are read by
minisnn's own pickle machine (minisnn/io/pickle_machine.py, shared with the checkpoint
reader): it rebuilds dicts, lists, bytes, strings, ints and NumPy arrays (from exactly as
many raw bytes as their shape needs) and nothing else, refuses anything but a regular file
of at most MAX_BATCH_BYTES, and may build at most BATCH_BYTES_PER_BYTE bytes of objects per
byte of the file.  Every problem is a CorruptBatchError naming the file and what is wrong.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..io.errors import InputFileError
from ..io.files import fs_path, open_regular, read_regular_bytes
from ..io.pickle_limits import PickleRefused, brief
from ..io.pickle_machine import unpickle
from ..io.pickled_numpy import PickledNumpyArray, numpy_globals

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


# Classes behind each label key, and the meta key that names them.
NUM_CLASSES = {b"labels": 10, b"fine_labels": 100, b"coarse_labels": 20}
MAX_BATCH_BYTES = 512 << 20      # the largest official file, CIFAR-100's train, is 155 MB
BATCH_BYTES_PER_BYTE = 4         # pickle-machine budget: a batch is one big bytes literal and a few lists


class CorruptBatchError(InputFileError):
    """A batch file that is not a CIFAR pickle, or whose md5 does not match: "<path>: <problem>"."""


def _find_class(path):
    """find_class for a CIFAR pickle: only what pickled NumPy arrays need (fresh stand-ins per load)."""
    allowed = numpy_globals()

    def find_class(module: str, name: str):
        if (module, name) not in allowed:
            raise CorruptBatchError(path, f"refusing to load {module}.{name} from a CIFAR batch file: only "
                                    "dicts, lists, bytes, strings, ints and NumPy arrays are read")
        return allowed[(module, name)]
    return find_class


def file_md5(path, chunk_size: int = 1 << 20) -> str:
    """Hex md5 of a regular file (str, bytes or os.PathLike path), read in chunks."""
    h = hashlib.md5()
    with open_regular(path, CorruptBatchError) as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _keys(d: dict) -> str:
    return ", ".join(brief(k) for _, k in zip(range(12), d)) + (", ..." if len(d) > 12 else "")


def read_pickle(path) -> dict:
    """Load one CIFAR pickle safely: a dict whose keys are all bytes (or all str), arrays as np.ndarray."""
    path = fs_path(path)
    data = read_regular_bytes(path, CorruptBatchError, limit=MAX_BATCH_BYTES)
    try:
        obj = unpickle(data, _find_class(path), encoding="bytes", bytes_per_byte=BATCH_BYTES_PER_BYTE)
    except PickleRefused as exc:
        raise CorruptBatchError(path, f"is not a readable CIFAR batch file ({exc})") from None
    if not isinstance(obj, dict):
        raise CorruptBatchError(path, f"should hold a dict, found {brief(obj)}")
    kinds = {type(k) for k in obj}
    if kinds - {bytes} and kinds - {str}:
        raise CorruptBatchError(path, f"dict keys should all be bytes, found {_keys(obj)}")
    return {k: v.array if isinstance(v, PickledNumpyArray) else v for k, v in obj.items()}


def _labels(values, count: int, num_classes: int | None, path) -> np.ndarray:
    """`values` (a list of ints, or a 1-d integer array) as int64 [count], each in 0..num_classes-1."""
    expected = f"labels must be integers in 0..{num_classes - 1}" if num_classes else "labels must be integers >= 0"
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise CorruptBatchError(path, f"{expected}, got {brief(values)}")
    limit = num_classes or float("inf")
    bad = next((v for v in values if type(v) is not int or not 0 <= v < limit), values)
    if bad is not values:
        raise CorruptBatchError(path, f"{expected}, found {brief(bad)}")
    if len(values) != count:
        raise CorruptBatchError(path, f"{len(values)} labels for {count} images")
    return np.array(values, dtype=np.int64)


def read_batch(path, label_key: bytes = b"labels") -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images uint8 [N, 3, 32, 32], labels int64 [N] in 0..classes-1)."""
    path = fs_path(path)
    d = read_pickle(path)
    if b"data" not in d or label_key not in d:
        raise CorruptBatchError(path, f"lacks b'data' or {label_key!r} (keys: {_keys(d)})")
    data = d[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else brief(data)
        raise CorruptBatchError(path, f"b'data' should be uint8 [N, 3072], got {got}")
    labels = _labels(d[label_key], data.shape[0], NUM_CLASSES.get(label_key), path)
    return data.reshape((-1,) + IMAGE_SHAPE), labels


def _names(meta: dict, key: bytes, path, count: int) -> list[str]:
    """The `count` class names stored under `key` (bytes or str, UTF-8)."""
    names = meta.get(key)
    if not isinstance(names, list) or len(names) != count or not all(isinstance(n, (bytes, str)) for n in names):
        raise CorruptBatchError(path, f"{key!r} should be a list of {count} class names (bytes), got "
                                f"{brief(names) if key in meta else 'nothing'}")
    try:
        return [n.decode() if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError as exc:
        raise CorruptBatchError(path, f"a class name in {key!r} is not UTF-8 ({exc})") from None


def verify_md5(folder, expected: dict[str, str] = CIFAR10_MD5) -> None:
    """Raise CorruptBatchError naming every file in `folder` whose md5 differs from `expected`."""
    folder = Path(fs_path(folder))
    bad = [name for name, md5 in expected.items() if file_md5(folder / name) != md5]
    if bad:
        raise CorruptBatchError(folder, f"md5 mismatch for {', '.join(bad)}; delete them and download again")


def load_cifar10(folder: str | Path, verify: bool = False):
    """Read `cifar-10-batches-py/`.

    Returns (train_x [50000,3,32,32] uint8, train_y [50000] int64, test_x, test_y, classes).
    With verify=True every batch's md5 is checked against the official values first.
    """
    folder = Path(fs_path(folder))
    if verify:
        verify_md5(folder, CIFAR10_MD5)
    parts = [read_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = read_batch(folder / CIFAR10_TEST_FILE)
    meta_path = folder / CIFAR10_META_FILE
    classes = _names(read_pickle(meta_path), b"label_names", meta_path, 10)
    return train_x, train_y, test_x, test_y, classes


def load_cifar100(folder: str | Path, label: str = "fine"):
    """Read `cifar-100-python/` with the 'fine' (100) or 'coarse' (20) labels.

    Returns (train_x, train_y, test_x, test_y, classes) like `load_cifar10`.
    """
    if label not in ("fine", "coarse"):
        raise ValueError(f"label must be 'fine' or 'coarse', got {label!r}")
    folder = Path(fs_path(folder))
    key = f"{label}_labels".encode()
    train_x, train_y = read_batch(folder / CIFAR100_TRAIN_FILE, key)
    test_x, test_y = read_batch(folder / CIFAR100_TEST_FILE, key)
    meta_path = folder / CIFAR100_META_FILE
    classes = _names(read_pickle(meta_path), f"{label}_label_names".encode(), meta_path, NUM_CLASSES[key])
    return train_x, train_y, test_x, test_y, classes
