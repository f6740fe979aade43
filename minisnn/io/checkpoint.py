"""Load, save and describe checkpoints: torch.save zip files and safetensors, no torch needed.

    sd = load_checkpoint("model_best.pth.tar")   # StateDict: name -> np.ndarray
    sd.source, sd.dropped                         # "torch-zip['state_dict']", ['epoch', 'arch', ...]
    model.load_state_dict(sd)
    save_checkpoint(model.state_dict(), "weights.safetensors")
    print(describe_checkpoint("model_best.pth.tar"))

Training scripts wrap the weights: timm's CheckpointSaver writes {'state_dict': ...,
'optimizer', 'epoch', 'arch', 'args', ...}, MAE-style savers {'model': ...}.  The loader
picks the wrapper, reads only its tensors (never the optimizer's), strips the
'module.' prefix that DataParallel adds, and records what it left out.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .dtypes import itemsize
from .errors import CheckpointError, display_path
from .files import file_size, fs_path, open_regular
from .safetensors import SafetensorRef, SafetensorsReader, write_safetensors
from .torch_zip import TorchZipReader, write_torch_zip
from .unpickler import PickledNamespace, TensorRef

# Keys under which training scripts store the model weights, most specific first.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "network",
                "state_dict_ema", "model_ema")
TORCH_SUFFIXES = (".pth.tar", ".pt", ".pth", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
PREFIX = "module."
_TENSOR_REFS = (TensorRef, SafetensorRef)


class StateDict(OrderedDict):
    """`dict[str, np.ndarray]` in file order, plus where it came from.

    `source`: format and wrapper key, e.g. "torch-zip['state_dict']" or "safetensors".
    `dropped`: keys left out (top-level wrapper entries like 'optimizer', or non-tensor values).
    `stripped_prefix`: "module." if that prefix was removed from the names, else None.
    """

    def __init__(self, items=(), source: str = "", dropped=(), stripped_prefix: str | None = None):
        super().__init__(items)
        self.source = source
        self.dropped = list(dropped)
        self.stripped_prefix = stripped_prefix

    def num_elements(self) -> int:
        return sum(int(a.size) for a in self.values())

    def summary(self) -> str:
        """One line: count, elements, source and dropped keys."""
        line = f"{len(self)} tensors, {self.num_elements():,} elements from {self.source}"
        if self.stripped_prefix:
            line += f", stripped '{self.stripped_prefix}'"
        if self.dropped:
            line += f"; dropped: {', '.join(self.dropped)}"
        return line


# -------------------------------------------------------------------- format
def detect_format(path) -> str:
    """'torch-zip' or 'safetensors' from the file's first bytes; CheckpointError otherwise.

    `path` may be a str, bytes or os.PathLike; anything but a regular file is refused unopened.
    """
    path = fs_path(path)
    with open_regular(path, CheckpointError) as f:
        head = f.read(512)
        size = file_size(f)
    if not head:
        raise CheckpointError(path, "file is empty")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "torch-zip"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if head[:2] == b"\x80\x02" and b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" in head[:32]:
        raise CheckpointError(path, "is in the legacy (pre-1.6) torch.save format, which is not supported; "
                              "re-save it with a recent torch (torch.save(torch.load(path), new_path))")
    if head[257:262] == b"ustar":
        raise CheckpointError(path, "is a tar archive (the oldest torch.save format), which is not supported")
    if head[:6] == b"\x93NUMPY":
        raise CheckpointError(path, "is a NumPy .npy file, not a checkpoint; load it with numpy.load")
    found = "it is a text file" if _looks_like_text(head) else f"it starts with bytes {head[:8]!r}"
    raise CheckpointError(path, "is not a torch zip checkpoint (.pt/.pth/.bin/.pth.tar) or a "
                          f".safetensors file: {found}")


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(b >= 32 or b in (9, 10, 13) for b in head)


def _open_reader(path):
    return TorchZipReader(path) if detect_format(path) == "torch-zip" else SafetensorsReader(path)


# -------------------------------------------------------------- unwrapping
def _is_tensor_mapping(value) -> bool:
    return isinstance(value, Mapping) and any(isinstance(v, _TENSOR_REFS) for v in value.values())


def _select(tree, path: str, key: str | None):
    """(wrapper key or None, mapping holding the weights, dropped top-level keys)."""
    if isinstance(tree, PickledNamespace):
        tree = getattr(tree, "fields", {})
    if not isinstance(tree, Mapping):
        raise CheckpointError(path, f"holds a {type(tree).__name__}, not a dict of tensors")
    if key is not None:
        if key not in tree:
            shown = [str(k) for _, k in zip(range(20), tree)] + (["..."] if len(tree) > 20 else [])
            raise CheckpointError(path, f"has no key {key!r}; top-level keys: {', '.join(shown)}")
        wrapper = key
    else:
        wrapper = next((k for k in WRAPPER_KEYS if _is_tensor_mapping(tree.get(k))), None)
    if wrapper is None:
        return None, tree, []
    if not isinstance(tree[wrapper], Mapping):
        raise CheckpointError(path, f"entry {wrapper!r} is a {type(tree[wrapper]).__name__}, not a dict of tensors")
    return wrapper, tree[wrapper], [str(k) for k in tree if k != wrapper]


def _weight_refs(weights: Mapping, path: str, wrapper: str | None):
    """(name -> ref in file order, dropped non-tensor names, stripped prefix or None).

    The 'module.' prefix (DataParallel) is removed only when every tensor name carries it and
    no name would become empty, so a lone key that happens to start with it is kept as is.
    """
    tensors: list = []
    dropped = []
    for name, value in weights.items():
        label = f"{wrapper}.{name}" if wrapper else str(name)
        if not isinstance(value, _TENSOR_REFS):
            dropped.append(label)
            continue
        if not isinstance(name, str):
            raise CheckpointError(path, f"tensor key {name!r} is not a string")
        tensors.append((name, value))
    if not tensors:
        raise CheckpointError(path, "contains no tensors" + (f" under {wrapper!r}" if wrapper else ""))
    strip = all(n.startswith(PREFIX) and len(n) > len(PREFIX) for n, _ in tensors)
    refs: OrderedDict[str, object] = OrderedDict()
    for name, value in tensors:
        if strip:
            name = name[len(PREFIX):]
        if name in refs:
            raise CheckpointError(path, f"two tensors are named {name!r} once the '{PREFIX}' prefix is removed")
        refs[name] = value
    return refs, dropped, (PREFIX if strip else None)


def _source_label(fmt: str, wrapper: str | None) -> str:
    return fmt + (f"[{wrapper!r}]" if wrapper else "")


# ---------------------------------------------------------------- public API
def load_checkpoint(path, *, key: str | None = None, verbose: bool = False) -> StateDict:
    """Read the weights of a torch.save zip (.pt/.pth/.bin/.pth.tar) or .safetensors file.

    The format comes from the file's content.  Weights are taken from the first wrapper
    key present among WRAPPER_KEYS (or from `key`), else from the top level.  Returns a
    StateDict of np.ndarray (bfloat16 becomes float32 exactly); nothing in the file is
    executed.  Raises CheckpointError (a ValueError) for corrupt or unsupported files.
    """
    path = fs_path(path)
    fmt = detect_format(path)
    with _open_reader(path) as reader:
        wrapper, weights, dropped = _select(reader.load(), path, key)
        refs, dropped_inside, stripped = _weight_refs(weights, path, wrapper)
        arrays = reader.read_tensors(list(refs.values()))
    state = StateDict(zip(refs, arrays), source=_source_label(fmt, wrapper),
                      dropped=dropped + dropped_inside, stripped_prefix=stripped)
    if verbose:
        print(f"load_checkpoint({display_path(path)}): {state.summary()}")
    return state


def _state_arrays(state_dict) -> "OrderedDict[str, np.ndarray]":
    if hasattr(state_dict, "state_dict") and callable(state_dict.state_dict):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save_checkpoint expects a mapping of name -> array (or a Module), got "
                        f"{type(state_dict).__name__}")
    out = OrderedDict()
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"state_dict keys must be strings, got {name!r}")
        array = np.asarray(getattr(value, "data", value)) if not isinstance(value, np.ndarray) else value
        if array.dtype.kind not in "biufc":
            raise TypeError(f"state_dict[{name!r}] has dtype {array.dtype}; expected a numeric or bool array")
        out[name] = array
    return out


def save_checkpoint(state_dict, path) -> None:
    """Write name -> array (or a Module's state_dict) to `path`; format from the suffix.

    `.safetensors` -> safetensors; `.pt`, `.pth`, `.bin`, `.pth.tar` -> torch zip that
    `torch.load(path, weights_only=True)` reads back bit for bit.
    """
    arrays = _state_arrays(state_dict)
    name = Path(fs_path(path)).name.lower()
    if name.endswith(SAFETENSORS_SUFFIX):
        write_safetensors(arrays, path)
    elif name.endswith(TORCH_SUFFIXES):
        write_torch_zip(arrays, path)
    else:
        raise ValueError(f"cannot tell the checkpoint format from {display_path(path)!r}: use a "
                         f"{SAFETENSORS_SUFFIX} or {'/'.join(TORCH_SUFFIXES)} suffix")


def _format_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _plain_value(value) -> str | None:
    if isinstance(value, int) and value.bit_length() > 128 or isinstance(value, str) and len(value) > 40:
        return None
    if isinstance(value, (bool, int, float, str)) and len(repr(value)) <= 40:
        return repr(value)
    return None


def describe_checkpoint(path, *, key: str | None = None) -> str:
    """Readable multi-line summary: format, wrapper, tensor count, dtypes, parameters, dropped keys.

    Reads only the headers and data.pkl, never tensor data.
    """
    path = fs_path(path)
    fmt = detect_format(path)
    with _open_reader(path) as reader:
        tree = reader.load()
        wrapper, weights, dropped = _select(tree, path, key)
        refs, dropped_inside, stripped = _weight_refs(weights, path, wrapper)
    top = getattr(tree, "fields", tree)
    dtypes = Counter(ref.dtype for ref in refs.values())
    elements = sum(ref.numel for ref in refs.values())
    nbytes = sum(ref.numel * itemsize(ref.dtype) for ref in refs.values())
    largest = max(refs, key=lambda k: refs[k].numel)
    lines = [
        display_path(path),
        f"  format: {fmt}" + (f", weights under {wrapper!r}" if wrapper else ", plain state dict"),
        f"  {len(refs)} tensors, {elements:,} elements, {_format_bytes(nbytes)} of tensor data",
        "  dtypes: " + ", ".join(f"{d} x{n}" for d, n in dtypes.most_common()),
        f"  largest: {largest} {tuple(refs[largest].shape)}",
    ]
    if stripped:
        lines.append(f"  prefix '{stripped}' stripped from the names")
    if dropped:
        shown = []
        for k in dropped:
            plain = _plain_value(top.get(k)) if isinstance(top, Mapping) else None
            shown.append(f"{k}={plain}" if plain is not None else k)
        lines.append("  dropped top-level keys: " + ", ".join(shown))
    if dropped_inside:
        lines.append(f"  dropped non-tensor entries: {', '.join(dropped_inside)}")
    return "\n".join(lines)
