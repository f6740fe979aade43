"""Compute kernels: the only place with `@numba.njit` code.  Kernels know nothing of autograd.

Every kernel exists twice, with the same name and signature:

* `minisnn.kernels.reference.<module>.<name>`: a readable NumPy version, the specification;
* `minisnn.kernels.jit.<module>.<name>`: a Numba version (`cache=True`, no fastmath in
  threshold or surrogate code), which must agree with the reference.

The rest of the library calls kernels through this package, looking the name up at each call
(`kernels.lif_forward(...)`), so one switch picks the implementation for everything:

    MINISNN_KERNELS=reference python ...      # run the whole library on the NumPy references
    minisnn.kernels.set_backend("reference")  # the same at run time ("jit" to go back)

The kernel names below are imported from the references, so a reader (or an IDE) following
`kernels.lif_forward` lands on its specification.  `set_backend`, run once at import with the
environment's choice ("jit" unless MINISNN_KERNELS says otherwise), rebinds every one of these
names to the function of the same module and name in the chosen backend; the Numba modules are
imported only when "jit" is chosen.  Kernels assume valid, C-contiguous input: checking it is
the job of the public functions that call them (`docs/engineering.md`).

Adding a kernel: define it in `reference/<module>.py` and `jit/<module>.py`, list it in both
`__all__`, and add its name to the module's import line below (`tests/test_kernels_dispatch.py`
checks these lines against the modules' `__all__`).
"""
from __future__ import annotations

import importlib
import os
import sys

from .reference.attention import (head_column_sum_backward, head_column_sum_forward, head_token_mask_backward,
                                  head_token_mask_forward, ssa_backward, ssa_backward_interleaved, ssa_forward,
                                  ssa_forward_interleaved)
from .reference.bn_spike import bn_spike_backward, bn_spike_forward
from .reference.conv import col2im_rows, im2col_rows, swap_last_axes
from .reference.events import event_conv2d, event_matmul, event_row_pointers, event_weight_grad, gather_events
from .reference.finite import all_finite
from .reference.hypernet import slope_hypernet_backward, slope_hypernet_forward
from .reference.lif import lif_backward, lif_backward_saved, lif_forward, lif_forward_with_psi
from .reference.norm import (batch_norm_eval_backward, batch_norm_eval_forward, batch_norm_moments,
                             batch_norm_train_backward, batch_norm_train_dx, batch_norm_train_forward)
from .reference.pool import (max_pool2d_backward, max_pool2d_forward, max_pool2d_values,
                             max_pool2d_values_channels_last)
from .reference.spike import spike_backward_rows, spike_forward, surrogate_primitive_rows
from .reference.surrogate import spike_backward, surrogate_d_alpha, surrogate_derivative, surrogate_primitive
from .reference.winograd import winograd_input_tiles, winograd_output_tiles, winograd_output_tiles_adjoint

BACKENDS = ("jit", "reference")
# the kernel modules of each backend
MODULES = ("attention", "bn_spike", "conv", "events", "finite", "hypernet", "lif", "norm", "pool", "spike", "surrogate",
           "winograd")

_backend = ""


def set_backend(name: str) -> None:
    """Select `"jit"` (Numba, the default) or `"reference"` (NumPy) for every kernel."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}; choose one of {', '.join(BACKENDS)}")
    chosen: dict[str, object] = {}
    for module in MODULES:
        spec = importlib.import_module(f"{__name__}.reference.{module}")
        impl = importlib.import_module(f"{__name__}.{name}.{module}")
        missing = sorted(set(spec.__all__) - set(impl.__all__))
        if missing:
            raise RuntimeError(f"kernel backend {name!r} lacks {', '.join(missing)} (module {module})")
        chosen.update((kernel, getattr(impl, kernel)) for kernel in spec.__all__)
    this = sys.modules[__name__]
    for kernel, function in chosen.items():  # rebind the names imported above, one by one
        setattr(this, kernel, function)
    _backend = name


def backend() -> str:
    """The active backend name."""
    return _backend


def __getattr__(name: str):
    raise AttributeError(f"minisnn.kernels has no kernel {name!r} (backend {_backend!r})")


set_backend(os.environ.get("MINISNN_KERNELS", "jit").strip().lower() or "jit")
