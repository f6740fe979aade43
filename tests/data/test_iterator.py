"""BatchIterator: ordering, determinism, resumption, prefetch."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from minisnn import data as D


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (103, 3, 32, 32), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(103)          # a tag that survives a crop-free transform
    return x, np.arange(103) % 10


def make(xy, **kw):
    opts = dict(shuffle=True, seed=5, epoch=2, transform=D.RandomCropFlip(padding=4), mixup=D.Mixup(0.4),
                drop_last=False, prefetch=2, start_batch=0)
    opts.update(kw)
    return D.BatchIterator(xy[0], xy[1], 16, **opts)


def collect(it):
    return [(a.copy(), b.copy()) for a, b in it]


def same(xs, ys) -> bool:
    return len(xs) == len(ys) and all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(xs, ys))


def test_shapes_dtypes_and_lengths(xy):
    it = make(xy)
    out = collect(it)
    assert len(it) == it.num_batches == len(out) == 7
    assert [len(b) for _, b in out] == [16] * 6 + [7]
    images, targets = out[0]
    assert images.dtype == np.float32 and images.shape == (16, 3, 32, 32)
    assert targets.dtype == np.float32 and targets.shape == (16, 10)
    np.testing.assert_allclose(targets.sum(1), 1, rtol=1e-5)
    plain = collect(make(xy, mixup=None, drop_last=True))
    assert len(plain) == 6 and plain[0][1].dtype == np.int64 and plain[0][1].shape == (16,)


def test_epoch_visits_every_image_once(xy):
    it = make(xy, transform=D.Normalize(((0, 0, 0), (1 / 255, 1, 1))), mixup=None)
    tags = np.concatenate([np.rint(a[:, 0, 0, 0]).astype(int) for a, _ in it])
    assert sorted(tags) == list(range(103))
    labels = np.concatenate([b for _, b in make(xy, mixup=None)])
    np.testing.assert_array_equal(labels, xy[1][it.order])


def test_default_transform_normalises(xy):
    images, _ = next(iter(make(xy, transform=None, mixup=None, shuffle=False)))
    np.testing.assert_array_equal(images, D.Normalize("upstream")(xy[0][:16]))


def test_same_seed_and_epoch_give_identical_batches(xy):
    assert same(collect(make(xy)), collect(make(xy)))
    it = make(xy)
    assert same(collect(it), collect(it))  # iterating again replays the epoch


def test_different_epochs_and_seeds_differ(xy):
    a, b, c = make(xy, epoch=0), make(xy, epoch=1), make(xy, seed=6)
    assert not np.array_equal(a.order, b.order) and not np.array_equal(a.order, c.order)
    assert not same(collect(a), collect(b))
    no_shuffle = make(xy, shuffle=False)
    np.testing.assert_array_equal(no_shuffle.order, np.arange(103))


def test_order_comes_from_seed_and_epoch(xy):
    np.testing.assert_array_equal(make(xy).order, np.random.default_rng([5, 2]).permutation(103))


@pytest.mark.parametrize("start", [0, 3, 6, 7])
def test_start_batch_resumes_mid_epoch_identically(xy, start):
    full = collect(make(xy, prefetch=0))
    resumed = make(xy, start_batch=start)
    assert len(resumed) == 7 - start
    assert same(collect(resumed), full[start:])


def test_prefetch_gives_the_same_batches(xy):
    reference = collect(make(xy, prefetch=0))
    for n in (1, 2, 5):
        assert same(collect(make(xy, prefetch=n)), reference)


def test_prefetch_runs_in_a_background_thread(xy):
    seen = []

    def transform(x, rng):
        seen.append(threading.current_thread() is threading.main_thread())
        return D.Normalize()(x)

    collect(make(xy, transform=transform, prefetch=2))
    assert seen and not any(seen)
    seen.clear()
    collect(make(xy, transform=transform, prefetch=0))
    assert seen and all(seen)


def test_queue_is_bounded_and_worker_stops_early(xy):
    built = []
    gate = threading.Event()

    def transform(x, rng):
        built.append(1)
        return D.Normalize()(x)

    it = make(xy, transform=transform, mixup=None, prefetch=2)
    gen = iter(it)
    next(gen)
    gate.wait(0.3)  # give the worker time to fill the queue
    assert len(built) <= 1 + 2 + 1  # consumed + queued + one being built
    gen.close()     # stopping early joins the worker
    assert not any(t.name == "minisnn-batch-prefetch" and t.is_alive() for t in threading.enumerate())


def test_errors_in_the_worker_reach_the_consumer(xy):
    def broken(x, rng):
        raise RuntimeError("augmentation failed")

    with pytest.raises(RuntimeError, match="augmentation failed"):
        collect(make(xy, transform=broken))


def test_bad_arguments(xy):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        D.BatchIterator(xy[0], xy[1], 0)
    with pytest.raises(ValueError, match=r"start_batch must be in \[0, 7\]"):
        make(xy, start_batch=8)
    with pytest.raises(ValueError, match="x must be a uint8 image array"):
        D.BatchIterator(xy[0].astype(np.float32), xy[1], 4)
    with pytest.raises(ValueError, match="y must be integer labels"):
        D.BatchIterator(xy[0], xy[1][:-1], 4)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        make(xy, seed=-1)
