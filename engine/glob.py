"""Redis glob patterns (KEYS, SCAN MATCH, …), compiled to Python regexes.

``compile(pattern)`` returns a predicate ``match(name) -> bool`` that agrees
with Redis's ``stringmatchlen`` byte for byte, quirks included:

* ``*`` any run of bytes, ``?`` any one byte, ``\\x`` the byte ``x``; a
  trailing lone ``\\`` is a literal backslash.
* ``[...]`` one byte from a set; ``[^...]`` one byte not in it; ``\\`` escapes
  inside a set; ``a-z`` is a range and a reversed range (``z-a``) is the same
  range; ``]`` right after ``[`` or ``[^`` closes an empty set (``[]`` matches
  nothing, ``[^]`` any byte); ``a-]`` is the range from ``a`` to ``]``; a set
  left open at the end of the pattern ends there (``[ab`` is ``[ab]``).
* Range bounds compare as C ``char``s, which are signed on the platforms Redis
  runs on: a byte >= 0x80 sorts *below* 0x00, so ``[a-\\xff]`` covers
  0xff and 0x00-0x61.
* The empty name matches only the empty pattern (Redis never enters its match
  loop for an empty string, so not even ``*`` matches it). KEYS and SCAN treat
  the pattern ``*`` as "every key" before matching, as Redis does.

The pattern is first cut into tokens (none of Redis's rules depend on the name
being matched), then into *segments* between stars. Every non-star token
matches exactly one byte, so each segment has a fixed length, and the leftmost
occurrence of each middle segment is always the right one to commit to. The
regex says so with atomic groups — ``seg0 (?>.*?seg1) … .*segN`` — which keeps
matching linear in the name times the pattern, where a naive translation
(``.*a.*a.*a.*b``) backtracks exponentially on a hostile KEYS pattern.

Compiled patterns are kept in a small LRU cache: clients repeat the same few.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

_STAR = object()
_ALL_BYTES = frozenset(range(256))


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def tokens(pattern: bytes) -> list:
    """The pattern as a list of ``_STAR`` and frozensets of the bytes one position accepts."""
    out: list = []
    n = len(pattern)
    i = 0
    while i < n:
        ch = pattern[i]
        if ch == 42:  # *
            if not out or out[-1] is not _STAR:
                out.append(_STAR)
            i += 1
        elif ch == 63:  # ?
            out.append(_ALL_BYTES)
            i += 1
        elif ch == 91:  # [
            i += 1
            negate = i < n and pattern[i] == 94  # ^
            if negate:
                i += 1
            members: set[int] = set()
            while i < n:
                ch = pattern[i]
                if ch == 92 and n - i >= 2:  # \x inside a set
                    members.add(pattern[i + 1])
                    i += 2
                elif ch == 93:  # ]
                    i += 1
                    break
                elif n - i >= 3 and pattern[i + 1] == 45:  # a-z
                    lo, hi = sorted((_signed(ch), _signed(pattern[i + 2])))
                    members.update(b for b in range(256) if lo <= _signed(b) <= hi)
                    i += 3
                else:
                    members.add(ch)
                    i += 1
            out.append(_ALL_BYTES - members if negate else frozenset(members))
        elif ch == 92 and n - i >= 2:  # \x
            out.append(frozenset((pattern[i + 1],)))
            i += 2
        else:
            out.append(frozenset((ch,)))
            i += 1
    return out


def _byte_class(accept: frozenset) -> bytes:
    if len(accept) == 256:
        return b"."
    if not accept:
        return b"(?!)"
    if len(accept) == 1:
        return re.escape(bytes(accept))
    if len(accept) > 128:
        return b"[^" + b"".join(b"\\x%02x" % b for b in sorted(_ALL_BYTES - accept)) + b"]"
    return b"[" + b"".join(b"\\x%02x" % b for b in sorted(accept)) + b"]"


def to_regex(pattern: bytes) -> bytes:
    """The regex (for ``fullmatch``, DOTALL) equivalent to ``pattern`` on non-empty names."""
    segments: list[bytes] = [b""]
    for t in tokens(pattern):
        if t is _STAR:
            segments.append(b"")
        else:
            segments[-1] += _byte_class(t)
    if len(segments) == 1:
        return segments[0]
    middle = b"".join(b"(?>.*?" + s + b")" for s in segments[1:-1])
    return segments[0] + middle + b".*" + segments[-1]


@lru_cache(maxsize=128)
def compile(pattern: bytes) -> Callable[[bytes], bool]:  # noqa: A001 - mirrors re.compile
    """A predicate telling whether a name matches ``pattern`` (Redis rules)."""
    if not pattern:
        return lambda name: not name
    fullmatch = re.compile(to_regex(pattern), re.DOTALL).fullmatch
    # A non-empty pattern never matches the empty name.
    return lambda name: bool(name) and fullmatch(name) is not None


def match(pattern: bytes, name: bytes) -> bool:
    """One-off test of ``name`` against ``pattern``."""
    return compile(pattern)(name)
