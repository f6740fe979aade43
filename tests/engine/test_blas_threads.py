"""`ops.blas_threads`: a stack of BLAS calls spread over threads, BLAS single-threaded meanwhile."""
from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from threadpoolctl import threadpool_limits

from minisnn.ops import blas_threads
from minisnn.ops.conv import conv2d_backward, conv2d_forward


@settings(deadline=None, max_examples=200)
@given(st.integers(0, 300), st.integers(1, 8))
def test_split_cuts_range_into_near_equal_contiguous_parts(count, parts):
    pieces = blas_threads.split(count, parts)
    covered = [i for piece in pieces for i in range(piece.start, piece.stop)]
    assert covered == list(range(count))
    lengths = [piece.stop - piece.start for piece in pieces]
    if count:
        assert len(pieces) == min(parts, count) and min(lengths) >= 1 and max(lengths) - min(lengths) <= 1


def test_for_parts_runs_every_item_once_on_two_threads_at_once_with_single_threaded_blas():
    seen, blas_inside, names = [], [], set()
    both_running = threading.Barrier(2, timeout=10)   # passes only if the two parts run at the same time
    with threadpool_limits(2, user_api="blas"):
        def work(part):
            both_running.wait()
            seen.extend(range(part.start, part.stop))
            blas_inside.append(blas_threads.blas_threads())
            names.add(threading.current_thread().name)

        blas_threads.for_parts(11, work)
        assert blas_threads.blas_threads() == 2          # restored afterwards
    assert sorted(seen) == list(range(11))
    assert blas_inside == [1, 1]
    assert threading.current_thread().name in names and len(names) == 2


def test_for_parts_raises_a_parts_error_and_restores_blas():
    def work(part):
        if part.start == 0:
            raise ValueError("part failed")

    with threadpool_limits(2, user_api="blas"):
        with pytest.raises(ValueError, match="part failed"):
            blas_threads.for_parts(4, work)
        assert blas_threads.blas_threads() == 2


def test_for_parts_runs_inline_with_one_blas_thread_one_item_or_inside_a_part():
    calls = []
    with threadpool_limits(1, user_api="blas"):
        blas_threads.for_parts(5, lambda part: calls.append((part, threading.current_thread().name)))
    assert calls == [(slice(0, 5), threading.current_thread().name)]

    with threadpool_limits(2, user_api="blas"):
        calls.clear()
        blas_threads.for_parts(1, calls.append)
        assert calls == [slice(0, 1)]

        inner = []
        blas_threads.for_parts(2, lambda part: blas_threads.for_parts(3, inner.append))
        assert inner == [slice(0, 3), slice(0, 3)]       # the nested call did not split again


@pytest.mark.parametrize("a_shape, b_shape", [((5, 7, 3), (5, 3, 4)), ((7, 3), (5, 3, 4)), ((5, 7, 3), (3, 4))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_equals_numpy_for_stacks_and_shared_matrices(a_shape, b_shape, dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    with threadpool_limits(2, user_api="blas"):
        out = blas_threads.matmul(a, b, np.empty((5, 7, 4), dtype))
        transposed = blas_threads.matmul(np.swapaxes(a, -1, -2).copy().swapaxes(-1, -2), b,
                                         np.empty((5, 7, 4), dtype))
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(transposed, out)


@pytest.mark.parametrize("shape", [((6, 8, 16, 16), (12, 8, 1, 1)), ((6, 16, 9, 9), (16, 16, 3, 3))])
def test_convolutions_agree_for_one_and_two_blas_threads_and_repeat_exactly(shape):
    """The 1×1 path (forward, ∂x, the per-image ∂W sums) and Winograd give the same numbers however BLAS
    is threaded, and the same bits when repeated."""
    x_shape, w_shape = shape
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    padding = (w_shape[2] // 2,) * 2
    results = {}
    for threads in (1, 2, 2):
        with threadpool_limits(threads, user_api="blas"):
            y = conv2d_forward(x, w, b, (1, 1), padding)
            grads = conv2d_backward(np.cos(y), x, w, (1, 1), padding)
        if threads in results:
            for got, want in zip((y, *grads), results[threads]):
                np.testing.assert_array_equal(got, want)
        results[threads] = (y, *grads)
    for one, two in zip(results[1], results[2]):
        np.testing.assert_allclose(one, two, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_for_parts_works_in_a_forked_child_after_the_parent_used_its_threads():
    """The parent's pool threads do not survive a fork; the child starts its own instead of waiting forever."""
    with threadpool_limits(2, user_api="blas"):
        blas_threads.for_parts(4, lambda part: None)       # the parent's pool exists now
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:                                        # the child: report what it covered, then exit
            signal.alarm(30)                                # a hung child dies instead of hanging the test
            seen = []
            blas_threads.for_parts(6, lambda part: seen.extend(range(part.start, part.stop)))
            os.write(write_end, bytes(sorted(seen)))
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        covered = os.read(read_end, 64)
        os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert list(covered) == list(range(6))
