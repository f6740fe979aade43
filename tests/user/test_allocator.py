"""minisnn's malloc defaults (`minisnn/_allocator.py`): large arrays come from the heap, which keeps
their memory when they are freed, unless the user opts out or set glibc's own variables."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from minisnn._allocator import USER_SETTINGS

# bytes in mmap'ed blocks (glibc's mallinfo2().hblkhd) that a 64 MiB array added, and the bytes of heap
# (mallinfo2().arena) that stayed with the process after the array was freed
SCRIPT = """
import ctypes, json
import minisnn
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
before = mallinfo2()
a = np.ones((64 << 20) // 8)
mapped = mallinfo2().hblkhd - before.hblkhd
del a
print(json.dumps({"mapped": mapped, "kept": mallinfo2().arena - before.arena}))
"""


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError, TypeError):
        return False
    return True


def _allocation(**env) -> dict:
    """{"mapped": bytes, "kept": bytes} of SCRIPT in a fresh process with the given environment."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MINISNN_MALLOC", *USER_SETTINGS)}
    r = subprocess.run([sys.executable, "-c", SCRIPT], env={**environment, **env}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc 2.33 or later (mallinfo2)")
def test_large_arrays_come_from_the_heap_unless_the_user_opts_out():
    assert _allocation()["mapped"] < 1 << 20                                  # served from the heap
    assert _allocation(MINISNN_MALLOC="default")["mapped"] >= 64 << 20        # glibc's default: its own mapping
    assert _allocation(MALLOC_MMAP_THRESHOLD_=str(1 << 20))["mapped"] >= 64 << 20   # the user's setting wins


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc 2.33 or later (mallinfo2)")
def test_the_heap_keeps_freed_memory_for_the_next_step_unless_the_user_opts_out():
    assert _allocation()["kept"] >= 48 << 20                                  # not trimmed on free
    assert _allocation(MINISNN_MALLOC="default")["kept"] < 1 << 20            # glibc's default
    user_trim = _allocation(MALLOC_MMAP_THRESHOLD_=str(256 << 20), MALLOC_TRIM_THRESHOLD_=str(1 << 20))
    assert user_trim["mapped"] < 1 << 20 and user_trim["kept"] < 1 << 20      # the user's trim setting wins
