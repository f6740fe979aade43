"""Run a hostile load in a forked child with a memory ceiling and a timeout, and report what it cost.

    outcome = run_bounded(load_checkpoint, path)
    outcome.raised("CheckpointError"), outcome.peak_bytes, outcome.seconds

The child lowers RLIMIT_AS to its current size + `memory` before calling, so a loader that
tries to allocate too much fails there (MemoryError) instead of taking the machine down; a
crash (SIGSEGV) or a hang kills only the child.  `peak_bytes` is tracemalloc's peak, which
counts Python objects and NumPy buffers (and allocations that failed).  Tracing makes
allocation-heavy code several times slower, so `trace=False` gives honest `seconds` (and
no `peak_bytes`).
"""
from __future__ import annotations

import os
import pickle
import resource
import select
import signal
import time
import tracemalloc
from dataclasses import dataclass

MiB = 1 << 20


@dataclass
class Outcome:
    status: str                  # "returned", "raised", "crashed" or "timed out"
    error_types: tuple = ()      # the exception's class and its bases, by name
    message: str = ""
    peak_bytes: int = 0
    seconds: float = 0.0
    signal: int = 0

    def raised(self, name: str) -> bool:
        return self.status == "raised" and name in self.error_types


def _address_space() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _child(write_fd: int, fn, args, memory: int, trace: bool) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + memory, hard))
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        fn(*args)
        report = dict(status="returned")
    except BaseException as exc:  # report everything, MemoryError included
        report = dict(status="raised", error_types=tuple(c.__name__ for c in type(exc).__mro__),
                      message=str(exc)[:2000])
    report.update(seconds=time.perf_counter() - start, peak_bytes=tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    os.write(write_fd, pickle.dumps(report))


def run_bounded(fn, *args, memory: int = 512 * MiB, timeout: float = 20.0, trace: bool = True) -> Outcome:
    """Call fn(*args) in a forked child allowed `memory` more bytes of address space; never raises."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running any of the parent's clean-up
        os.close(read_fd)
        try:
            _child(write_fd, fn, args, memory, trace)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Outcome("timed out", seconds=timeout)
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) or not chunks:
        return Outcome("crashed", signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0)
    return Outcome(**pickle.loads(b"".join(chunks)))
