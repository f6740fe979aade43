"""Errors raised while reading or writing checkpoint files."""
from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, of an unknown format or unsupported.

    The message always starts with the file path and says what is wrong.
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


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
