"""Errors raised while reading or writing checkpoint (and other input) files."""
from __future__ import annotations

import os


def display_path(path) -> str:
    """`path` (str, bytes or os.PathLike) as printable text: bytes that are not UTF-8 appear as \\xNN."""
    try:
        text = os.fsdecode(os.fspath(path))
    except TypeError:
        text = str(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class InputFileError(ValueError):
    """A file given to a minisnn reader is refused: the wrong kind of file, corrupt, hostile or too large.

    The message is one line, "<path>: <problem>"; `path` and `problem` are kept as attributes.
    """

    def __init__(self, path, problem: str):
        self.path = display_path(path)
        self.problem = " ".join(str(problem).splitlines())
        super().__init__(f"{self.path}: {self.problem}")


class CheckpointError(InputFileError):
    """A checkpoint file is corrupt, truncated, of an unknown format or unsupported.

    The message always starts with the file path and says what is wrong.
    """


class UnsafeCheckpointError(CheckpointError):
    """The pickle inside a checkpoint asks for a Python global that is not on the allow-list.

    Nothing from the file was executed; `global_name` is the offending `module.name`.
    """

    def __init__(self, path, global_name: str):
        self.global_name = global_name
        super().__init__(
            path,
            f"refusing to load global '{global_name}' from the pickle: only tensors and plain "
            "containers (dict, list, tuple, numbers, strings) are allowed, so nothing in the "
            "file is executed; a checkpoint holding a whole pickled model or arbitrary objects "
            "must be re-saved as a state_dict",
        )
