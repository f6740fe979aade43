"""minisnn's one malloc default (`minisnn/_allocator.py`): large arrays come from the heap, unless the
user opts out or set glibc's own variable."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

# bytes in mmap'ed blocks (glibc's mallinfo2().hblkhd) before and after allocating a 64 MiB array
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
before = mallinfo2().hblkhd
a = np.ones((64 << 20) // 8)
print(json.dumps({"mapped": mallinfo2().hblkhd - before}))
"""


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError, TypeError):
        return False
    return True


def _mapped_bytes(**env) -> int:
    environment = {k: v for k, v in os.environ.items() if k not in ("MINISNN_MALLOC", "MALLOC_MMAP_THRESHOLD_")}
    r = subprocess.run([sys.executable, "-c", SCRIPT], env={**environment, **env}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])["mapped"]


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc 2.33 or later (mallinfo2)")
def test_large_arrays_come_from_the_heap_unless_the_user_opts_out():
    assert _mapped_bytes() < 1 << 20                                   # served from the heap
    assert _mapped_bytes(MINISNN_MALLOC="default") >= 64 << 20         # glibc's default: its own mapping
    assert _mapped_bytes(MALLOC_MMAP_THRESHOLD_=str(1 << 20)) >= 64 << 20   # the user's setting wins
