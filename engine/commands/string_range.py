"""String ranges: GETRANGE/SUBSTR read one, SETRANGE writes one, LCS compares two.

Split from ``engine.commands.string`` (same group, same rules): a missing
key is an empty string, any other type is WRONGTYPE (LCS has its own error).

SETRANGE writes into the stored value in place (``writable_string``): it
costs the length of the patch (plus the zero padding when it writes past
the end), never the length of the value. Effect: the command as sent.
Keyspace event: ``setrange`` whenever a non-empty value was written, the
bytes already there included, as Redis announces it.
"""

from __future__ import annotations

from engine import errors
from engine.commands.string import check_string_length, get_string, is_string, max_string_len, writable_string
from engine.errors import CommandError
from engine.keyspecs import spec
from engine.notify import STRING
from engine.registry import command
from engine.reply import ZERO
from engine.util import parse_int, plain_int_or_none


# --- ranges ------------------------------------------------------------------

def _getrange(c, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    v = get_string(c, argv[1])
    if v is None:
        return b""
    n = len(v)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return b""
    return v[start:end + 1]  # a copy either way: a bytearray slice is a new bytearray


@command("getrange", 4, "readonly", (1, 1, 1), "@read @string @slow", group="string",
         summary="The bytes of a string between two offsets, both included", since="2.4.0")
def getrange(c, argv):
    """GETRANGE key start end -- the bytes from start to end, both included. O(N).

    Negative indexes count from the end; the range is clamped to the string.
    N is the length of the range returned.
    """
    return _getrange(c, argv)


@command("substr", 4, "readonly", (1, 1, 1), "@read @string @slow", group="string",
         summary="The old name of GETRANGE", since="1.0.0")
def substr(c, argv):
    """SUBSTR key start end -- the old name of GETRANGE. O(N)."""
    return _getrange(c, argv)


@command("setrange", 4, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Write bytes into a string at an offset, padding it with zeros if needed", since="2.2.0",
         key_specs=(spec("RW update"),))
def setrange(c, argv):
    """SETRANGE key offset value -- the new length. O(M), M the length of value.

    Pads with zero bytes up to offset (O(offset - length) more when it writes
    past the end); the TTL is kept. An empty value changes nothing (a missing
    key stays missing, an existing one keeps its encoding). Otherwise the
    string becomes raw, as in Redis, even when the bytes written are already
    there: then no effect is recorded, but the key is touched for WATCH, as
    Redis does. Effect: the command as sent.
    """
    key, patch = argv[1], argv[3]
    offset = plain_int_or_none(argv[2])
    if offset is None:
        offset = parse_int(argv[2])  # raises Redis's error
    if offset < 0:
        raise CommandError(errors.OFFSET_OUT_OF_RANGE)
    db = c.db
    v = db.data.get(key)
    end = offset + len(patch)
    if type(v) is bytearray and patch and end <= len(v) and not (db.expires and key in db.expires):
        # The common case written out (the calls were a third of its cost):
        # a string already written in place, patched within its length.
        ks = c.ks
        if v[offset:end] != patch:
            v[offset:end] = patch
            ks.effects.append((db.index, argv))
        ks.changed(db, key)
        if ks.notify_flags:
            c.notify(STRING, b"setrange", key)
        return len(v)
    v = get_string(c, key)
    if v is None:
        if not patch:
            return ZERO
        check_string_length(c, offset + len(patch))
        buf = bytearray(offset)  # Redis creates a raw string here, whatever its length
        buf += patch
        db.set(key, buf)
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(STRING, b"setrange", key)
        return len(buf)
    if not patch:
        return len(v)
    check_string_length(c, end)
    buf = writable_string(c, key, v)
    n = len(buf)
    if offset > n:
        buf += bytes(offset - n)
        buf += patch
    elif buf[offset:end] == patch:
        db.touched(key)
        if c.ks.notify_flags:
            c.notify(STRING, b"setrange", key)
        return n
    else:
        # Replaces the bytes in range; a patch running past the end replaces
        # the tail and grows the buffer there, so nothing after it moves.
        buf[offset:end] = patch
    db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STRING, b"setrange", key)
    return len(buf)


# --- LCS ---------------------------------------------------------------------

def _lcs_rows(a: bytes, b: bytes) -> list:
    """Bit-parallel LCS table (Hyyro): one int per prefix of ``a``.

    In row i, bit j is 0 where LCS(a[:i], b[:j+1]) exceeds LCS(a[:i], b[:j]),
    so LCS(a[:i], b[:j]) is the number of zero bits below bit j. Each row is
    computed from the previous one with a handful of big-int operations.
    """
    mask = (1 << len(b)) - 1
    match = {}
    for j, ch in enumerate(b):
        match[ch] = match.get(ch, 0) | (1 << j)
    row = mask
    rows = [row]
    for ch in a:
        u = row & match.get(ch, 0)
        row = ((row + u) | (row - u)) & mask
        rows.append(row)
    return rows


def _lcs_at(rows: list, i: int, j: int) -> int:
    return j - (rows[i] & ((1 << j) - 1)).bit_count()


@command("lcs", -3, "readonly", (1, 2, 1), "@read @string @slow", group="string",
         summary="The longest common subsequence of two strings, or its length or positions", since="7.0.0")
def lcs(c, argv):
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN] -- O(N*M).

    The longest common subsequence of two strings (missing keys are empty):
    the string itself, its length (LEN), or the matching ranges (IDX), walked
    from the end of both strings and tie-broken exactly as Redis does, so the
    ranges reported are Redis's.
    """
    a = c.db.get(argv[1])
    b = c.db.get(argv[2])
    if (a is not None and not is_string(a)) or (b is not None and not is_string(b)):
        raise CommandError(errors.LCS_NOT_STRINGS)
    a = a or b""
    b = b or b""
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 3
    n = len(argv)
    while j < n:
        opt = argv[j].upper()
        if opt == b"IDX":
            getidx = True
        elif opt == b"LEN":
            getlen = True
        elif opt == b"WITHMATCHLEN":
            withmatchlen = True
        elif opt == b"MINMATCHLEN" and j + 1 < n:
            minmatchlen = max(parse_int(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    if getidx and getlen:
        raise CommandError(errors.LCS_LEN_AND_IDX)
    if (len(a) + 1) * (len(b) + 1) * 4 > max_string_len(c):
        raise CommandError(errors.LCS_TOO_BIG)

    rows = _lcs_rows(a, b)
    total = _lcs_at(rows, len(a), len(b))
    if getlen:
        return total
    # Walk back from (len(a), len(b)): on a match take the byte and extend
    # the current range; otherwise step towards the larger neighbour
    # (i-1 only when strictly larger), closing the range if one is open.
    out = bytearray(total)
    k = total
    matches = []
    unset = len(a)
    a_start = unset
    a_end = b_start = b_end = 0
    i, j = len(a), len(b)
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out[k - 1] = a[i - 1]
            if a_start == unset:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            k -= 1
            i -= 1
            j -= 1
        else:
            if _lcs_at(rows, i - 1, j) > _lcs_at(rows, i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != unset:
                emit = True
        if emit:
            length = a_end - a_start + 1
            if getidx and (minmatchlen == 0 or length >= minmatchlen):
                item = [[a_start, a_end], [b_start, b_end]]
                if withmatchlen:
                    item.append(length)
                matches.append(item)
            a_start = unset
    if getidx:
        return {b"matches": matches, b"len": total}
    return bytes(out)
