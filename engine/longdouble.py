"""x87 ``long double`` arithmetic, as Redis's INCRBYFLOAT performs it.

Redis parses both operands of INCRBYFLOAT with ``strtold`` into a C
``long double`` (on x86-64: the x87 80-bit format, a 64-bit significand with
an explicit integer bit), adds them in that format, and prints the sum with
``%.17Lf`` before stripping trailing zeros. Doing the same with Python floats
(53-bit) gives different digits (``10.5 + 0.1`` would print
``10.59999999999999964`` instead of ``10.6``), so this module emulates the
format exactly with integers and ``Fraction``s:

* ``parse(s)`` accepts what Redis's ``string2ld`` accepts (decimal or hex
  floats, ``inf``/``infinity``, an optional sign; no leading space, no
  trailing garbage or NUL, no NaN, nothing that overflows or underflows to
  zero, fewer than 5120 bytes) and rounds to the nearest 64-bit significand
  (ties to even), with gradual underflow down to 2**-16445;
* ``add(a, b)`` is one correctly rounded long double addition;
* ``format_human(v)`` is ``%.17Lf`` (exact decimal expansion, rounded half to
  even at the 17th decimal, as glibc does) with Redis's zero stripping.

Finite values are ``Fraction``s whose value is exactly representable;
infinities are the floats ``inf`` and ``-inf``. Python's limit on int/str
conversions (4300 digits) is sidestepped by converting in chunks: a long
double has up to 4933 integer digits.
"""

from __future__ import annotations

import re
from fractions import Fraction

SIGNIFICAND_BITS = 64
MIN_UNIT_EXP = -16445  # the smallest subnormal is 2**-16445
OVERFLOW_EXP = 16384  # a value >= 2**16384 is infinite
MAX_CHARS = 5 * 1024  # string2ld refuses inputs of this length or longer

INF = float("inf")
NEG_INF = float("-inf")
ZERO = Fraction(0)

_DECIMAL = re.compile(rb"([+-]?)(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?")
_HEX = re.compile(rb"([+-]?)0[xX](?:([0-9a-fA-F]+)(?:\.([0-9a-fA-F]*))?|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?")
_INFINITY = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)
_SPACE = b" \t\n\v\f\r"

# Decimal exponents beyond these bounds overflow / underflow whatever the
# significand's digits (a long double spans about 1e-4951 .. 1.2e4932).
_DEC_MAX = 4940
_DEC_MIN = -4970
_CHUNK = 1000


# --- exact integer <-> decimal text, without the 4300-digit limit -----------

def _digits_to_int(d: bytes) -> int:
    n = 0
    for i in range(0, len(d), _CHUNK):
        part = d[i:i + _CHUNK]
        n = n * 10 ** len(part) + int(part)
    return n


def _int_to_digits(n: int) -> bytes:
    if n < 10 ** _CHUNK:
        return b"%d" % n
    parts = []
    base = 10 ** _CHUNK
    while n >= base:
        n, r = divmod(n, base)
        parts.append(b"%0*d" % (_CHUNK, r))
    parts.append(b"%d" % n)
    return b"".join(reversed(parts))


# --- rounding to the long double format -------------------------------------

def round_ld(q: Fraction):
    """``q`` rounded to the nearest long double (ties to even); may be +-inf."""
    if not q:
        return ZERO
    neg = q < 0
    n, d = (-q.numerator if neg else q.numerator), q.denominator
    e = n.bit_length() - d.bit_length()  # floor(log2(n/d)) is e or e - 1
    if (n << -e if e < 0 else n) < (d << e if e > 0 else d):
        e -= 1
    unit = max(e - (SIGNIFICAND_BITS - 1), MIN_UNIT_EXP)
    if unit >= 0:
        m, r = divmod(n, d << unit)
        den = d << unit
    else:
        m, r = divmod(n << -unit, d)
        den = d
    if 2 * r > den or (2 * r == den and m & 1):
        m += 1
    if m.bit_length() + unit > OVERFLOW_EXP:
        return NEG_INF if neg else INF
    if neg:
        m = -m
    return Fraction(m << unit) if unit >= 0 else Fraction(m, 1 << -unit)


# --- strtold, as string2ld filters it ----------------------------------------

def parse(s: bytes):
    """The long double Redis reads from ``s``, or None when it refuses it."""
    if not s or len(s) >= MAX_CHARS:
        return None
    if s[0] in _SPACE:
        return None
    m = _DECIMAL.fullmatch(s)
    if m is not None:
        sign, whole, frac, only_frac, exp = m.groups()
        digits = (whole or b"") + (frac or only_frac or b"")
        shift = -len(frac or only_frac or b"")
        return _finish(sign, digits.lstrip(b"0"), exp, shift, 10)
    m = _HEX.fullmatch(s)
    if m is not None:
        sign, whole, frac, only_frac, exp = m.groups()
        digits = (whole or b"") + (frac or only_frac or b"")
        shift = -4 * len(frac or only_frac or b"")
        return _finish(sign, digits.lstrip(b"0"), exp, shift, 2)
    m = _INFINITY.fullmatch(s)
    if m is not None:
        return NEG_INF if m.group(1) == b"-" else INF
    return None  # garbage, NaN, or a partial number


def _finish(sign: bytes, digits: bytes, exp: bytes | None, shift: int, radix: int):
    if not digits:
        return ZERO  # zero never overflows, whatever its exponent
    e = 0
    if exp is not None:
        body = exp.lstrip(b"+-").lstrip(b"0") or b"0"
        if len(body) > 12:
            e = 10 ** 13  # far beyond any range: only its sign matters
        else:
            e = int(body)
        if exp[:1] == b"-":
            e = -e
    e += shift
    if radix == 10:
        magnitude = len(digits) + e  # the value is below 10**magnitude
        if magnitude > _DEC_MAX:
            return None  # ERANGE: overflow
        if magnitude < _DEC_MIN:
            return None  # ERANGE: rounds to zero
        n = _digits_to_int(digits)
        q = Fraction(n * 10 ** e) if e >= 0 else Fraction(n, 10 ** -e)
    else:
        n = int(digits, 16)
        magnitude = n.bit_length() + e
        if magnitude > OVERFLOW_EXP + 1:
            return None
        if magnitude < MIN_UNIT_EXP - 2:
            return None
        q = Fraction(n << e) if e >= 0 else Fraction(n, 1 << -e)
    if sign == b"-":
        q = -q
    v = round_ld(q)
    if not isinstance(v, Fraction) or not v:
        return None  # ERANGE: overflow to inf or underflow to zero
    return v


# --- arithmetic and printing --------------------------------------------------

def add(a, b):
    """``a + b`` in long double; inf for overflow, None for NaN (inf - inf)."""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, float) and isinstance(b, float) and a != b:
            return None
        return a if isinstance(a, float) else b
    return round_ld(a + b)


def format_human(v: Fraction) -> bytes:
    """``%.17Lf`` of a finite long double, trailing zeros and dot removed."""
    scaled = v * 10 ** 17
    n, r = divmod(scaled.numerator, scaled.denominator)  # floor, r >= 0
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and n & 1):
        n += 1
    if n == 0:
        return b"0"  # also "-0", which Redis rewrites as "0"
    neg = n < 0
    if neg:
        n = -n
    whole, frac = divmod(n, 10 ** 17)
    out = _int_to_digits(whole)
    if frac:
        out += b"." + (b"%017d" % frac).rstrip(b"0")
    return b"-" + out if neg else out
