"""Bad input fails early with one clear ValueError/TypeError that says what was expected."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import Tensor
from minisnn import functional as F


def t(*shape, requires_grad=False):
    return Tensor(np.ones(shape), requires_grad=requires_grad)


def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, f"error message spans several lines: {msg!r}"
    return msg


# ------------------------------------------------------------------------------------- matmul

@pytest.mark.parametrize("a, b", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((5, 2, 3), (4, 5))])
def test_matmul_inner_size_mismatch(a, b):
    with pytest.raises(ValueError) as info:
        F.matmul(t(*a), t(*b))
    msg = one_line(info)
    assert "matmul shape mismatch" in msg and str(a) in msg and str(b) in msg


def test_matmul_batch_mismatch():
    with pytest.raises(ValueError) as info:
        t(2, 3, 4) @ t(5, 4, 6)
    assert "batch" in one_line(info)


def test_matmul_scalar_operand():
    with pytest.raises(ValueError, match="at least one dimension"):
        F.matmul(Tensor(np.array(2.0)), t(3))


# ------------------------------------------------------------------------------------- shapes

def test_reshape_size_mismatch():
    with pytest.raises(ValueError) as info:
        t(2, 3).reshape(4, 2)
    msg = one_line(info)
    assert "(2, 3)" in msg and "6 elements" in msg and "(4, 2)" in msg


@pytest.mark.parametrize("axes", [(0, 0, 1), (0, 1), (0, 1, 3), (0, 1, 2, 3)])
def test_permute_bad_axes(axes):
    with pytest.raises(ValueError) as info:
        t(2, 3, 4).permute(axes)
    assert "permute" in one_line(info)


def test_broadcast_to_incompatible():
    with pytest.raises(ValueError) as info:
        F.broadcast_to(t(3, 2), (3, 4))
    assert "(3, 2)" in one_line(info)


def test_concatenate_and_stack_errors():
    with pytest.raises(ValueError, match="at least one"):
        F.concatenate([])
    with pytest.raises(ValueError, match="at least one"):
        F.stack([])
    with pytest.raises(ValueError, match="0-d"):
        F.concatenate([Tensor(np.array(1.0)), Tensor(np.array(2.0))])
    with pytest.raises(ValueError):
        F.concatenate([t(2, 3), t(2, 4)], axis=0)


def test_pad_errors():
    with pytest.raises(ValueError, match="pad_width has 1 entries"):
        F.pad(t(2, 3), ((1, 1),))
    with pytest.raises(ValueError, match=">= 0"):
        F.pad(t(2, 3), ((1, 1), (-1, 0)))


# -------------------------------------------------------------------------------- reductions

def test_reduction_axis_out_of_range():
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        t(2, 3).sum(axis=3)
    with pytest.raises(ValueError, match="axis -3 is out of range"):
        t(2, 3).mean(axis=(0, -3))


def test_max_of_empty_axis():
    with pytest.raises(ValueError, match="empty"):
        Tensor(np.ones((0, 3))).max(axis=0)


def test_var_with_too_few_elements():
    with pytest.raises(ValueError, match="ddof=1"):
        t(1, 3).var(axis=0, unbiased=True)


# -------------------------------------------------------------------------------- cross-entropy

@pytest.mark.parametrize("target, pattern", [
    (np.array([0, 3]), r"\[0, 2\]"),                      # class index too large
    (np.array([-1, 0]), r"\[0, 2\]"),                     # negative class index
    (np.array([0, 1, 2]), "do not match"),                # wrong batch size
    (np.array([[0, 1], [1, 0]]), "integer targets must have shape"),  # 2-D integer targets
    (np.ones((2, 4)) / 4, r"soft targets must have shape \[B, 3\]"),  # wrong number of classes
    (np.array([0.0, 1.0]), r"soft targets must have shape \[B, 3\]"),  # float labels
    (np.array(1), "do not match"),                        # 0-d target
    (np.array([True, False]), "booleans"),
    (np.array(["a", "b"]), "dtype"),
])
def test_cross_entropy_bad_targets(target, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern) as info:
        F.cross_entropy(t(2, 3, requires_grad=True), target)
    one_line(info)


def test_cross_entropy_bad_logits_and_options():
    with pytest.raises(ValueError, match=r"logits of shape \[B, K\]"):
        F.cross_entropy(t(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(t(2, 3), np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(t(2, 3), np.array([0, 1]), reduction="avg")


# ------------------------------------------------------------------------------------ tensor

@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_requires_grad_on_non_float_dtype(dtype):
    with pytest.raises(TypeError, match="floating-point") as info:
        Tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    assert str(np.dtype(dtype)) in one_line(info)
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.zeros(3, dtype=dtype)).requires_grad_()


def test_non_numeric_data():
    with pytest.raises(TypeError, match="numeric"):
        Tensor(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="numeric"):
        Tensor([object()])


def test_backward_on_non_scalar_without_gradient():
    with pytest.raises(ValueError) as info:
        (t(2, 3, requires_grad=True) * 2).backward()
    msg = one_line(info)
    assert "(2, 3)" in msg and "gradient" in msg


def test_backward_with_wrong_gradient_shape():
    with pytest.raises(ValueError, match=r"gradient shape \(3,\) does not match tensor shape \(2, 3\)"):
        (t(2, 3, requires_grad=True) * 2).backward(np.ones(3))


def test_backward_without_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (t(2) * 2).sum().backward()


def test_binary_op_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match="broadcast"):
        t(2, 3) + t(4)
