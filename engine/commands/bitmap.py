"""Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD(_RO).

A bitmap is a string: bit 0 is the most significant bit of the first byte.
Reading past the end reads zeros; writing past the end grows the string with
zero bytes. Offsets are limited by proto-max-bulk-len, as in Redis.

Bit ranges are evaluated on Python ints built from the bytes in range
(``int.from_bytes`` then shifts and ``bit_count``), so counting and searching
are linear in C, not per bit in Python.

Writes change the stored string in place (``writable_string``: a ``bytes``
value becomes a ``bytearray`` once), so SETBIT costs O(1) and a BITFIELD
write the bytes of its fields, plus the zero bytes when the string grows,
never the length of the string. As in Redis, a write makes the string raw
(OBJECT ENCODING) even when it leaves every bit as it was, and a key it
creates is raw; so is BITOP's result.

Effects: every write records the command as sent (all of them are
deterministic), and only when the stored bytes changed: a SETBIT or BITFIELD
that writes the bits already there records nothing and, like Redis 7.0,
leaves WATCH untouched.

Keyspace events: ``setbit`` for a SETBIT or BITFIELD that changed the
string (a BITFIELD write that OVERFLOW FAIL refused announces nothing, even
when it grew the string); BITOP ``set``, or ``del`` when an empty result
removed the destination.
"""

from __future__ import annotations

from engine import errors
from engine.commands.string import get_string, max_string_len, writable_string
from engine.errors import CommandError
from engine.keyspecs import flags_of, spec
from engine.notify import GENERIC, STRING
from engine.registry import command
from engine.reply import ONE, ZERO, Raw
from engine.util import parse_int, plain_int_or_none, to_int_or_none

_U64 = (1 << 64) - 1


def _to_int64(x: int) -> int:
    """``x`` as a C int64_t would hold it (two's complement wrap-around)."""
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def bit_offset(c, arg: bytes, bits: int = 0) -> int:
    """A bit offset argument; ``#n`` means ``n * bits`` when ``bits`` is given.

    Redis multiplies ``#n`` in 64-bit arithmetic, so a huge ``n`` wraps; the
    wrapped value is then range-checked like any other.
    """
    by_field = bits and arg[:1] == b"#"
    v = to_int_or_none(arg[1:] if by_field else arg)
    if v is None:
        raise CommandError(errors.BIT_OFFSET)
    if by_field:
        v = _to_int64(v * bits)
    if v < 0 or (v >> 3) >= max_string_len(c):
        raise CommandError(errors.BIT_OFFSET)
    return v


def _bits(v: bytes, first: int, last: int) -> int:
    """Bits ``first..last`` (inclusive, MSB-first numbering) as an int."""
    lo = first >> 3
    hi = last >> 3
    chunk = int.from_bytes(v[lo:hi + 1], "big")
    chunk >>= (hi + 1) * 8 - 1 - last
    return chunk & ((1 << (last - first + 1)) - 1)


# --- SETBIT / GETBIT ------------------------------------------------------------

_BIT_VALUES = {b"0": 0, b"1": 1}

@command("setbit", 4, "write denyoom", (1, 1, 1), "@write @bitmap @slow", group="bitmap",
         summary="Set one bit of a string to 0 or 1, growing the string if needed", since="2.2.0")
def setbit(c, argv):
    """SETBIT key offset 0|1 -- the bit's previous value. O(1), plus the zero
    bytes added when offset is past the end.

    The TTL is kept. Setting a bit to the value it has, inside the string,
    changes nothing: no effect, no WATCH invalidation (Redis 7.0 does the
    same), though the string becomes raw as in Redis. Creating the key or
    growing it is a change even for a 0 bit.
    """
    key = argv[1]
    db = c.db
    v = db.data.get(key)
    if type(v) is bytearray and not (db.expires and key in db.expires):
        # The common case written out (the calls were a third of its cost):
        # a bitmap already written in place, a bit within its length.
        offset = to_int_or_none(argv[2])
        on = _BIT_VALUES.get(argv[3])
        if offset is not None and on is not None and 0 <= offset >> 3 < len(v):
            byte = offset >> 3
            mask = 1 << (7 - (offset & 7))
            old = v[byte] & mask
            if bool(old) != on:
                v[byte] ^= mask
                ks = c.ks
                ks.changed(db, key)
                ks.effects.append((db.index, argv))
                if ks.notify_flags:
                    c.notify(STRING, b"setbit", key)
            return ONE if old else ZERO
    offset = bit_offset(c, argv[2])
    on = to_int_or_none(argv[3])
    if on is None or on & ~1:
        raise CommandError(errors.BIT_VALUE)
    v = get_string(c, key)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    db = c.db
    if v is None:
        buf = bytearray(byte + 1)
        buf[byte] = on << shift
        db.set(key, buf)
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(STRING, b"setbit", key)
        return ZERO
    buf = writable_string(c, key, v)
    n = len(buf)
    if byte < n:
        old = (buf[byte] >> shift) & 1
        if old == on:
            return ONE if old else ZERO
        buf[byte] ^= 1 << shift
    else:
        old = 0
        buf += bytes(byte - n + 1)
        buf[byte] = on << shift
    db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STRING, b"setbit", key)
    return ONE if old else ZERO


@command("getbit", 3, "readonly fast", (1, 1, 1), "@read @bitmap @fast", group="bitmap",
         summary="Read one bit of a string", since="2.2.0")
def getbit(c, argv):
    """GETBIT key offset -- the bit at offset (0 past the end). O(1)."""
    offset = bit_offset(c, argv[2])
    v = get_string(c, argv[1])
    byte = offset >> 3
    if v is None or byte >= len(v):
        return ZERO
    return ONE if (v[byte] >> (7 - (offset & 7))) & 1 else ZERO


# --- BITCOUNT / BITPOS ------------------------------------------------------------

def _unit_is_bit(arg: bytes) -> bool:
    unit = arg.upper()
    if unit == b"BIT":
        return True
    if unit == b"BYTE":
        return False
    raise CommandError(errors.SYNTAX)


@command("bitcount", -2, "readonly", (1, 1, 1), "@read @bitmap @slow", group="bitmap",
         summary="Count the 1 bits of a string, or of a byte or bit range of it", since="2.6.0")
def bitcount(c, argv):
    """BITCOUNT key [start end [BYTE|BIT]] -- the number of set bits. O(N).

    As in Redis 7.0, a missing key answers 0 before the range is parsed.
    """
    v = get_string(c, argv[1])
    if v is None:
        return ZERO
    n = len(argv)
    total = len(v)
    if n == 2:
        return int.from_bytes(v, "big").bit_count()
    if n not in (4, 5):
        raise CommandError(errors.SYNTAX)
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    isbit = n == 5 and _unit_is_bit(argv[4])
    if isbit:
        total *= 8
    if start < 0 and end < 0 and start > end:
        return ZERO
    if start < 0:
        start = max(total + start, 0)
    if end < 0:
        end = max(total + end, 0)
    if end >= total:
        end = total - 1
    if start > end:
        return ZERO
    if not isbit:
        return int.from_bytes(v[start:end + 1], "big").bit_count()
    return _bits(v, start, end).bit_count()


@command("bitpos", -3, "readonly", (1, 1, 1), "@read @bitmap @slow", group="bitmap",
         summary="Locate the first 0 or 1 bit of a string, or of a range of it", since="2.8.7")
def bitpos(c, argv):
    """BITPOS key 0|1 [start [end [BYTE|BIT]]] -- the first such bit, or -1. O(N).

    A missing key is all zeros (0 for a clear bit, -1 for a set bit). Looking
    for a clear bit without an explicit end treats the string as padded with
    zeros, so a string of all ones answers its length in bits; with an end,
    not finding one answers -1.
    """
    bit = parse_int(argv[2])
    if bit != 0 and bit != 1:
        raise CommandError(errors.BITPOS_BIT)
    v = get_string(c, argv[1])
    if v is None:
        return -1 if bit else ZERO
    n = len(argv)
    size = len(v)
    end_given = n >= 5
    isbit = False
    if n == 3:
        start, end = 0, size - 1
    elif n <= 6:
        start = parse_int(argv[3])
        if n == 6:
            isbit = _unit_is_bit(argv[5])
        end = parse_int(argv[4]) if end_given else size - 1
        total = size * 8 if isbit else size
        if start < 0:
            start = max(total + start, 0)
        if end < 0:
            end = max(total + end, 0)
        if end >= total:
            end = total - 1
    else:
        raise CommandError(errors.SYNTAX)
    if start > end:
        return -1
    if not isbit:
        start, end = start * 8, end * 8 + 7
    width = end - start + 1
    x = _bits(v, start, end)
    if not bit:
        x ^= (1 << width) - 1
    if x:
        return start + width - x.bit_length()
    if bit or end_given:
        return -1
    return end + 1


# --- BITOP -------------------------------------------------------------------------

_BITOPS = {b"AND", b"OR", b"XOR", b"NOT"}


@command("bitop", -4, "write denyoom", (2, -1, 1), "@write @bitmap @slow", group="bitmap",
         summary="Store the AND, OR, XOR or NOT of strings in a key", since="2.6.0",
         key_specs=(spec("OW update", 2), spec("RO access", 3, -1)))
def bitop(c, argv):
    """BITOP AND|OR|XOR|NOT destkey key [key ...] -- the length of the result. O(N).

    Missing keys are empty strings; shorter strings are padded with zeros.
    An empty result deletes destkey (recorded as DEL if it existed);
    otherwise destkey is overwritten (its TTL cleared) with a raw string, as
    Redis stores it, and the command is recorded as sent.
    """
    op = argv[1].upper()
    if op not in _BITOPS:
        raise CommandError(errors.SYNTAX)
    if op == b"NOT" and len(argv) != 4:
        raise CommandError(errors.BITOP_NOT_ONE_KEY)
    dest = argv[2]
    sources = [get_string(c, key) or b"" for key in argv[3:]]
    size = max(len(s) for s in sources)
    db = c.db
    if not size:
        if db.delete(dest):
            c.emit([b"DEL", dest])
            if c.ks.notify_flags:
                c.notify(GENERIC, b"del", dest)
        return ZERO
    ints = [int.from_bytes(s, "big") << (8 * (size - len(s))) for s in sources]
    acc = ints[0]
    if op == b"NOT":
        acc ^= (1 << (8 * size)) - 1
    elif op == b"AND":
        for x in ints[1:]:
            acc &= x
    elif op == b"OR":
        for x in ints[1:]:
            acc |= x
    else:
        for x in ints[1:]:
            acc ^= x
    db.set(dest, bytearray(acc.to_bytes(size, "big")))
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STRING, b"set", dest)
    return size


# --- BITFIELD ------------------------------------------------------------------------

_GET, _SET, _INCRBY = 0, 1, 2
_WRAP, _SAT, _FAIL = 0, 1, 2
_OPCODES = {b"GET": (_GET, 2), b"SET": (_SET, 3), b"INCRBY": (_INCRBY, 3)}
_OVERFLOWS = {b"WRAP": _WRAP, b"SAT": _SAT, b"FAIL": _FAIL}


_FIELD_TYPES: dict = {}  # the type arguments seen so far (a few: u8, i16, …)


def _field_type(arg: bytes):
    """``i<bits>`` (1..64) or ``u<bits>`` (1..63): (signed, bits)."""
    known = _FIELD_TYPES.get(arg)
    if known is not None:
        return known
    kind = arg[:1]
    bits = to_int_or_none(arg[1:])
    if kind == b"i":
        ok = bits is not None and 1 <= bits <= 64
    elif kind == b"u":
        ok = bits is not None and 1 <= bits <= 63
    else:
        ok = False
    if not ok:
        raise CommandError(errors.BITFIELD_TYPE)
    known = (kind == b"i", bits)
    if len(_FIELD_TYPES) < 256:
        _FIELD_TYPES[bytes(arg)] = known
    return known


def _read_field(buf, offset: int, bits: int, signed: bool) -> int:
    """The field at ``offset``; bytes past the end of ``buf`` read as zero."""
    byte = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = bytes(buf[byte:last + 1])
    span = last - byte + 1
    if len(chunk) < span:
        chunk += bytes(span - len(chunk))
    x = int.from_bytes(chunk, "big") >> (span * 8 - (offset & 7) - bits)
    x &= (1 << bits) - 1
    if signed and x >> (bits - 1):
        x -= 1 << bits
    return x


def _unsigned_overflow(value: int, incr: int, bits: int, mode: int):
    """Redis's unsigned check: (overflowed, value to store or None).

    ``value`` is an unsigned 64-bit quantity: a SET of a negative number is
    seen as a huge positive one, so ``SET u8 0 -1`` saturates to 255.
    """
    top = (1 << bits) - 1
    if value > top or (incr > 0 and incr > top - value):
        limit = top
    elif incr < 0 and incr < -value:
        limit = 0
    else:
        return False, value + incr
    if mode == _WRAP:
        return True, (value + incr) & top
    return True, (limit if mode == _SAT else None)


def _signed_overflow(value: int, incr: int, bits: int, mode: int):
    """Redis's signed check: (overflowed, value to store or None).

    The limits are computed in 64-bit arithmetic as Redis does, which makes
    a SET of a value near -2**63 saturate to the *maximum* (its distance to
    the maximum wraps negative); that quirk is reproduced on purpose.
    """
    top = (1 << (bits - 1)) - 1
    bottom = -top - 1
    max_incr = _to_int64(top - value)
    min_incr = _to_int64(bottom - value)
    if value > top or (bits != 64 and incr > max_incr) or (value >= 0 and incr > 0 and incr > max_incr):
        limit = top
    elif value < bottom or (bits != 64 and incr < min_incr) or (value < 0 and incr < 0 and incr < min_incr):
        limit = bottom
    else:
        return False, value + incr
    if mode == _WRAP:
        x = (value + incr) & ((1 << bits) - 1)
        return True, x - (1 << bits) if x >> (bits - 1) else x
    return True, (limit if mode == _SAT else None)


def _bitfield(c, argv, readonly: bool):
    ops = []
    mode = _WRAP
    writes = False
    highest = 0
    n = len(argv)
    j = 2
    while j < n:
        name = argv[j].upper()
        spec = _OPCODES.get(name)
        if spec is not None and n - j - 1 >= spec[1]:
            opcode = spec[0]
        elif name == b"OVERFLOW" and j + 1 < n:
            mode = _OVERFLOWS.get(argv[j + 1].upper())
            if mode is None:
                raise CommandError(errors.BITFIELD_OVERFLOW_TYPE)
            j += 2
            continue
        else:
            raise CommandError(errors.SYNTAX)
        signed, bits = _field_type(argv[j + 1])
        offset = bit_offset(c, argv[j + 2], bits)
        value = 0
        if opcode != _GET:
            writes = True
            highest = max(highest, offset + bits - 1)
            value = parse_int(argv[j + 3])
        ops.append((opcode, signed, bits, offset, value, mode))
        j += 3 if opcode == _GET else 4
    if writes and readonly:
        raise CommandError(errors.BITFIELD_RO_WRITE)
    key = argv[1]
    v = get_string(c, key)
    if not writes:
        v = v or b""
        return [_read_field(v, off, bits, signed) for _, signed, bits, off, _, _ in ops]

    # Any write op makes the string raw and grows it to the farthest field,
    # even if OVERFLOW FAIL then writes nothing (as Redis does).
    need = (highest >> 3) + 1
    db = c.db
    if v is None:
        buf = bytearray(need)
        db.set(key, buf)
        grown = True
    else:
        buf = writable_string(c, key, v)
        grown = len(buf) < need
        if grown:
            buf += bytes(need - len(buf))
    # As in Redis, the command changed the key when it grew it or when a
    # write stored a value other than the one it read (a later write putting
    # an earlier one back still counts). Each write reads and rewrites only
    # the bytes of its field: O(the fields), not O(the string).
    changed = grown
    stored = False  # a write went through (Redis's event: it grew the string or changed bits)
    replies = []
    for opcode, signed, bits, offset, value, mode in ops:
        if opcode == _GET:
            replies.append(_read_field(buf, offset, bits, signed))
            continue
        reply, wrote = _write(buf, opcode, signed, bits, offset, value, mode)
        changed = changed or wrote
        stored = stored or wrote or (grown and reply is not None)
        replies.append(reply)
    if changed:
        if v is not None:
            db.touched(key)
        c.emit(argv)
        if stored and c.ks.notify_flags:
            c.notify(STRING, b"setbit", key)
    return replies


def _write(buf: bytearray, opcode: int, signed: bool, bits: int, offset: int, value: int, mode: int):
    """One SET or INCRBY into ``buf``, which holds the field: (its reply,
    whether it stored another value than it read). OVERFLOW FAIL: (None, False)."""
    byte = offset >> 3
    end = ((offset + bits - 1) >> 3) + 1
    shift = (end - byte) * 8 - (offset & 7) - bits
    top = (1 << bits) - 1
    x = int.from_bytes(buf[byte:end], "big")
    old = (x >> shift) & top
    if signed and old >> (bits - 1):
        old -= 1 << bits
    check = _signed_overflow if signed else _unsigned_overflow
    if opcode == _INCRBY:
        _, new = check(old, value, bits, mode)
        reply = new
    else:
        _, new = check(value if signed else value & _U64, 0, bits, mode)
        reply = old
    if new is None:
        return None, False
    if new == old:
        return reply, False
    x = (x & ~(top << shift)) | ((new & top) << shift)
    buf[byte:end] = x.to_bytes(end - byte, "big")
    return reply, True


_ONE_WRITE = {b"SET": _SET, b"set": _SET, b"INCRBY": _INCRBY, b"incrby": _INCRBY}


def _one_write(c, argv):
    """``BITFIELD key SET|INCRBY type offset value`` into a string already
    written in place that holds the field: the common case without the
    general grammar (which cost more than the write). None when the command
    is anything else, for the general path to answer."""
    db = c.db
    key = argv[1]
    v = db.data.get(key)
    if type(v) is not bytearray or (db.expires and key in db.expires):
        return None
    opcode = _ONE_WRITE.get(argv[2])
    known = _FIELD_TYPES.get(argv[3])
    offset = plain_int_or_none(argv[4])
    value = plain_int_or_none(argv[5])
    if opcode is None or known is None or offset is None or value is None or offset < 0:
        return None
    signed, bits = known
    end = ((offset + bits - 1) >> 3) + 1
    if end > len(v):
        return None
    if opcode == _SET and not signed:
        # SET uN under WRAP stores the value's low N bits and answers the old
        # field: _write's arithmetic, without its calls.
        byte = offset >> 3
        shift = (end - byte) * 8 - (offset & 7) - bits
        top = (1 << bits) - 1
        x = int.from_bytes(v[byte:end], "big")
        reply = (x >> shift) & top
        new = value & top
        wrote = new != reply
        if wrote:
            v[byte:end] = ((x & ~(top << shift)) | (new << shift)).to_bytes(end - byte, "big")
    else:
        reply, wrote = _write(v, opcode, signed, bits, offset, value, _WRAP)
    if wrote:
        ks = c.ks
        ks.changed(db, key)
        ks.effects.append((db.index, argv))
        if ks.notify_flags:
            c.notify(STRING, b"setbit", key)
    return Raw(b"*1\r\n:%d\r\n" % reply)  # the one-element array, alike in RESP2 and RESP3


_BITFIELD_READS = flags_of("RO access")
_BITFIELD_WRITES = flags_of("RW access update")


def _bitfield_keys(argv: list) -> list[tuple]:
    """BITFIELD's key and how it is used: read only when every operation is a
    complete GET (or OVERFLOW); a SET, an INCRBY or anything malformed may write."""
    n = len(argv)
    i = 2
    while i < n:
        op = argv[i].lower()
        left = n - i - 1
        if op == b"get" and left >= 2:
            i += 3
        elif op == b"overflow" and left >= 1:
            i += 2
        else:
            return [(1, _BITFIELD_WRITES)]
    return [(1, _BITFIELD_READS)]


@command("bitfield", -2, "write denyoom", (1, 1, 1), "@write @bitmap @slow", group="bitmap",
         summary="Read, write and add to integers of up to 64 bits packed in a string", since="3.2.0",
         getkeys=_bitfield_keys,
         key_specs=(spec("RW access update variable_flags",
                         notes="Written by SET and INCRBY, only read when every operation is a GET"),))
def bitfield(c, argv):
    """BITFIELD key [GET type offset] [SET type offset value]
    [INCRBY type offset increment] [OVERFLOW WRAP|SAT|FAIL] ... -- one reply per
    GET/SET/INCRBY: the value read, the old value (SET), the new value
    (INCRBY), or nil when OVERFLOW FAIL refused the write. O(N) in the ops
    (plus the zero bytes added when a write grows the string).

    Every argument is validated before anything runs. A write grows the
    string to hold the farthest field written, even if FAIL then refuses it
    (the key is created then, and that is recorded; Redis 7.0 leaves WATCH
    untouched in that one case). Writing bits that are already there records
    nothing. Effect: the command as sent.
    """
    if len(argv) == 6:
        r = _one_write(c, argv)
        if r is not None:
            return r
    return _bitfield(c, argv, False)


@command("bitfield_ro", -2, "readonly fast", (1, 1, 1), "@read @bitmap @fast", group="bitmap",
         summary="Read integers of up to 64 bits packed in a string (BITFIELD without writes)",
         since="6.0.0")
def bitfield_ro(c, argv):
    """BITFIELD_RO key [GET type offset ...] -- the values read. O(N) in the ops."""
    return _bitfield(c, argv, True)
