"""Loading never runs code from the file: hostile pickles are refused, naming the global."""
from __future__ import annotations

import os
import pickle
import subprocess
from collections import OrderedDict

import numpy as np
import pytest

from minisnn.io import CheckpointError, UnsafeCheckpointError, load_checkpoint, read_torch_zip, write_torch_zip
from minisnn.io.unpickler import ALLOWED_GLOBALS

from .zip_tools import read_records, write_zip


class System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Popen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return subprocess.Popen, (["touch", str(self.marker)],)


class Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


class Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


PAYLOADS = [(System, "posix.system"), (Popen, "subprocess.Popen"), (Eval, "builtins.eval"), (Exec, "builtins.exec")]


def _torch_like_zip(path, obj, protocol=2):
    write_zip(path, {"archive/data.pkl": pickle.dumps(obj, protocol=protocol), "archive/version": b"3\n"})


@pytest.mark.parametrize("payload, global_name", PAYLOADS)
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_hostile_global_is_refused_and_never_run(tmp_path, payload, global_name, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    _torch_like_zip(path, {"state_dict": {"w": 1}, "args": payload(marker)}, protocol)
    with pytest.raises(UnsafeCheckpointError, match=global_name.replace(".", r"\.")) as info:
        load_checkpoint(path)
    assert info.value.global_name == global_name
    assert str(path) in str(info.value)
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, ValueError)
    assert not marker.exists()


@pytest.mark.parametrize("payload, global_name", PAYLOADS)
def test_hostile_object_hidden_in_a_real_checkpoint_is_refused(tmp_path, payload, global_name):
    """A valid minisnn-written checkpoint with its data.pkl swapped for one carrying a payload."""
    marker = tmp_path / "pwned"
    good = tmp_path / "good.pt"
    write_torch_zip({"state_dict": OrderedDict(w=np.ones(3, np.float32))}, good)
    records = read_records(good)
    evil = {"state_dict": {}, "optimizer": {"state": {0: [1, 2, {"deep": payload(marker)}]}}}
    records["archive/data.pkl"] = pickle.dumps(evil, protocol=2)
    write_zip(tmp_path / "evil.pt", records)
    for reader in (load_checkpoint, read_torch_zip):
        with pytest.raises(UnsafeCheckpointError, match=global_name.replace(".", r"\.")):
            reader(tmp_path / "evil.pt")
    assert not marker.exists()


class WholeObject:
    """Stands for `torch.save(model)`: a user class pickled by reference."""

    def __init__(self):
        self.weight = [1.0, 2.0]


def test_pickled_user_class_is_refused_by_name(tmp_path):
    _torch_like_zip(tmp_path / "m.pt", WholeObject())
    with pytest.raises(UnsafeCheckpointError, match=r"tests\.io\.test_security\.WholeObject") as info:
        load_checkpoint(tmp_path / "m.pt")
    assert "state_dict" in str(info.value)


@pytest.mark.parametrize("module, name", [("builtins", "getattr"), ("os", "path.join"), ("torch", "load"),
                                          ("numpy", "load"), ("torch._utils", "_rebuild_qtensor"),
                                          ("collections", "defaultdict"), ("copyreg", "_reconstructor")])
def test_unlisted_globals_are_refused(tmp_path, module, name):
    program = f"c{module}\n{name}\n.".encode()  # GLOBAL opcode then STOP
    write_zip(tmp_path / "g.pt", {"archive/data.pkl": b"\x80\x02" + program})
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(tmp_path / "g.pt")
    assert info.value.global_name == f"{module}.{name}"


def test_allow_list_holds_only_stand_ins():
    """Everything on the allow-list is written in minisnn.io: no callable from torch, os, builtins or numpy."""
    for (module, name), value in ALLOWED_GLOBALS.items():
        origin = getattr(value, "__module__", type(value).__module__)
        assert origin in ("minisnn.io.unpickler", "minisnn.io.pickled_numpy"), (module, name, origin)


def _pickle_program(*ops: bytes) -> bytes:
    return b"\x80\x02" + b"".join(ops) + b"."


@pytest.mark.parametrize("program, problem", [
    # _codecs.encode with a codec other than latin1
    (b"c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R", "latin1"),
    # numpy dtype 'O' (object arrays can hold arbitrary pickles)
    (b"cnumpy\ndtype\nX\x01\x00\x00\x00O\x89\x88\x87R", "numpy dtype"),
    # tensor rebuild fed a string instead of a storage
    (b"ctorch._utils\n_rebuild_tensor_v2\n(X\x01\x00\x00\x00sK\x00))tR", "storage"),
    # persistent id that is not a storage tuple
    (b"X\x04\x00\x00\x00evilQ", "persistent id"),
])
def test_allowed_globals_with_hostile_arguments_fail_cleanly(tmp_path, program, problem):
    write_zip(tmp_path / "a.pt", {"archive/data.pkl": _pickle_program(program)})
    with pytest.raises(CheckpointError, match=problem):
        load_checkpoint(tmp_path / "a.pt")
