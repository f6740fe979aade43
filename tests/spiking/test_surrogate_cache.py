"""A surrogate family's kernels in Numba's on-disk cache: found again in a new process, never stale.

The kernels are cached under the family's key (`kernels.surrogates.code_key`).  The key must change
whenever what Numba compiles changes (the code, or a value it reads from a global, a closure or a
compiled helper) and stay the same otherwise; and a family defined by code that `exec` runs in a
namespace of its own (as a doctest does) must load from the cache in the next process.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numba
import numpy as np

from minisnn.kernels import surrogates as table

# run by `exec` in a namespace named like no module, as tests/test_docs_code_blocks.py runs the docs
FAMILY_SOURCE = '''
import math
from minisnn.spiking import surrogate

WIDTH = {width}

def gaussian(x, alpha):
    return 0.5 * (1.0 + math.erf(alpha * x / (WIDTH * math.sqrt(2.0))))

Gaussian = surrogate.define("gaussian_cached", gaussian, default_alpha=4.0)
'''

DEFINE_BY_EXEC = '''
import sys
namespace = {"__name__": "__not_a_module__"}
exec(compile(sys.argv[1], "<family>", "exec"), namespace)
Gaussian = namespace["Gaussian"]
'''

USE = '''
import json
import numpy as np
from minisnn import Tensor
from minisnn.kernels import compile_cache
from minisnn.spiking import spike
u = Tensor(np.array([0.7, 0.95, 1.1]), requires_grad=True)
spike(u, surrogate=Gaussian()).sum().backward()
print(json.dumps({"grad": u.grad.tolist(), "compiled": compile_cache.compiled_in_this_process()}))
'''


def _run(cache_dir, width: float, by_exec: bool = True) -> dict:
    """Define the family (by exec in a namespace of its own, or as a script's top-level code) in a new
    process, run a spike forward and backward through it; its gradient and how many kernels it compiled."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), MINISNN_KERNELS="jit")
    source = FAMILY_SOURCE.format(width=width)
    script = DEFINE_BY_EXEC + USE if by_exec else source + USE
    r = subprocess.run([sys.executable, "-c", script, source], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _expected_grad(width: float) -> list:
    """∂p/∂x of p = Φ(αx / width) at x = u − 1, α = 4: the Gaussian density, scaled."""
    x = np.array([0.7, 0.95, 1.1]) - 1.0
    s = 4.0 / width
    return (s * np.exp(-0.5 * (s * x) ** 2) / math.sqrt(2 * math.pi)).tolist()


def test_a_family_defined_by_exec_loads_from_the_cache_and_a_changed_global_recompiles(tmp_path):
    """exec'd, again, then as a script: compiled once, loaded twice; a changed global compiles anew."""
    first = _run(tmp_path, width=1.0)
    assert first["compiled"] > 0
    np.testing.assert_allclose(first["grad"], _expected_grad(1.0), rtol=1e-8)

    again = _run(tmp_path, width=1.0)          # a new process: the kernels come from the cache
    assert again["compiled"] == 0
    assert again["grad"] == first["grad"]
    script = _run(tmp_path, width=1.0, by_exec=False)   # the same code at a script's top level (__main__)
    assert script["compiled"] == 0
    assert script["grad"] == first["grad"]

    wider = _run(tmp_path, width=2.0)          # same code, another value read from a global
    assert wider["compiled"] > 0, "a changed global must not load the kernels compiled for the old value"
    np.testing.assert_allclose(wider["grad"], _expected_grad(2.0), rtol=1e-8)


def _key(*functions):
    return table.code_key("family", functions)


def test_the_key_follows_the_values_the_code_reads():
    def make(scale):
        def primitive(x, a):
            return scale * x
        return primitive

    assert _key(make(2.0)) == _key(make(2.0))              # closures: by value
    assert _key(make(2.0)) != _key(make(3.0))

    namespace = {}
    source = "import math\nK = {k}\ndef p(x, a):\n    return math.tanh(K * a * x)\n"
    exec(source.format(k=1.5), namespace)
    before = _key(namespace["p"])
    exec(source.format(k=1.5), namespace)
    assert _key(namespace["p"]) == before                    # same code and values
    exec(source.format(k=2.5), namespace)
    assert _key(namespace["p"]) != before                    # a global's value
    namespace["math"] = np                                   # a module, by its name
    assert _key(namespace["p"]) != before


def test_the_key_follows_a_compiled_helper_and_arrays():
    source = ("@numba.njit\ndef helper(x):\n    return x * {c}\n"
              "TABLE = np.array([1.0, 2.0])\n"
              "def p(x, a):\n    return helper(x) + TABLE[0] * a\n")

    def define(c):
        namespace = {"numba": numba, "np": np, "__name__": __name__}   # the helper's module can be imported
        exec(source.format(c=c), namespace)
        return namespace

    namespace = define(2.0)
    first = _key(namespace["p"])
    assert _key(define(2.0)["p"]) == first                  # another helper object, the same code
    assert _key(define(3.0)["p"]) != first                  # the helper's code
    namespace["TABLE"] = np.array([1.0, 3.0])
    assert _key(namespace["p"]) != first                     # an array's contents
    namespace["TABLE"] = np.array([1.0, 2.0])
    assert _key(namespace["p"]) == first


def test_a_value_without_a_fingerprint_makes_the_key_unique_to_the_process():
    class Opaque:
        pass

    namespace = {"THING": Opaque()}
    exec("def p(x, a):\n    return THING\n", namespace)
    first = _key(namespace["p"])
    namespace["THING"] = Opaque()
    assert _key(namespace["p"]) != first
    assert table._PROCESS_TOKEN in repr(table._fingerprint(namespace["p"], set()))
