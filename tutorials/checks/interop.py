"""Checkers for notebooks 13 and 14: the round trip to PyTorch, your own neuron and surrogate.

PyTorch is optional for minisnn, so the checkers that need it import it when they run.
"""
from __future__ import annotations

import numpy as np

from minisnn import models
from minisnn.nn import init

from .verdict import Wrong, checker


# ----------------------------------------------------------------------------- 13 round trip to PyTorch

@checker
def check_13_largest_difference(largest_difference):
    """`largest_difference(model, module)`: max |difference| over the state_dicts; KeyError when the keys differ."""
    import torch  # optional dependency: only this checker needs it

    from minisnn.torch import to_torch

    init.manual_seed(3)
    model = models.create("dysvit-tiny", dim=16, depth=1, heads=2).to_dtype(np.float64)
    module = to_torch(model)
    got = float(largest_difference(model, module))
    if got != 0.0:
        raise Wrong(f"a fresh to_torch copy is equal bit for bit, you found a difference of {got}")
    with torch.no_grad():
        module.state_dict()["blocks.0.mlp.fc2.bias"][5] += 0.25
        module.state_dict()["norm.num_batches_tracked"] += 3
    got = float(largest_difference(model, module))
    if got != 3.0:
        raise Wrong(f"after changing one bias by 0.25 and num_batches_tracked by 3 the answer is 3.0, you gave {got}")
    partial = torch.nn.Module()
    partial.state_dict = lambda: {k: v for k, v in module.state_dict().items() if k != "head.bias"}
    try:
        largest_difference(model, partial)
    except KeyError as err:
        if "head.bias" not in str(err):
            raise Wrong(f"the KeyError should name the missing key 'head.bias', it says {err}") from None
    else:
        raise Wrong("a module without 'head.bias' should raise a KeyError naming it")
    return "0 for a fresh copy, the largest change otherwise, integer buffers included; missing keys named"


@checker
def check_13_buffer_count(count):
    """`count`: the number of buffers (state_dict entries that are not parameters) of dysvit-tiny."""
    model = models.create("dysvit-tiny")
    expected = len(model.state_dict()) - len(list(model.named_parameters()))
    if int(count) != expected:
        raise Wrong(f"{count}: count the state_dict entries that named_parameters() does not list")
    return f"{expected}: running_mean, running_var and num_batches_tracked of each of its {expected // 3} BatchNorms"
