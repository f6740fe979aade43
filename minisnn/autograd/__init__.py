"""The autograd-lite engine: `Tensor`, `Function`, grad mode and `gradcheck`."""
from .tensor import Tensor
from .function import Function, Context
from .grad_mode import no_grad, enable_grad, is_grad_enabled
from .broadcast import unbroadcast

__all__ = ["Tensor", "Function", "Context", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast"]
