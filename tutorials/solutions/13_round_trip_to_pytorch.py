"""Solutions to the exercises of notebook 13 (round trip to PyTorch)."""
import numpy as np

from minisnn import models


# Exercise 1: compare the key sets first, then every entry in float64 (integer buffers must not wrap around).
def largest_difference(model, module):
    ours, theirs = model.state_dict(), module.state_dict()
    for key in list(ours) + list(theirs):
        if key not in ours or key not in theirs:
            raise KeyError(f"{key!r} is in only one of the two state_dicts")
    as_float = {k: theirs[k].detach().cpu().numpy().astype(np.float64) for k in theirs}
    return max(float(np.abs(np.asarray(ours[k], np.float64) - as_float[k]).max()) for k in ours)


# Exercise 2: the state_dict entries that are not parameters: three per BatchNorm.
def buffer_count():
    model = models.create("dysvit-tiny")
    parameters = {name for name, _ in model.named_parameters()}
    return len([k for k in model.state_dict() if k not in parameters])


CHECKED = {
    "check_13_largest_difference": (largest_difference,),
    "check_13_buffer_count": (buffer_count(),),
}
