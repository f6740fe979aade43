"""Checkers for the exercises of the tutorial notebooks.

Call a checker with your answer: it prints ``right: ...`` or ``wrong: ...`` (saying where and why)
and returns True or False.  Every checker works out the expected answer itself, from NumPy or from
the library object the exercise is about, on inputs you do not choose.  A function that still
raises ``NotImplementedError`` (the notebooks' empty exercise cells do) is reported as not
attempted, so the notebooks run from top to bottom before you solve anything.

The worked solutions live in ``tutorials/solutions/NN_*.py``;
``tests/test_tutorial_solutions.py`` runs each of them through its checker, and a wrong answer
through the same checker, so both verdicts are tested.
"""
from .models import (check_07_costs, check_07_max_entry, check_07_ssa_backward, check_08_attention_trains,
                     check_09_atan_d_alpha, check_10_cutmix, check_10_schedule_gap, check_11_global_names,
                     check_11_storage_classes)
from .neurons import (check_01_accumulate, check_01_forward_difference, check_01_silu, check_02_latency,
                      check_02_poisson_count, check_02_threshold, check_03_adaptive, check_03_no_decay_input,
                      check_03_soft_rate, check_04_channel_slope_grad, check_04_fast_sigmoid_d_alpha, check_04_mismatch,
                      check_05_soft_backward, check_05_tau_grad, check_06_soft_kernel)
from .practice import check_00_logit_gradient, check_00_model_input, check_00_quietest_layer
from .practice import check_12_gradient_reach, check_12_polarity_events, check_12_t1_ceiling
from .interop import check_13_buffer_count, check_13_largest_difference
from .interop import check_14_failing_checks, check_14_firing_gaps, check_14_tanh_derivatives

__all__ = [
    "check_00_model_input", "check_00_quietest_layer", "check_00_logit_gradient",
    "check_01_silu", "check_01_forward_difference", "check_01_accumulate",
    "check_02_latency", "check_02_threshold", "check_02_poisson_count",
    "check_03_no_decay_input", "check_03_soft_rate", "check_03_adaptive",
    "check_04_fast_sigmoid_d_alpha", "check_04_mismatch", "check_04_channel_slope_grad",
    "check_05_tau_grad", "check_05_soft_backward",
    "check_06_soft_kernel",
    "check_07_max_entry", "check_07_costs", "check_07_ssa_backward",
    "check_08_attention_trains",
    "check_09_atan_d_alpha",
    "check_10_cutmix", "check_10_schedule_gap",
    "check_11_storage_classes", "check_11_global_names",
    "check_12_polarity_events", "check_12_gradient_reach", "check_12_t1_ceiling",
    "check_13_largest_difference", "check_13_buffer_count",
    "check_14_tanh_derivatives", "check_14_firing_gaps", "check_14_failing_checks",
]
