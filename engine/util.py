"""Redis's number syntax and formatting, shared by every command group.

Redis is strict about numbers: ``string2ll`` accepts only a canonical decimal
integer (no spaces, no ``+``, no leading zeros, no ``-0``) that fits in a
signed 64-bit integer. ``parse_int`` applies the same rule, so ``INCR`` on
``" 1"`` and ``EXPIRE k 010`` fail here exactly where they fail on Redis.
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def parse_int(b: bytes, error: str = errors.NOT_INTEGER) -> int:
    """A canonical signed 64-bit integer, or CommandError(``error``)."""
    try:
        v = int(b)
    except ValueError:
        raise CommandError(error) from None
    if b"%d" % v != b or not INT64_MIN <= v <= INT64_MAX:
        raise CommandError(error)
    return v


def plain_int_or_none(b: bytes) -> int | None:
    """``to_int_or_none`` with the common case first: a plain decimal (no
    sign, no leading zero, under 19 digits) reads with int() alone."""
    if b.isdigit() and len(b) < 19 and (b[0] != 48 or len(b) == 1):
        return int(b)
    return to_int_or_none(b)


def to_int_or_none(b: bytes) -> int | None:
    """Like ``parse_int`` but returns None instead of raising."""
    try:
        v = int(b)
    except ValueError:
        return None
    if b"%d" % v != b or not INT64_MIN <= v <= INT64_MAX:
        return None
    return v


def add_int64(stored: bytes | None, delta: int, not_integer: str) -> int:
    """INCRBY's arithmetic on a stored value (None counts as 0): the sum, or
    ``not_integer`` when the value is not a canonical int64, or the overflow
    error when the sum leaves the int64 range (INCRBY, HINCRBY)."""
    current = 0 if stored is None else to_int_or_none(stored)
    if current is None:
        raise CommandError(not_integer)
    new = current + delta
    if not INT64_MIN <= new <= INT64_MAX:
        raise CommandError(errors.OVERFLOW)
    return new
