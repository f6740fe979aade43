"""Solutions to the exercises of notebook 01 (autograd from scratch)."""
import numpy as np

from minisnn import Function, Tensor


# Exercise 1: SiLU as a Function.
class SiLU(Function):
    """y = x·σ(x);  dy/dx = σ(x)·(1 + x·(1 − σ(x)))."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (0.5 * (1.0 + np.tanh(0.5 * x)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        sig = 0.5 * (1.0 + np.tanh(0.5 * x))
        return g * sig * (1.0 + x * (1.0 - sig))


# Exercise 2: the forward difference (f(x+ε) − f(x))/ε errs by ε|f''|/2 (slope 1 on log-log axes)
# plus a rounding error of about 2u|f|/ε; the two balance at ε ≈ 2·sqrt(u|f|/|f''|) ≈ 5e-8 for softplus at 0.7.
FORWARD_DIFFERENCE_SLOPE = 1.0
FORWARD_DIFFERENCE_BEST_EPS = 5e-8


# Exercise 3: accumulate the gradient of a mean loss over micro-batches.
def accumulated_grad(w, X, y, n_micro):
    """dL/dw for L = mean((X w − y)²), from one backward call per micro-batch and no zero_grad in between.

    Each micro-batch's loss is its sum of squares divided by the FULL batch size, so the
    accumulated gradients add up to the full batch's mean-loss gradient.
    """
    w = Tensor(w, requires_grad=True)
    for rows in np.array_split(np.arange(len(y)), n_micro):
        residual = Tensor(X[rows]) @ w - Tensor(y[rows])
        ((residual * residual).sum() / len(y)).backward()     # .grad accumulates
    return w.grad


CHECKED = {
    "check_01_silu": (SiLU,),
    "check_01_forward_difference": (FORWARD_DIFFERENCE_SLOPE, FORWARD_DIFFERENCE_BEST_EPS),
    "check_01_accumulate": (accumulated_grad,),
}
