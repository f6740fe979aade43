"""What minisnn's pickle machine accepts: dict keys, nesting depth, and short descriptions of values.

Two things make innocent-looking pickles dangerous once loaded: keys whose hashes collide
(a dict of n such keys takes n**2 time to build) and deep nesting (hashing, printing or
comparing a tuple nested a million deep overflows the C stack and kills the process).
`check_key` admits only keys whose hashes cannot be made to collide, and `check_nesting`
measures the depth of a loaded object without recursion, before anything else touches it.
`brief` describes an untrusted value for an error message without looking inside it.
"""
from __future__ import annotations

from collections import OrderedDict

MAX_DEPTH = 100              # containers inside containers, counted from the outermost
KEY_INT_LIMIT = 2**61 - 1    # |int key| below this: hash(k) == k (except hash(-1) == -2)
CONTAINERS = (list, tuple, dict, set, frozenset, OrderedDict)
_END = object()              # marks the end of an iterator in check_nesting
_LEAVES = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray})


class PickleRefused(ValueError):
    """A pickle that is malformed, truncated, or asks for something the machine does not do."""


def brief(value, limit: int = 60) -> str:
    """A short one-line description of an untrusted value (never recursive, never a huge repr)."""
    if value is None or isinstance(value, (bool, float, complex)):
        text = repr(value)
    elif isinstance(value, int):
        text = repr(value) if value.bit_length() <= 64 else f"an int of {value.bit_length()} bits"
    elif isinstance(value, (str, bytes, bytearray)):
        text = repr(value[:limit]) + ("..." if len(value) > limit else "")
    elif isinstance(value, CONTAINERS):
        text = f"a {type(value).__name__} of {len(value)} items"
    else:
        text = f"a {type(value).__name__}"
    return text.replace("\n", "\\n")


def check_key(key, what: str = "dict key") -> None:
    """TypeError unless `key` is a str, bytes, bool, None or an int of magnitude below 2**61 - 1."""
    kind = type(key)
    if kind is str or kind is bytes or kind is bool or key is None:
        return
    if kind is int and -KEY_INT_LIMIT < key < KEY_INT_LIMIT:
        return
    raise TypeError(f"{what} {brief(key)} is not allowed: keys must be str, bytes, bool, None or ints "
                    "smaller than 2**61 in magnitude")


def check_nesting(root) -> None:
    """PickleRefused if containers nest deeper than MAX_DEPTH or contain themselves (no recursion).

    A depth-first walk with an explicit stack; each container's depth (1 + its deepest child)
    is computed once, so shared sub-trees cost nothing more and the walk is linear.
    """
    def nested(x) -> bool:
        return isinstance(x, CONTAINERS) or hasattr(type(x), "pickle_children")

    def children(x):
        items = x.values() if isinstance(x, dict) else x if isinstance(x, CONTAINERS) else x.pickle_children()
        return iter(()) if _LEAVES.issuperset(map(type, items)) else iter(items)  # the first test runs in C

    if not nested(root):
        return
    depth: dict[int, int] = {}                      # id -> depth of a finished container
    path = [[root, children(root), 0]]              # [container, its children, deepest child so far]
    on_path = {id(root)}
    while path:
        frame = path[-1]
        child = next(frame[1], _END)
        if child is _END:
            path.pop()
            on_path.discard(id(frame[0]))
            depth[id(frame[0])] = frame[2] + 1
            if frame[2] + 1 > MAX_DEPTH:
                raise PickleRefused(f"containers are nested more than {MAX_DEPTH} deep")
            if path:
                path[-1][2] = max(path[-1][2], frame[2] + 1)
        elif not nested(child):
            continue
        elif id(child) in on_path:
            raise PickleRefused(f"the pickle builds a {type(child).__name__} that contains itself")
        elif id(child) in depth:
            frame[2] = max(frame[2], depth[id(child)])
        elif len(path) >= MAX_DEPTH:
            raise PickleRefused(f"containers are nested more than {MAX_DEPTH} deep")
        else:
            path.append([child, children(child), 0])
            on_path.add(id(child))
