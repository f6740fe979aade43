"""A pickle interpreter that rebuilds plain data, never runs code, and bounds memory, time and nesting.

A pickle is a program for a small stack machine: opcodes push literals (ints, strings,
bytes), build containers from the top of the stack (TUPLE, APPENDS, SETITEMS), name a
Python object (GLOBAL), call it (REDUCE) and hand it a state (BUILD).  `pickle.Unpickler`
runs such programs with all of Python at hand; `unpickle` runs them with none of it:

* GLOBAL asks the caller's `find_class`, which answers from a fixed allow-list of
  stand-ins and raises for anything else; REDUCE, NEWOBJ, INST and OBJ call only what
  `find_class` returned during this load.  The copyreg extension opcodes EXT1/EXT2/EXT4
  (which would look names up in a process-wide registry) and out-of-band buffers are refused.
* BUILD applies only to objects this load made by calling a stand-in whose class defines
  `pickle_build(state)`, and to OrderedDicts it made (their attribute state, such as a
  state_dict's `_metadata`, is checked and dropped).  Nothing a load hands out can be
  changed by BUILD, so one file cannot alter how a later file loads.
* Dict keys and set elements must be str, bytes, bool, None or ints of magnitude below
  2**61 - 1 (pickle_limits.check_key): no two of them share a hash unless they are equal,
  so collisions cannot be piled up, and nothing nested is ever hashed.
* Memory and time are linear in the pickle's length n.  Every opcode is charged the bytes of
  Python objects it builds (a list 64, a set 224, a string 64 + its length, ...), every call
  one per item of its arguments two levels down (a list shared by many calls is paid for at
  each) and the size of what it makes, every BUILD the size of its state; all of it
  together may not exceed BUILD_BYTES_PER_BYTE * n + BUILD_SLACK (a caller may ask for
  less).  The memo is a list; a PUT past its end pays for every slot it skips.
* Containers may nest at most MAX_DEPTH (100) deep and may not contain themselves.  This is
  checked without recursion when the program stops (pickle_limits.check_nesting), before
  anything hashes, compares or prints the result.

Errors are `PickleRefused` (a ValueError) with a one-line reason naming the opcode and its
byte offset; whatever `find_class` or `persistent_load` raise passes through unchanged.
"""
from __future__ import annotations

import codecs
import pickletools
import struct
import sys
from collections import OrderedDict
from typing import Callable

from .pickle_limits import CONTAINERS, PickleRefused, brief, check_key, check_nesting

BUILD_BYTES_PER_BYTE = 32    # bytes of Python objects a load may build per byte of pickle ...
BUILD_SLACK = 1 << 20        # ... plus this much, so that tiny pickles have room too
HIGHEST_PROTOCOL = 5
_UNSET = object()  # a memo slot that no PUT has filled
_EXT_REFUSED = "extension codes (copyreg's registry) are refused: they name objects without GLOBAL"


class _CallerError(Exception):
    """Carries an exception raised by find_class / persistent_load past the machine's own handling."""

    def __init__(self, error: BaseException):
        self.error = error


def unpickle(data: bytes, find_class: Callable[[str, str], object], *,
             persistent_load: Callable[[object], object] | None = None, encoding: str = "utf-8",
             bytes_per_byte: int = BUILD_BYTES_PER_BYTE):
    """Run the pickle program `data` and return the object it builds.

    find_class(module, name) -> the stand-in for a GLOBAL (or raises);
    persistent_load(pid) -> the object for a persistent id (None: persistent ids are refused);
    encoding: how Python 2 `str` literals are decoded ("bytes" keeps them as bytes);
    bytes_per_byte: the budget, bytes of objects per byte of pickle (plus BUILD_SLACK).
    """
    machine = _Machine(bytes(data), find_class, persistent_load, encoding, bytes_per_byte)
    try:
        result = machine.run()
    except _CallerError as wrapped:
        raise wrapped.error from None
    check_nesting(result)
    return result


class _Machine:
    """The interpreter state of one load: the program, the stack, the memo and the work budget."""

    def __init__(self, data: bytes, find_class, persistent_load, encoding: str, bytes_per_byte: int):
        self.data, self.pos, self.op_start = data, 0, 0
        self.find_class, self.persistent_load, self.encoding = find_class, persistent_load, encoding
        self.stack: list = []
        self.metastack: list[list] = []
        self.memo: list = []
        self.callables: dict[int, tuple[object, str]] = {}   # id -> (stand-in, "module.name") from find_class
        self.made: dict[int, object] = {}                   # id -> object made here that BUILD may apply to
        self.bytes_per_byte = bytes_per_byte
        self.budget = bytes_per_byte * len(data) + BUILD_SLACK  # bytes of objects still allowed
        self.ops = [None] * 256                              # opcode -> (bound method, argument, cost)
        for code, (name, arg, cost) in _OPS.items():
            self.ops[code] = (getattr(self, "op_" + name) if name else None, arg, cost)  # None: STOP

    # ------------------------------------------------------------ reading the program
    def refuse(self, problem: str) -> PickleRefused:
        op = pickletools.code2op.get(chr(self.data[self.op_start])) if self.op_start < len(self.data) else None
        where = f"opcode {op.name}" if op else "opcode"
        return PickleRefused(f"{problem} ({where} at byte {self.op_start})".replace("\n", "\\n"))

    def run(self):
        data, ops, end = self.data, self.ops, len(self.data)
        while True:
            pos = self.pos
            if pos >= end:
                raise self.refuse("the pickle ends without a STOP opcode (truncated)")
            self.op_start, self.pos = pos, pos + 1
            op = ops[data[pos]]
            if op is None:
                raise self.refuse(f"unknown opcode {data[pos]:#04x}")
            method, arg, cost = op
            if method is None:
                return self.pop()
            self.budget -= cost
            if self.budget < 0:
                raise self.over_budget()
            try:
                method(arg)
            except PickleRefused:
                raise
            except (ValueError, OverflowError) as exc:  # int(), float(), decoding
                raise self.refuse(f"malformed argument ({type(exc).__name__}: {exc})") from None

    def read(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise self.refuse(f"needs {n} bytes but only {len(self.data) - self.pos} are left (truncated)")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise self.refuse("an argument line has no newline (truncated)")
        line, self.pos = self.data[self.pos:end], end + 1
        return line

    def unsigned(self, size: int) -> int:
        if size == 1 and self.pos < len(self.data):  # the most common case, without a slice
            self.pos += 1
            return self.data[self.pos - 1]
        return int.from_bytes(self.read(size), "little")

    # ------------------------------------------------------------ the stack and the memo
    def push(self, value) -> None:
        self.stack.append(value)

    def pop(self):
        if not self.stack:
            raise self.refuse("the stack is empty")
        return self.stack.pop()

    def top(self):
        if not self.stack:
            raise self.refuse("the stack is empty")
        return self.stack[-1]

    def pop_mark(self) -> list:
        if not self.metastack:
            raise self.refuse("no MARK to pop to")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def spend(self, nbytes: int) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            raise self.over_budget()

    def over_budget(self) -> PickleRefused:
        return self.refuse(f"the pickle builds more than {self.bytes_per_byte} bytes of objects per byte of "
                           "its own (objects far larger than the file, or calls on shared arguments)")

    def charge(self, value, levels: int) -> None:
        """Spend a byte on `value` and on each thing it holds, `levels` down (no recursion): the work of
        looking at arguments, paid again each time the same (shared) argument is passed."""
        todo = [(value, levels)]
        while todo:
            x, level = todo.pop()
            self.spend(1)
            if level > 0 and isinstance(x, CONTAINERS):
                todo.extend((v, level - 1) for v in (x.values() if isinstance(x, dict) else x))

    def checked(self, key, what: str = "dict key"):
        try:
            check_key(key, what)
        except TypeError as exc:
            raise self.refuse(str(exc)) from None
        return key

    def target(self, kinds: tuple, what: str):
        obj = self.top()
        if type(obj) not in kinds:
            raise self.refuse(f"{what} on {brief(obj)}")
        return obj

    # ------------------------------------------------------------ opcodes; `arg` comes from _OPS
    def op_proto(self, _):
        if self.unsigned(1) > HIGHEST_PROTOCOL:
            raise self.refuse("unsupported pickle protocol")

    def op_frame(self, _):
        if self.unsigned(8) > len(self.data) - self.pos:
            raise self.refuse("a frame is longer than the rest of the pickle")

    def op_const(self, value):
        self.push(value)

    def op_empty(self, kind):
        self.push(kind())

    def op_fixed(self, fmt: str):
        self.push(self.unsigned(1) if fmt == "<B" else struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0])

    def op_sized(self, arg):
        """A literal of `length` bytes after a `width`-byte length: strings, bytes, long ints."""
        width, kind = arg
        raw = self.read(self.unsigned(width))
        self.spend(len(raw))
        if kind == "str2":      # a Python 2 str: kept as bytes, or decoded with the load's encoding
            self.push(raw if self.encoding == "bytes" else raw.decode(self.encoding, "strict"))
        elif kind == "utf8":
            self.push(str(raw, "utf-8", "surrogatepass"))
        elif kind == "long":
            self.push(int.from_bytes(raw, "little", signed=True))
        else:
            self.push(kind(raw))

    def op_text(self, kind: str):
        """Protocol 0 literals, one line each: INT, LONG, FLOAT, STRING, UNICODE."""
        line = self.readline()
        self.spend(len(line))
        if kind == "int":
            self.push(False if line == b"00" else True if line == b"01" else int(line, 0))
        elif kind == "long":
            self.push(int(line[:-1] if line.endswith(b"L") else line, 0))
        elif kind == "float":
            self.push(float(line))
        elif kind == "unicode":
            self.push(str(line, "raw-unicode-escape"))
        else:
            if len(line) < 2 or line[0] != line[-1] or line[0] not in b"\"'":
                raise self.refuse("the STRING argument is not quoted")
            raw = codecs.escape_decode(line[1:-1])[0]
            self.push(raw if self.encoding == "bytes" else raw.decode(self.encoding, "strict"))

    def op_refuse(self, problem: str):
        raise self.refuse(problem)

    def op_mark(self, _):
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self, _):
        self.stack.pop() if self.stack else self.pop_mark()

    def op_pop_mark(self, _):
        self.pop_mark()

    def op_dup(self, _):
        self.push(self.top())

    def op_get(self, width: int):
        index = int(self.readline()) if width == 0 else self.unsigned(width)
        if not 0 <= index < len(self.memo) or self.memo[index] is _UNSET:
            raise self.refuse(f"memo index {index} was never stored")
        self.push(self.memo[index])

    def op_put(self, width: int):
        """Store the top of the stack in the memo, a list: an index past its end pays 8 bytes per slot skipped
        (Python 2's cPickle numbers from 1, so a small gap is normal)."""
        index, memo = int(self.readline()) if width == 0 else self.unsigned(width), self.memo
        if index >= len(memo):
            if index > len(memo):
                self.spend(8 * (index - len(memo)))
                memo.extend([_UNSET] * (index - len(memo)))
            memo.append(self.top())
        elif index >= 0:
            memo[index] = self.top()
        else:
            raise self.refuse(f"negative memo index {index}")

    def op_memoize(self, _):
        self.memo.append(self.top())

    def items(self, per_item: int, size: int | None = None) -> list:
        """The items above the last MARK (or the top `size` items), paying `per_item` bytes for each."""
        if size is None:
            items = self.pop_mark()
        elif len(self.stack) < size:
            raise self.refuse("the stack is empty")
        else:
            items = self.stack[-size:]
            del self.stack[-size:]
        self.spend(per_item * len(items))
        return items

    def op_tuple(self, size):
        self.push(tuple(self.items(8, size)))

    def op_list(self, _):
        self.push(self.items(8))

    def op_dict(self, _):
        self.push(self.set_items({}, self.items(24)))

    def op_frozenset(self, _):
        self.push(frozenset(self.checked(v, "set element") for v in self.items(64)))

    def op_append(self, _):
        value = self.pop()
        self.target((list,), "APPEND").append(value)

    def op_appends(self, _):
        items = self.items(8)
        self.target((list,), "APPENDS").extend(items)

    def set_items(self, mapping, items: list):
        """Fill `mapping` from [key, value, key, value, ...] (dict entries are paid 24 bytes per item)."""
        if len(items) % 2:
            raise self.refuse("odd number of items for a dict")
        for i in range(0, len(items), 2):
            mapping[self.checked(items[i])] = items[i + 1]
        return mapping

    def op_setitem(self, _):
        value, key = self.pop(), self.pop()
        self.target((dict, OrderedDict), "SETITEM")[self.checked(key)] = value

    def op_setitems(self, _):
        items = self.items(24)
        self.set_items(self.target((dict, OrderedDict), "SETITEMS"), items)

    def op_additems(self, _):
        items = self.items(64)
        self.target((set,), "ADDITEMS").update(self.checked(v, "set element") for v in items)

    # ------------------------------------------------------------ globals, calls, state
    def lookup(self, module, name):
        if not isinstance(module, str) or not isinstance(name, str):
            raise self.refuse("a global must be named by two strings")
        try:
            obj = self.find_class(module, name)
        except Exception as exc:
            raise _CallerError(exc) from None
        if callable(obj):
            self.callables[id(obj)] = (obj, f"{module}.{name}")
        return obj

    def read_global(self, encoding: str):
        module = self.readline().decode(encoding)
        return self.lookup(module, self.readline().decode(encoding))

    def op_global(self, _):
        self.push(self.read_global("utf-8"))

    def op_stack_global(self, _):
        name, module = self.pop(), self.pop()
        self.push(self.lookup(module, name))

    def call(self, func, args, kwargs=None):
        entry = self.callables.get(id(func))
        if entry is None or entry[0] is not func:
            raise self.refuse(f"cannot call {brief(func)}: only globals from the allow-list are called")
        if not isinstance(args, tuple) or not (kwargs is None or type(kwargs) is dict):
            raise self.refuse(f"the arguments for {entry[1]} are not a tuple (and a dict)")
        self.charge((args, kwargs), levels=3)  # the stand-ins look at most two levels into their arguments
        try:
            result = func(*args, **(kwargs or {}))
        except Exception as exc:  # the stand-ins check their arguments and say what is wrong
            raise self.refuse(f"{entry[1]} refused its arguments ({type(exc).__name__}: {exc})") from None
        self.spend(sys.getsizeof(result))  # the work of a stand-in is at most in proportion to what it makes
        if type(result) is OrderedDict or hasattr(type(result), "pickle_build"):
            self.made[id(result)] = result
        return result

    def op_reduce(self, _):
        args = self.pop()
        self.push(self.call(self.pop(), args))

    def op_newobj(self, with_kwargs: bool):
        kwargs = self.pop() if with_kwargs else None
        args = self.pop()
        self.push(self.call(self.pop(), args, kwargs))

    def op_inst(self, _):
        cls = self.read_global("ascii")
        self.push(self.call(cls, tuple(self.pop_mark())))

    def op_obj(self, _):
        items = self.pop_mark()
        if not items:
            raise self.refuse("OBJ without a class")
        self.push(self.call(items[0], tuple(items[1:])))

    def op_build(self, _):
        state = self.pop()
        obj = self.top()
        if self.made.get(id(obj)) is not obj:
            raise self.refuse(f"BUILD on {brief(obj)}, which this load did not make: stand-ins take no state")
        self.spend(sys.getsizeof(state) + sum(map(sys.getsizeof, state)) if type(state) is tuple
                   else sys.getsizeof(state))  # what a BUILD makes is no larger than its state
        if type(obj) is OrderedDict:
            if state is not None and not (type(state) is dict and all(type(k) is str for k in state)):
                raise self.refuse(f"the state of an OrderedDict must be an attribute dict, not {brief(state)}")
            return  # attributes of a state_dict (its `_metadata`) are not kept
        try:
            obj.pickle_build(state)
        except Exception as exc:
            raise self.refuse(f"state for {type(obj).__name__} refused ({type(exc).__name__}: {exc})") from None

    def op_persid(self, binary: bool):
        pid = self.pop() if binary else self.readline().decode("ascii")
        if self.persistent_load is None:
            raise self.refuse("persistent ids are not allowed here")
        try:
            self.push(self.persistent_load(pid))
        except Exception as exc:
            raise _CallerError(exc) from None


# opcode -> (name of the _Machine method without "op_", its argument, bytes of objects it builds)
_OPS = {ord(code): op for code, op in {
    ".": (None, None, 0), "\x80": ("proto", None, 0), "\x95": ("frame", None, 0),
    "N": ("const", None, 8), "\x88": ("const", True, 8), "\x89": ("const", False, 8), ")": ("const", (), 8),
    "]": ("empty", list, 64), "}": ("empty", dict, 72), "\x8f": ("empty", set, 224),
    "J": ("fixed", "<i", 36), "K": ("fixed", "<B", 8), "M": ("fixed", "<H", 36), "G": ("fixed", ">d", 32),
    "T": ("sized", (4, "str2"), 64), "U": ("sized", (1, "str2"), 64), "B": ("sized", (4, bytes), 64),
    "C": ("sized", (1, bytes), 64), "\x8e": ("sized", (8, bytes), 64), "\x96": ("sized", (8, bytearray), 64),
    "X": ("sized", (4, "utf8"), 64), "\x8c": ("sized", (1, "utf8"), 64), "\x8d": ("sized", (8, "utf8"), 64),
    "\x8a": ("sized", (1, "long"), 64), "\x8b": ("sized", (4, "long"), 64),
    "I": ("text", "int", 64), "L": ("text", "long", 64), "F": ("text", "float", 64),
    "S": ("text", "string", 64), "V": ("text", "unicode", 64),
    "\x97": ("refuse", "out-of-band buffers are not supported", 0),
    "\x98": ("refuse", "out-of-band buffers are not supported", 0),
    "\x82": ("refuse", _EXT_REFUSED, 0), "\x83": ("refuse", _EXT_REFUSED, 0), "\x84": ("refuse", _EXT_REFUSED, 0),
    "(": ("mark", None, 64), "0": ("pop", None, 0), "1": ("pop_mark", None, 0), "2": ("dup", None, 8),
    "g": ("get", 0, 8), "h": ("get", 1, 8), "j": ("get", 4, 8), "p": ("put", 0, 8), "q": ("put", 1, 8),
    "r": ("put", 4, 8), "\x94": ("memoize", None, 8),
    "t": ("tuple", None, 48), "\x85": ("tuple", 1, 48), "\x86": ("tuple", 2, 48), "\x87": ("tuple", 3, 48),
    "l": ("list", None, 64), "d": ("dict", None, 72), "\x91": ("frozenset", None, 224),
    "a": ("append", None, 8), "e": ("appends", None, 0), "s": ("setitem", None, 48), "u": ("setitems", None, 0),
    "\x90": ("additems", None, 0),
    "c": ("global", None, 16), "\x93": ("stack_global", None, 16), "R": ("reduce", None, 8),
    "\x81": ("newobj", False, 8), "\x92": ("newobj", True, 8), "i": ("inst", None, 24), "o": ("obj", None, 8),
    "b": ("build", None, 0), "P": ("persid", False, 64), "Q": ("persid", True, 64),
}.items()}
