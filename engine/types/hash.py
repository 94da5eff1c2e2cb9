"""The hash type: field -> value, packed while small, a dict once big.

Two encodings behind one class, ``Hash``, whose one slot ``_d`` holds either:

* ``listpack`` (small): one ``bytes`` object holding every field and value
  in the order the fields were first set, as Redis's listpack keeps them
  (HGETALL, HKEYS, HVALS and HSCAN reply in that order, byte for byte as
  Redis does)::

      \0 field \1 value \0 field \1 value \0 ...

  Entries are escaped so that they hold neither delimiter (``\x02`` ->
  ``\x02\x12``, ``\x00`` -> ``\x02\x10``, ``\x01`` -> ``\x02\x11``;
  most entries have none of these bytes and are stored as they are). So a
  field is found with one ``bytes.find`` of ``\0 field \1`` (a match is
  exactly one whole field entry), its value runs to the next ``\0``, and
  the count is the number of ``\1``: every command is a few C-speed scans
  and at most one splice of the buffer, O(n) bytes for n <= the entry limit
  as a listpack's linear scan is, with no Python object per entry. 10 short
  fields take one ~200-byte object instead of a dict and 20 bytes objects
  (~1,200 B).
* ``hashtable`` (big): a ``dict``; O(1) per field.

Conversion is one way, as in Redis 7.2: a write converts the packed form
when the hash would hold more than ``hash_max_listpack_entries`` fields, when
a field or value it writes is longer than ``hash_max_listpack_value`` bytes,
or (HSET/HMSET) when the command itself names more pairs than the entry
limit, duplicates included (7.2 sizes the table from the argument count
before it writes; 7.0 does not). Deleting fields never converts back.

Invariants: no field appears twice; a stored ``Hash`` is never empty (the
handlers delete the key with its last field); fields and values are
``bytes``. Readers get new objects (lists, a dict) that a later write cannot
change.
"""

from __future__ import annotations

import random
import re
from itertools import chain

from engine import listpack, rdb, ziplist, zipmap
from engine.dictscan import below, layout, pick
from engine.memory import BYTES_HEADER, DICT_ENTRY, DICT_OBJECT, object_cost, sample_items, slack
from engine.types import register
from engine.types.limits import Limits

_EMPTY = b"\x00"
# HSET with up to this many pairs splices them in one by one; more are
# merged through a dict of the escaped entries.
_SPLICE_PAIRS = 4


# Whether a string holds a byte that must be escaped (one C call: cheaper
# than three ``in`` tests).
_special = re.compile(rb"[\x00-\x02]").search


def _esc(s: bytes) -> bytes:
    if _special(s):
        s = s.replace(b"\x02", b"\x02\x12")
        return s.replace(b"\x00", b"\x02\x10").replace(b"\x01", b"\x02\x11")
    return s


def _unesc(s: bytes) -> bytes:
    # Every \x02 of an escaped entry starts an escape; the one that makes
    # \x02 bytes again runs last, so no replace meets another's output.
    if s.find(b"\x02") < 0:
        return s
    return s.replace(b"\x02\x10", b"\x00").replace(b"\x02\x11", b"\x01").replace(b"\x02\x12", b"\x02")


def _escaped_entries(d: bytes) -> list:
    """[field, value, ...] of a packed hash, as stored (escaped)."""
    if len(d) == 1:
        return []
    return d[1:-1].replace(b"\x01", b"\x00").split(b"\x00")


def _entries(d: bytes) -> list:
    """[field, value, ...] of a packed hash."""
    flat = _escaped_entries(d)
    if b"\x02" in d:
        flat = [_unesc(e) for e in flat]
    return flat


def _pack_escaped(pairs) -> bytes:
    """A packed hash of escaped (field, value) pairs."""
    if not pairs:
        return _EMPTY
    return b"\x00" + b"\x00".join([f + b"\x01" + v for f, v in pairs]) + b"\x00"


def _pack(fields, values) -> bytes:
    return _pack_escaped([(_esc(f), _esc(v)) for f, v in zip(fields, values)])


def _locate(d: bytes, key: bytes):
    """(start of the field's delimiter, start of its value, end of its value)
    for ``key`` = ``\0 escaped field \1``, or None."""
    p = d.find(key)
    if p < 0:
        return None
    vs = p + len(key)
    return p, vs, d.find(b"\x00", vs)


def _key(field: bytes) -> bytes:
    if _special(field):
        field = _esc(field)
    return b"\x00" + field + b"\x01"


_OBJECT = object_cost(4)
_PACKED = _OBJECT + slack(BYTES_HEADER + 8)  # a listpack beyond its length (8: the average block rounding)
_BIG = _OBJECT + DICT_OBJECT


class Hash:
    """A Redis hash; see the module docstring for its two encodings."""

    # _held: the charge Keyspace.mem_used counts this hash with; _per, _at:
    # a hashtable's sampled cost per field and the count that resamples it.
    __slots__ = ("_d", "_held", "_per", "_at")

    def __init__(self, d=_EMPTY):
        self._d = d
        self._at = 0

    def mem_size(self, samples: int | None = None) -> int:
        """Approximate bytes (engine.memory), O(1) amortised: the packed
        bytes, or fields x (a dict entry + a sampled field and value).
        ``samples``: sample that many fields now (0: all; MEMORY USAGE)."""
        d = self._d
        if type(d) is bytes:
            n = len(d)
            return n + (n >> 3) + _PACKED  # engine.memory.slack
        n = len(d)
        if samples is not None:
            return _BIG + n * (DICT_ENTRY + sample_items(d, samples or n))
        if n >= self._at or n < self._at >> 2:
            self._per = DICT_ENTRY + sample_items(d)
            self._at = 2 * n or 1
        return _BIG + n * self._per

    # -- construction ------------------------------------------------------
    @classmethod
    def from_pairs(cls, fields: list, values: list, limits, check_lengths: bool = True) -> "Hash":
        """A hash of distinct ``fields`` (and their ``values``) in the encoding
        ``limits`` choose for them (RDB loading). Without ``check_lengths``
        only the count decides, as Redis loads a listpack or ziplist: one
        that holds a long value stays packed."""
        n = limits.hash_max_listpack_value
        if len(fields) > limits.hash_max_listpack_entries or check_lengths and (
                any(len(f) > n for f in fields) or any(len(v) > n for v in values)):
            return cls(dict(zip(fields, values)))
        return cls(_pack(fields, values))

    def copy(self) -> "Hash":
        d = self._d
        return Hash(d if type(d) is bytes else dict(d))

    @property
    def encoding(self) -> str:
        return "listpack" if type(self._d) is bytes else "hashtable"

    def _to_table(self) -> dict:
        flat = _entries(self._d)
        d = self._d = dict(zip(flat[::2], flat[1::2]))
        return d

    # -- reads -------------------------------------------------------------
    def __len__(self) -> int:
        d = self._d
        if type(d) is bytes:
            return d.count(b"\x01")
        return len(d)

    def get(self, field: bytes):
        """The value of ``field`` or None."""
        d = self._d
        if type(d) is not bytes:
            return d.get(field)
        # _locate and _key inlined: HGET is the hottest read.
        if _special(field):
            field = _esc(field)
        key = b"\x00" + field + b"\x01"
        p = d.find(key)
        if p < 0:
            return None
        p += len(key)
        v = d[p:d.find(b"\x00", p)]
        return v if v.find(b"\x02") < 0 else _unesc(v)

    def get_many(self, fields) -> list:
        d = self._d
        if type(d) is not bytes:
            return [d.get(f) for f in fields]
        out = []
        append = out.append
        find = d.find
        for f in fields:
            key = b"\x00" + (_esc(f) if _special(f) else f) + b"\x01"
            p = find(key)
            if p < 0:
                append(None)
                continue
            p += len(key)
            v = d[p:find(b"\x00", p)]
            append(v if v.find(b"\x02") < 0 else _unesc(v))
        return out

    def __contains__(self, field: bytes) -> bool:
        d = self._d
        if type(d) is not bytes:
            return field in d
        return _locate(d, _key(field)) is not None

    def fields(self) -> list:
        d = self._d
        return _entries(d)[::2] if type(d) is bytes else list(d)

    def values(self) -> list:
        d = self._d
        return _entries(d)[1::2] if type(d) is bytes else list(d.values())

    def to_dict(self) -> dict:
        """Every field and value, in the encoding's order (a new dict)."""
        d = self._d
        if type(d) is bytes:
            flat = _entries(d)
            return dict(zip(flat[::2], flat[1::2]))
        return dict(d)

    def flat(self) -> list:
        """[field, value, field, value, ...] in the encoding's order."""
        d = self._d
        if type(d) is bytes:
            return _entries(d)
        return list(chain.from_iterable(d.items()))

    # -- writes ------------------------------------------------------------
    def set_pairs(self, argv: list, start: int, limits) -> int:
        """Set the pairs ``argv[start], argv[start+1], ...``; the number of new fields."""
        d = self._d
        if type(d) is bytes:
            if len(argv) - start == 2:  # the common case
                return self.set(argv[start], argv[start + 1], limits)
            npairs = (len(argv) - start) >> 1
            if npairs <= _SPLICE_PAIRS and npairs <= limits.hash_max_listpack_entries:
                # Each set converts at the first long field or value, as the
                # check of every argument before the first write would.
                created = 0
                for j in range(start, len(argv), 2):
                    created += self.set(argv[j], argv[j + 1], limits)
                return created
            if npairs > limits.hash_max_listpack_entries or \
                    max(map(len, argv[start:])) > limits.hash_max_listpack_value:
                d = self._to_table()
            else:
                flat = _escaped_entries(d)
                merged = dict(zip(flat[::2], flat[1::2]))
                n = len(merged)
                for j in range(start, len(argv), 2):
                    merged[_esc(argv[j])] = _esc(argv[j + 1])
                if len(merged) > limits.hash_max_listpack_entries:
                    self._d = {_unesc(f): _unesc(v) for f, v in merged.items()}
                else:
                    self._d = _pack_escaped(list(merged.items()))
                return len(merged) - n
        n = len(d)
        for j in range(start, len(argv), 2):
            d[argv[j]] = argv[j + 1]
        return len(d) - n

    def set(self, field: bytes, value: bytes, limits) -> bool:
        """Set one field; True when it is new."""
        d = self._d
        if type(d) is bytes:
            longest = limits.hash_max_listpack_value
            if len(field) <= longest and len(value) <= longest:
                key = _key(field)
                at = _locate(d, key)
                if at is not None:
                    ev = _esc(value)
                    vs, ve = at[1], at[2]
                    if ve - vs != len(ev) or d.find(ev, vs, ve) != vs:  # else: the same bytes already
                        self._d = b"".join((d[:vs], ev, d[ve:]))
                    return False
                if d.count(b"\x01") < limits.hash_max_listpack_entries:
                    self._d = b"".join((d, key[1:], _esc(value), b"\x00"))
                    return True
            d = self._to_table()
        new = field not in d
        d[field] = value
        return new

    def delete(self, fields) -> int:
        """Remove ``fields``; how many were there."""
        d = self._d
        n = 0
        if type(d) is not bytes:
            for f in fields:
                if d.pop(f, None) is not None:
                    n += 1
            return n
        for f in fields:
            at = _locate(d, _key(f))
            if at is not None:
                d = d[:at[0]] + d[at[2]:]
                n += 1
        self._d = d
        return n

    # -- random fields (HRANDFIELD) ----------------------------------------
    def random_field(self):
        """One (field, value) at random."""
        d = self._d
        if type(d) is bytes:
            flat = _entries(d)
            i = random.randrange(len(flat) >> 1) << 1
            return flat[i], flat[i + 1]
        # The first live entry at or after a random position of the table,
        # as RANDOMKEY picks (see engine.dictscan); O(1) but for holes.
        f = pick(d, random.randrange(layout(d)[0]))
        return f, d[f]

    def random_repeating(self, count: int) -> tuple[list, list]:
        """``count`` (fields, values) picked independently (may repeat)."""
        d = self._d
        if type(d) is bytes:
            flat = _entries(d)
            idx = random.choices(range(0, len(flat), 2), k=count)
            return [flat[i] for i in idx], [flat[i + 1] for i in idx]
        used = layout(d)[0]
        picked = [pick(d, random.randrange(used)) for _ in range(count)]
        return picked, [d[f] for f in picked]

    def random_distinct(self, count: int) -> tuple[list, list]:
        """``count`` distinct fields (count < len) and their values.

        Packed: a random choice in the encoding's order, as Redis samples a
        listpack. Table: when count is a third of the hash or more, a sample
        of all its fields (O(N), as Redis copies the dict then); otherwise
        random picks until ``count`` distinct ones (O(count)).
        """
        d = self._d
        if type(d) is bytes:
            flat = _entries(d)
            idx = sorted(random.sample(range(0, len(flat), 2), count))
            return [flat[i] for i in idx], [flat[i + 1] for i in idx]
        if count * 3 > len(d):
            picked = random.sample(list(d), count)
        else:
            used = layout(d)[0]
            seen: dict = {}
            while len(seen) < count:
                seen[pick(d, random.randrange(used))] = None
            picked = list(seen)
        return picked, [d[f] for f in picked]

    # -- HSCAN -------------------------------------------------------------
    def scan(self, cursor: int, count: int) -> tuple[int, list, list]:
        """(next cursor, fields, values): all of a packed hash at once with
        cursor 0, as Redis answers for a listpack; a table by position
        (``engine.dictscan.below``), O(count) per call."""
        d = self._d
        if type(d) is bytes:
            flat = _entries(d)
            return 0, flat[::2], flat[1::2]
        nxt, fields = below(d, cursor if cursor < 2**62 else 0, count)
        return nxt, fields, [d[f] for f in fields]


register(Hash, "hash", encoding=lambda v: v.encoding, copy=Hash.copy)


# --- RDB encodings ---------------------------------------------------------------
#
# Written as Redis 7.0/7.2 write them: a packed hash as RDB type 16 (a listpack
# of field, value, ... inside an RDB string), a table as type 4 (the count,
# then each field and value as an RDB string). Read also: type 13 (a ziplist,
# Redis < 7) and 9 (a zipmap, Redis 2.x), converted on load as Redis does.
# The loaded hash takes the encoding Redis gives it: a table past the entry
# limit; for types 4 and 9 also when a field or value is over the length
# limit, while a listpack or ziplist holding a long value stays packed, as
# Redis 7 loads it. The limits are the defaults: a decoder does not see the
# keyspace's, so a hash loaded packed over a lower configured entry limit
# converts when a write next adds a field to it. An empty hash, an odd count
# of entries, a repeated field or a damaged buffer is ``rdb.PayloadError``
# (RESTORE: "Bad data format"), never a stored value.

RDB_TYPE_HASH = 4
RDB_TYPE_HASH_ZIPMAP = 9
RDB_TYPE_HASH_ZIPLIST = 13
RDB_TYPE_HASH_LISTPACK = 16

_LOAD_LIMITS = Limits()


_INT_START = frozenset(b"-0123456789")
_SHORT_LENGTH = tuple(bytes((n,)) for n in range(64))


def _string(s: bytes) -> bytes:
    """``rdb.encode_string(s)``, without its integer attempt for a short string
    that cannot be one (most fields): a big table's checkpoint runs on the loop."""
    n = len(s)
    if n < 64 and not (n and n <= 11 and s[0] in _INT_START):
        return _SHORT_LENGTH[n] + s
    return rdb.encode_string(s)


def _encode(h: Hash) -> bytes:
    d = h._d
    if type(d) is bytes:
        return bytes((RDB_TYPE_HASH_LISTPACK,)) + rdb.encode_string(listpack.encode(h.flat()))
    enc = _string
    parts = [bytes((RDB_TYPE_HASH,)), rdb.encode_length(len(d))]
    append = parts.append
    for f, v in d.items():
        append(enc(f))
        append(enc(v))
    return b"".join(parts)


def _from_entries(entries: list, check_lengths: bool = True) -> Hash:
    if not entries or len(entries) % 2:
        raise rdb.PayloadError(f"a hash of {len(entries)} entries")
    fields, values = entries[::2], entries[1::2]
    if len(set(fields)) != len(fields):
        raise rdb.PayloadError("a hash field appears twice")
    return Hash.from_pairs(fields, values, _LOAD_LIMITS, check_lengths)


def _decode_table(buf: bytes, pos: int):
    n, pos, special = rdb.read_length(buf, pos)
    if special:
        raise rdb.PayloadError("hash length is not a length")
    read = rdb.read_string
    entries = []
    for _ in range(2 * n):
        s, pos = read(buf, pos)
        entries.append(bytes(s))
    return _from_entries(entries), pos


def _blob_decoder(codec, check_lengths: bool):
    def decode(buf: bytes, pos: int):
        blob, pos = rdb.read_string(buf, pos)
        try:
            entries = codec.decode(bytes(blob))
        except codec.FormatError as e:
            raise rdb.PayloadError(f"damaged {codec.__name__}: {e}") from None
        return _from_entries(entries, check_lengths), pos
    return decode


rdb.register_encoder(Hash, _encode)
rdb.register_decoder(RDB_TYPE_HASH, _decode_table)
rdb.register_decoder(RDB_TYPE_HASH_LISTPACK, _blob_decoder(listpack, check_lengths=False))
rdb.register_decoder(RDB_TYPE_HASH_ZIPLIST, _blob_decoder(ziplist, check_lengths=False))
rdb.register_decoder(RDB_TYPE_HASH_ZIPMAP, _blob_decoder(zipmap, check_lengths=True))
