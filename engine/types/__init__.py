"""Data types: the value objects a key can hold, and what every type must tell.

A value in ``Database.data`` is a string or an object of a class from this
package (or a builtin container a type module chooses). A string is ``bytes``
when it was created whole (SET, MSET, INCR, …) and ``bytearray`` once it has
been changed in place (APPEND to an existing key, SETRANGE, SETBIT, BITFIELD
writes; BITOP's result): the first in-place change converts it once, so later
ones cost what they change, as Redis turns a shared or embedded string into
a raw one before it writes into it. Every reader accepts both.

The generic key commands never look inside a value: they ask this module,
through one registration per value class:

* ``type_name(value)``   what TYPE, SCAN TYPE and WRONGTYPE checks call it
                         ("string", "list", "hash", "set", "zset", "stream");
* ``encoding(value)``    what OBJECT ENCODING reports ("int", "embstr",
                         "listpack", "hashtable", …, in Redis's words);
* ``copy_value(value)``  an independent copy for COPY (``bytes`` strings are
                         immutable and shared; a ``bytearray`` is copied).

A type module registers its class once, at import:
``register(MyList, "list", encoding=lambda v: …, copy=MyList.copy)``.

Invariant: every class stored in a database is registered; ``type_name`` of an
unregistered class raises ``KeyError`` (a bug, answered as an internal error).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from engine.util import INT64_MAX, INT64_MIN


class ValueType(NamedTuple):
    name: str
    encoding: Callable[[object], str]
    copy: Callable[[object], object]


TYPES: dict[type, ValueType] = {}

# Redis stores strings of up to 44 bytes in one allocation with their header.
EMBSTR_LIMIT = 44


def register(cls: type, name: str, encoding: Callable[[object], str], copy: Callable[[object], object]) -> None:
    """Declare the value class ``cls`` as the data type ``name``."""
    TYPES[cls] = ValueType(name, encoding, copy)


def type_name(value) -> str:
    """The Redis type name of a stored value: ``b"x"`` -> ``"string"``."""
    return TYPES[type(value)].name


def encoding(value) -> str:
    """The internal representation OBJECT ENCODING reports for ``value``."""
    return TYPES[type(value)].encoding(value)


def copy_value(value):
    """A copy of ``value`` that shares no mutable state with it."""
    return TYPES[type(value)].copy(value)


def is_int_string(s: bytes) -> bool:
    """True for the canonical decimal form of a signed 64-bit integer."""
    if not s or len(s) > 20:
        return False
    try:
        v = int(s)
    except ValueError:
        return False
    return INT64_MIN <= v <= INT64_MAX and b"%d" % v == s


def _string_encoding(s: bytes) -> str:
    # A string created whole is what Redis makes of a new argument: an
    # integer if it reads as a canonical int64 ("int"), one allocation with
    # its header up to 44 bytes ("embstr"), a separate buffer beyond ("raw").
    if is_int_string(s):
        return "int"
    return "embstr" if len(s) <= EMBSTR_LIMIT else "raw"


def _changed_in_place(s: bytearray) -> str:
    # Redis writes into a string only after making it a private raw sds, and
    # it stays raw whatever its content (even "12" or 3 bytes), until a
    # command replaces the value whole.
    return "raw"


register(bytes, "string", _string_encoding, lambda s: s)
register(bytearray, "string", _changed_in_place, bytearray)
