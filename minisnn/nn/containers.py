"""Sequential and ModuleList: children registered under the keys "0", "1", ... (as PyTorch)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

from .module import Module


def _check_module(m, owner: str) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{owner} holds Modules only, got {type(m).__name__}")
    return m


class ModuleList(Module):
    """A list of sub-modules whose parameters appear in the state_dict as "<index>.<name>"."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx: int) -> int:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return idx % n

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(self._index(idx))]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, str(self._index(idx)), _check_module(module, type(self).__name__))

    def __delitem__(self, idx) -> None:
        items = list(self._modules.values())
        del items[idx if isinstance(idx, slice) else self._index(idx)]
        for key in list(self._modules):
            delattr(self, key)
        for i, m in enumerate(items):
            setattr(self, str(i), m)

    def append(self, module: Module) -> "ModuleList":
        setattr(self, str(len(self)), _check_module(module, type(self).__name__))
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, _check_module(module, type(self).__name__))
        for key in list(self._modules):
            delattr(self, key)
        for i, m in enumerate(items):
            setattr(self, str(i), m)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it instead")


class Sequential(ModuleList):
    """Chain of modules: forward(x) = m_{n−1}(… m_1(m_0(x))).

    Sequential(m0, m1, ...) names the children "0", "1", ...;
    Sequential(OrderedDict(name=module, ...)) keeps the given names.
    """

    def __init__(self, *modules):
        Module.__init__(self)
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                setattr(self, name, _check_module(m, "Sequential"))
        elif len(modules) == 1 and isinstance(modules[0], list):
            self.extend(modules[0])
        else:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[self._index(idx)]
        setattr(self, key, _check_module(module, "Sequential"))

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x
