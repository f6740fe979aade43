"""Where the CIFAR batches live.

Search order (the first one that is set is the only one looked at):

1. the `data_dir` argument (the `--data-dir` option);
2. the environment variable `MINISNN_DATA_DIR`;
3. the cache folder `$XDG_CACHE_HOME/minisnn`, or `~/.cache/minisnn` when XDG_CACHE_HOME is unset.

When neither 1 nor 2 is set and the cache holds nothing, `get_datasets(fallback_dir=...)`
tries one more folder the caller knows of (`minisnn eval`: the one the checkpoint recorded),
then the embedded sample.

A directory may be given either as the folder *containing* `cifar-10-batches-py/`
or as `cifar-10-batches-py/` itself (the same for `cifar-100-python/`).
"""
from __future__ import annotations

import os
from pathlib import Path

from .cifar import REQUIRED_FILES

ENV_VAR = "MINISNN_DATA_DIR"
DOWNLOAD_HINT = {
    "cifar10": "run `minisnn download cifar10` or pass --data-dir DIR (the folder containing cifar-10-batches-py/)",
    "cifar100": "run `minisnn download cifar100` or pass --data-dir DIR (the folder containing cifar-100-python/)",
}


class DataNotFoundError(FileNotFoundError):
    """The dataset is not where it was looked for.  `origin` says which setting pointed there."""

    def __init__(self, message: str, origin: str):
        super().__init__(message)
        self.origin = origin


def check_dataset_name(dataset: str) -> str:
    if dataset not in REQUIRED_FILES:
        raise ValueError(f"dataset must be one of {', '.join(REQUIRED_FILES)}, got {dataset!r}")
    return dataset


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/minisnn`, or `~/.cache/minisnn`."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    return (Path(base) if base else Path.home() / ".cache") / "minisnn"


def resolve_root(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The directory to search and where it came from: '--data-dir', 'MINISNN_DATA_DIR' or 'cache'."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "--data-dir"
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser(), ENV_VAR
    return default_cache_dir(), "cache"


def _missing(folder: Path, files: list[str]) -> list[str]:
    return [name for name in files if not (folder / name).is_file()]


def find_dataset_dir(data_dir: str | os.PathLike | None = None, dataset: str = "cifar10") -> Path:
    """The folder holding the batch files (e.g. `.../cifar-10-batches-py`).

    Raises DataNotFoundError with a message that says where it looked and how to get the data.
    """
    folder_name, files = REQUIRED_FILES[check_dataset_name(dataset)]
    root, origin = resolve_root(data_dir)
    for candidate in (root / folder_name, root):
        if candidate.is_dir() and not _missing(candidate, files):
            return candidate
    where = {"--data-dir": "--data-dir", ENV_VAR: f"${ENV_VAR}", "cache": "the cache folder"}[origin]
    detail = ""
    for candidate in (root / folder_name, root):
        missing = _missing(candidate, files)
        if candidate.is_dir() and len(missing) < len(files):
            detail = f" ({candidate} lacks {', '.join(missing)})"
            break
    raise DataNotFoundError(
        f"{dataset} not found in {root} (from {where}){detail}; {DOWNLOAD_HINT[dataset]}", origin
    )
