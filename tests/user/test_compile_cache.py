"""The first run on a machine compiles the kernels; minisnn can tell before and count after."""
from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import json, numpy as np
from minisnn.kernels import compile_cache
from minisnn.kernels.jit import pool
before = compile_cache.cold_kernels()
x = np.random.default_rng(0).random((1, 2, 4, 4)).astype(np.float32)
pool.max_pool2d_forward(x, 3, 3, 1, 1, 1, 1)
print(json.dumps({"before": before, "after": compile_cache.cold_kernels(),
                  "compiled": compile_cache.compiled_in_this_process()}))
"""


def _run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_an_empty_cache_is_cold_and_a_compiled_kernel_is_then_warm(tmp_path):
    first = _run(tmp_path)
    assert first["before"], "an empty cache folder must report cold kernels"
    newly_warm = set(first["before"]) - set(first["after"])
    assert newly_warm and all(name.startswith("pool.") for name in newly_warm)
    assert first["compiled"] >= 1
    second = _run(tmp_path)
    assert set(second["before"]) == set(first["after"])      # what was compiled stayed cached
    assert second["compiled"] == 0
