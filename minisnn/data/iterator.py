"""`BatchIterator`: one epoch of shuffled, augmented, mixed batches, prepared in a background thread.

    it = BatchIterator(x, y, 128, shuffle=True, seed=0, epoch=3, transform=RandomCropFlip(),
                       mixup=Mixup(0.2), drop_last=True)
    for images, targets in it:      # float32 [B, 3, 32, 32], int64 [B] (float32 [B, K] with mixup)
        ...

Reproducibility: everything random in an epoch comes from (seed, epoch):

    order of the epoch       np.random.default_rng([seed, epoch]).permutation(N)
    batch b's augmentation   np.random.default_rng([seed, epoch, b])   (transform, then mixup)

Each batch therefore depends only on (seed, epoch, b): `start_batch=k` yields exactly the
batches k, k+1, ... of the full epoch, and prefetching cannot change any result.

Prefetch: with prefetch=n > 0 a worker thread builds batches ahead into a queue holding at most n
finished batches (NumPy releases the GIL in its loops, so augmentation overlaps the training step).
prefetch=0 builds each batch on demand in the calling thread.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from .augment import Normalize

_DONE = object()


def _check_int(name: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class BatchIterator:
    """Iterable over (images float32 [B, 3, H, W], targets) for one epoch; see the module docstring.

    x: uint8 [N, 3, H, W]; y: int labels [N].  transform: callable (uint8 batch, rng) -> float32 batch,
    default Normalize('upstream').  mixup: callable (images, labels, rng) -> (images, soft targets) or None.
    len() is the number of batches this iterator yields (the epoch's batches from start_batch on).
    """

    def __init__(self, x, y, batch_size: int, *, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                 transform=None, mixup=None, drop_last: bool = False, prefetch: int = 2, start_batch: int = 0):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError(f"x must be a uint8 image array [N, C, H, W], got {x.dtype} {list(x.shape)}")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be integer labels [N={len(x)}], got {y.dtype} {list(y.shape)}")
        self.x, self.y = x, y.astype(np.int64, copy=False)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed)
        self.epoch = _check_int("epoch", epoch)
        self.prefetch = _check_int("prefetch", prefetch)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.transform = Normalize() if transform is None else transform
        self.mixup = mixup
        self.start_batch = _check_int("start_batch", start_batch)
        if self.start_batch > self.num_batches:
            raise ValueError(f"start_batch must be in [0, {self.num_batches}] (batches per epoch), got {start_batch}")
        self.order = self._epoch_order()

    @property
    def num_batches(self) -> int:
        """Batches in the whole epoch (a final partial batch counts unless drop_last)."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self) -> int:
        return self.num_batches - self.start_batch

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def batch_rng(self, b: int) -> np.random.Generator:
        """The generator that drives batch b's augmentation and mixing."""
        return np.random.default_rng([self.seed, self.epoch, b])

    def batch_indices(self, b: int) -> np.ndarray:
        """Indices into x / y of batch b."""
        return self.order[b * self.batch_size:(b + 1) * self.batch_size]

    def make_batch(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Build batch b of the epoch: gather, transform, mix."""
        idx = self.batch_indices(b)
        rng = self.batch_rng(b)
        images = self.transform(self.x[idx], rng)
        targets = self.y[idx]
        if self.mixup is not None:
            images, targets = self.mixup(images, targets, rng)
        return images, targets

    def __iter__(self):
        batches = range(self.start_batch, self.num_batches)
        if self.prefetch == 0:
            return (self.make_batch(b) for b in batches)
        return self._prefetched(batches)

    def _prefetched(self, batches):
        """Yield batches built by a worker thread; stop the worker if the consumer stops early."""
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        def work():
            try:
                for b in batches:
                    if not put(self.make_batch(b)):
                        return
                put(_DONE)
            except BaseException as exc:  # hand the error to the consumer
                put(exc)

        worker = threading.Thread(target=work, name="minisnn-batch-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()
