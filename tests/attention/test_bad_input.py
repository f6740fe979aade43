"""Bad input gives one clear ValueError/TypeError naming what was wrong and what was expected."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import Tensor
from minisnn.attention import head_column_sum, head_token_mask, ssa


def t(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("q, k, v, match", [
    (t(2, 5, 4), t(2, 5, 3), t(2, 5, 4), "same feature size d"),
    (t(2, 5, 4), t(2, 6, 4), t(2, 5, 4), "same number of tokens"),
    (t(2, 5, 4), t(3, 5, 4), t(3, 5, 4), "leading axes"),
    (t(2, 5, 4), t(2, 5, 4), t(2, 2, 5, 4), "leading axes"),
    (t(4), t(4), t(4), "at least 2 dimensions"),
])
def test_ssa_shape_errors(q, k, v, match):
    with pytest.raises(ValueError, match=match):
        ssa(q, k, v)


def test_ssa_type_errors():
    q = t(2, 5, 4)
    with pytest.raises(TypeError, match="share one float dtype.*float32.*float64"):
        ssa(q, q, t(2, 5, 4, dtype=np.float64))
    with pytest.raises(TypeError, match="float32 or float64, got dtype int64"):
        ssa(Tensor(np.zeros((2, 5, 4), np.int64)), q, q)
    with pytest.raises(TypeError, match="Tensor or ndarray.*got list"):
        ssa([[0.0]], q, q)
    with pytest.raises(TypeError, match="scale must be a real number"):
        ssa(q, q, q, scale="0.125")


def test_column_sum_errors():
    with pytest.raises(ValueError, match="C=6 .* divisible by heads=4"):
        head_column_sum(t(2, 6, 5), 4)
    with pytest.raises(ValueError, match="heads must be positive"):
        head_column_sum(t(2, 6, 5), 0)
    with pytest.raises(TypeError, match="heads must be an int"):
        head_column_sum(t(2, 6, 5), 2.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        head_column_sum(t(6), 2)


def test_token_mask_errors():
    with pytest.raises(ValueError, match="C=6 .* divisible by heads=4"):
        head_token_mask(t(2, 4, 5), t(2, 6, 5), 4)
    with pytest.raises(ValueError, match=r"a must have shape \(2, 3, 5\)"):
        head_token_mask(t(2, 2, 5), t(2, 6, 5), 3)
    with pytest.raises(ValueError, match=r"a must have shape \(2, 3, 5\)"):
        head_token_mask(t(2, 3, 4), t(2, 6, 5), 3)
    with pytest.raises(TypeError, match="share one float dtype"):
        head_token_mask(t(2, 3, 5, dtype=np.float64), t(2, 6, 5), 3)


def test_arrays_are_accepted_and_dtype_kept():
    """Plain float arrays work too (no graph is recorded), and float64 stays float64."""
    x = np.ones((2, 8, 4))
    z = ssa(x, x, x)
    assert isinstance(z, Tensor) and z.dtype == np.float64 and not z.requires_grad
    np.testing.assert_array_equal(z.data, np.full((2, 8, 4), 8 * 4 * 0.125))
    assert head_column_sum(np.ones((3, 6, 2), np.float32), 2).dtype == np.float32
