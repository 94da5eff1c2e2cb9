"""SORT and SORT_RO: the elements of a list, set or sorted set, ordered.

``SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
[ALPHA] [STORE destination]``; SORT_RO is the same without STORE.

How Redis orders (and Keel with it)
-----------------------------------
* Numeric (the default): every weight is read as C's ``strtod`` reads it —
  leading spaces allowed, ``inf``, hex floats, an empty string is 0 — and a
  weight that is not wholly a number, overflows or is NaN fails the command
  with "One or more scores can't be converted into double". Equal weights
  are ordered by the elements' bytes; DESC reverses both.
* ALPHA: by the bytes (Redis's ``strcoll`` in its C.UTF-8 locale is byte
  order; without STORE the comparison stops at a NUL byte, as C strings do).
  With BY, an element whose weight key is missing sorts first.
* ``BY pattern``: the weight of element ``e`` is the string at the key made by
  replacing the pattern's first ``*`` with ``e``, or with ``key->field`` the
  field of the hash there; a missing key (or another type) weighs nothing
  (0 numerically). A pattern without ``*`` (``nosort``) skips sorting: a list
  or sorted set keeps its order (DESC walks it backwards, LIMIT takes a
  range of it), a set gives its members in its own order — except with
  STORE, where a set is sorted ALPHA so the stored list is deterministic.
* ``GET pattern`` (repeatable) replies, for each element, the values the
  patterns name instead of the element; ``#`` is the element itself; a
  missing one is nil (an empty string in a stored list).
* ``LIMIT offset count``: a negative offset is 0, a negative count all.

A small sorted set is converted to its skiplist encoding by any SORT of it,
as Redis 7.0 and 7.2 do (OBJECT ENCODING shows it; the content is the same).

STORE replaces the destination with a list of the results (dropping its TTL)
and replies their number; an empty result deletes the destination. Its
effect is the outcome, not the command: ``DEL dst`` when it existed, then
``RPUSH dst <results>`` — replay does not sort again, so it cannot meet
different weight keys or a set in another order. Keyspace events: ``sortstore``
(class ``g``) on the destination, after its ``new``; ``del`` when an empty
result removed it.

Complexity: O(N + M log M) for N elements of which M are sorted; with
``nosort`` on a list or sorted set, O(offset + count).
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import isnan
from types import SimpleNamespace

from engine import errors
from engine.errors import CommandError
from engine.keyspecs import flags_of, spec, unknown_spec
from engine.notify import GENERIC
from engine.registry import command
from engine.types.hash import Hash
from engine.types.list import List
from engine.types.set import Set
from engine.types.zset import ZSet
from engine.util import parse_int

# --- C's strtod, as SORT applies it ------------------------------------------------

_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*[+-]?(?:"
    rb"(0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)"
    rb"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    rb"|(inf|infinity))", re.IGNORECASE)
_DBL_MIN = 2.2250738585072014e-308
_INF = float("inf")


def weight(s: bytes) -> float:
    """The number SORT reads from ``s``; CommandError when Redis's check fails.

    ``strtod`` reads a C string (up to a NUL byte) and must consume all of it;
    an empty string converts nothing and is 0. Overflow and underflow (ERANGE)
    and NaN are refused.
    """
    nul = s.find(b"\0")
    if nul >= 0:
        s = s[:nul]
    if not s:
        return 0.0
    if s.isdigit() and len(s) < 300:
        return float(int(s))
    m = _STRTOD.fullmatch(s)
    if m is None:
        raise CommandError(errors.SORT_NOT_DOUBLE)
    text = s.strip(b" \t\n\v\f\r")
    if m.group(3):
        return -_INF if text[:1] == b"-" else _INF
    mantissa = re.split(rb"[pP]", m.group(1)[2:])[0] if m.group(1) else re.split(rb"[eE]", m.group(2))[0]
    nonzero = mantissa.strip(b"0.") != b""
    try:
        v = float.fromhex(text.decode()) if m.group(1) else float(text)
    except OverflowError:
        raise CommandError(errors.SORT_NOT_DOUBLE) from None
    # ERANGE: overflow to infinity, or a nonzero number below the normal
    # range that the double does not hold exactly (glibc's underflow).
    if v in (_INF, -_INF) or (nonzero and -_DBL_MIN < v < _DBL_MIN and _inexact(m, v)):
        raise CommandError(errors.SORT_NOT_DOUBLE)
    return v


def _inexact(m, v: float) -> bool:
    """Whether the number matched by ``m`` differs from the double ``v``."""
    if m.group(1):
        body = m.group(1)[2:]
        mant, _, exp = body.replace(b"P", b"p").partition(b"p")
        whole, _, frac = mant.partition(b".")
        exact = Fraction(int((whole + frac) or b"0", 16)) * Fraction(2) ** (int(exp or b"0") - 4 * len(frac))
    else:
        exact = Fraction(m.group(2).decode())
    return exact != Fraction(abs(v))


_ENDS_NUMERIC = frozenset(b"0123456789.")


def fast_weight(s: bytes) -> float:
    """``weight(s)``, at C speed for the common case: Python's ``float``
    agrees with ``strtod`` on a finite, normal result whose text ends in a
    digit or a dot and has no ``_`` (Python alone accepts those, and
    trailing spaces); everything else goes the careful way."""
    try:
        v = float(s)
    except ValueError:
        return weight(s)
    if (v - v == 0.0 and (v >= _DBL_MIN or v <= -_DBL_MIN) and s[-1] in _ENDS_NUMERIC
            and b"_" not in s):
        return v
    return weight(s)


_TRAILING_SPACE = [bytes((ws, 0)) for ws in b" \t\n\v\f\r"]


def _bulk_weights(weights: list):
    """Every weight at C speed when ``float`` provably reads them all as
    ``strtod`` does (see ``fast_weight``), else None (read one by one)."""
    try:
        scores = list(map(float, weights))
    except (TypeError, ValueError):
        return None  # a missing weight, an empty or hex one, a NUL, or an error
    if not scores:
        return scores
    joined = b"\0".join(weights) + b"\0"
    if b"_" in joined or any(t in joined for t in _TRAILING_SPACE):
        return None
    magnitudes = list(map(abs, scores))
    if max(magnitudes) == _INF or min(magnitudes) < _DBL_MIN or any(map(isnan, scores)):
        return None  # infinity (or overflow), zero (or underflow), NaN: the careful way
    return scores


# --- patterns --------------------------------------------------------------------

def _cstr(b: bytes) -> bytes:
    """``b`` as C string functions (strchr, strstr) see it: up to a NUL."""
    nul = b.find(b"\0")
    return b if nul < 0 else b[:nul]


def compile_pattern(pattern: bytes):
    """``(prefix, suffix, field)`` of a BY/GET pattern, ``"#"`` for ``#``,
    or None for a pattern without ``*`` (it never names a key)."""
    c = _cstr(pattern)
    if c == b"#":
        return "#"
    star = c.find(b"*")
    if star < 0:
        return None
    arrow = c.find(b"->", star + 1)
    if arrow >= 0 and arrow + 2 < len(c):
        return pattern[:star], pattern[star + 1:arrow], pattern[arrow + 2:]
    return pattern[:star], pattern[star + 1:], None


def lookup(c, pat, element: bytes):
    """The string a compiled pattern names for ``element``, or None."""
    if pat is None:
        return None
    if pat == "#":
        return element
    prefix, suffix, field = pat
    v = c.db.get(prefix + element + suffix)
    if v is None:
        return None
    if field is None:
        return bytes(v) if type(v) is bytes or type(v) is bytearray else None
    return v.get(field) if type(v) is Hash else None


# --- the command -----------------------------------------------------------------------

# BY and GET patterns name keys no key spec can list: Redis lets them only
# to a user who may read every key (ACL; the session says, when it knows).
BY_DENIED = "ERR BY option of SORT denied due to insufficient ACL permissions."
GET_DENIED = "ERR GET option of SORT denied due to insufficient ACL permissions."


def _parse(argv: list, readonly: bool, reads_every_key=None):
    """The options, validated before anything is read. ``reads_every_key(argv)``:
    whether the caller may read any key (None: no ACL to ask)."""
    desc = alpha = False
    by = store = None
    start, count = 0, -1
    gets = []
    n = len(argv)
    j = 2
    while j < n:
        opt = argv[j].lower()
        left = n - j - 1
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            start = parse_int(argv[j + 1])
            count = parse_int(argv[j + 2])
            j += 2
        elif opt == b"store" and left >= 1 and not readonly:
            store = argv[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            by = argv[j + 1]
            if reads_every_key is not None and b"*" in _cstr(by) and not reads_every_key(argv):
                raise CommandError(BY_DENIED)
            j += 1
        elif opt == b"get" and left >= 1:
            if reads_every_key is not None and not reads_every_key(argv):
                raise CommandError(GET_DENIED)
            gets.append(compile_pattern(argv[j + 1]))
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    return desc, alpha, by, store, start, count, gets


def _window(n: int, start: int, count: int) -> tuple[int, int]:
    """LIMIT as Redis clamps it: the inclusive positions (start, end)."""
    start = min(max(start, 0), n)
    count = min(max(count, -1), n)
    end = n if count < 0 else start + count - 1
    if start >= n:
        start, end = n - 1, n - 2
    if end >= n:
        end = n - 1
    return start, end


def _in_order(v, start: int, end: int, desc: bool) -> list:
    """Positions start..end of a list or sorted set in its own order (DESC: from the tail)."""
    if end < start:
        return []
    n = len(v)
    lo, hi = (n - 1 - end, n - 1 - start) if desc else (start, end)
    if type(v) is List:
        items = v.range(lo, hi)
    else:
        items = [m for _, m in v.slice(lo, hi + 1)]
    if desc:
        items.reverse()
    return items


def _sorted(c, elements: list, by, alpha: bool, desc: bool, store: bool) -> list:
    pat = compile_pattern(by) if by is not None else None
    if alpha:
        if by is None:
            # Without STORE Redis compares with strcoll: C strings.
            if store or b"\0" not in b"".join(elements):
                return sorted(elements, reverse=desc)
            return sorted(elements, key=_cstr, reverse=desc)
        weights = {}
        for e in elements:
            w = lookup(c, pat, e)
            weights[e] = (0, b"") if w is None else (1, w if store else _cstr(w))
        return sorted(elements, key=weights.__getitem__, reverse=desc)
    # Every weight is read before the error is raised, as in Redis (a BY key
    # may expire on the way).
    if by is None:
        weights = elements
    else:
        weights = [lookup(c, pat, e) for e in elements]
    scores = _bulk_weights(weights)
    if scores is not None:
        scored = list(zip(scores, elements))
        scored.sort(reverse=desc)
        return [e for _, e in scored]
    scores = []
    failed = False
    for w in weights:
        if w is None:
            scores.append(0.0)
            continue
        try:
            scores.append(fast_weight(w))
        except CommandError:
            failed = True
            scores.append(0.0)
    if failed:
        raise CommandError(errors.SORT_NOT_DOUBLE)
    scored = list(zip(scores, elements))
    scored.sort(reverse=desc)
    return [e for _, e in scored]


def _generic(c, argv: list, readonly: bool):
    desc, alpha, by, store, start, count, gets = _parse(argv, readonly, getattr(c, "reads_every_key", None))
    v = c.db.get(argv[1])
    if v is not None and type(v) is not List and type(v) is not Set and type(v) is not ZSet:
        raise CommandError(errors.WRONGTYPE)
    if type(v) is ZSet and v.encoding == "listpack":
        v = _as_skiplist(c, argv[1], v)
    dontsort = by is not None and b"*" not in _cstr(by)
    if dontsort and type(v) is Set and store is not None:
        dontsort, alpha, by = False, True, None
    n = len(v) if v is not None else 0
    lo, hi = _window(n, start, count)
    if v is None:
        chosen = []
    elif dontsort and type(v) is not Set:
        chosen = _in_order(v, lo, hi, desc)
    else:
        if type(v) is List:
            elements = v.elements()
        elif type(v) is Set:
            elements = v.members()
        else:
            elements = [m for _, m in v.pairs()]
        if not dontsort:
            elements = _sorted(c, elements, by, alpha, desc, store is not None)
        chosen = elements[lo:hi + 1] if hi >= lo else []
    if gets:
        out = [lookup(c, g, e) for e in chosen for g in gets]
    else:
        out = chosen
    if store is None:
        return out
    return _store(c, store, out)


# Limits no sorted set fits: the public constructor then builds the skiplist.
_NOTHING_FITS = SimpleNamespace(zset_max_listpack_entries=-1, zset_max_listpack_value=-1)


def _as_skiplist(c, key: bytes, z: ZSet) -> ZSet:
    """Redis 7.0 and 7.2 convert a listpack sorted set to a skiplist for
    SORT (OBJECT ENCODING shows it). The content is the same, so the key is
    not marked changed (no WATCH fires, nothing is journaled), as the string
    commands swap a string's representation."""
    big = ZSet(z.pairs(), limits=_NOTHING_FITS)
    c.db.retype(key, big)
    return big


def _store(c, dst: bytes, out: list) -> int:
    db = c.db
    existed = db.get(dst) is not None
    if not out:
        if existed:
            db.delete(dst)
            c.emit([b"DEL", dst])
            if c.ks.notify_flags:
                c.notify(GENERIC, b"del", dst)
        return 0
    items = [b"" if x is None else x for x in out]
    db.set(dst, List(items, c.ks.limits.list_max_listpack_size))
    if existed:
        c.emit([b"DEL", dst])
    c.emit([b"RPUSH", dst] + items)
    if c.ks.notify_flags:
        c.notify(GENERIC, b"sortstore", dst)
    return len(items)


_BY_GET_NOTE = ("The keys read through BY and GET patterns are named by the sorted values, "
                "so no argument position holds them")
_STORE_NOTE = "STORE's destination: the option may come anywhere after the key, so its place is not fixed"
_READ = flags_of("RO access")
_STORED = flags_of("OW update")


def _sort_keys(argv: list) -> list[tuple]:
    """SORT's keys and their flags: the sorted key, and the last STORE's destination.

    Walks the options as Redis's key finder does: LIMIT skips two arguments,
    GET and BY one; any other word is taken for an option without one.
    """
    found = [(1, _READ)]
    dst = None
    n = len(argv)
    i = 2
    while i < n:
        word = argv[i].lower()
        if word == b"limit":
            i += 2
        elif word in (b"get", b"by"):
            i += 1
        elif word == b"store" and i + 1 < n:
            dst = i + 1
        i += 1
    if dst is not None:
        found.append((dst, _STORED))
    return found


@command("sort", -2, "write denyoom movablekeys", (1, 1, 1),
         "@write @set @sortedset @list @slow @dangerous", since="1.0.0", group="generic",
         getkeys=_sort_keys,
         key_specs=(spec("RO access"), unknown_spec("RO access", _BY_GET_NOTE),
                    unknown_spec("OW update", _STORE_NOTE)))
def sort(c, argv):
    """SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
    [STORE destination] -- the elements sorted (or their number, stored).
    O(N + M log M)."""
    return _generic(c, argv, readonly=False)


@command("sort_ro", -2, "readonly movablekeys", (1, 1, 1),
         "@read @set @sortedset @list @slow @dangerous", since="7.0.0", group="generic",
         key_specs=(spec("RO access"), unknown_spec("RO access", _BY_GET_NOTE)))
def sort_ro(c, argv):
    """SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
    -- SORT without STORE. O(N + M log M)."""
    return _generic(c, argv, readonly=True)
