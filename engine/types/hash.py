"""The hash type: field -> value, packed while small, a dict once big.

Two encodings behind one class, ``Hash``, whose one slot ``_d`` holds either:

* ``listpack`` (small): one ``bytes`` object, ``marshal.dumps([fields,
  values], 2)`` -- two lists of bytes, in the order the fields were first
  set, as Redis's listpack keeps them (HGETALL, HKEYS, HVALS and HSCAN reply
  in that order, byte for byte as Redis does). A packed hash of 10 short
  fields is one ~300-byte object instead of a dict and 20 bytes objects
  (~1,200 B); a command unpacks it (``marshal.loads``, C speed), and a write
  packs it again: O(n) for n <= ``hash-max-listpack-entries``, as a
  listpack's linear scan is. Format version 2 writes no back-references, so
  the same contents always pack the same way, and is faster than 4.
* ``hashtable`` (big): a ``dict``; O(1) per field.

Conversion is one way, as in Redis 7.2: a write converts the packed form
when the hash would hold more than ``hash_max_listpack_entries`` fields, when
a field or value it writes is longer than ``hash_max_listpack_value`` bytes,
or (HSET/HMSET) when the command itself names more pairs than the entry
limit, duplicates included (7.2 sizes the table from the argument count
before it writes; 7.0 does not). Deleting fields never converts back.

Invariants: no field appears twice; a stored ``Hash`` is never empty (the
handlers delete the key with its last field); fields and values are
``bytes``. Readers get copies (lists, a new dict) that a later write cannot
change.
"""

from __future__ import annotations

import marshal
import random

from engine import listpack, rdb, ziplist, zipmap
from engine.dictscan import below, layout, pick
from engine.types import register
from engine.types.limits import Limits

_dumps = marshal.dumps
_loads = marshal.loads
_VERSION = 2
_EMPTY = _dumps([[], []], _VERSION)


def _pack(fields: list, values: list) -> bytes:
    return _dumps([fields, values], _VERSION)


class Hash:
    """A Redis hash; see the module docstring for its two encodings."""

    __slots__ = ("_d",)

    def __init__(self, d=_EMPTY):
        self._d = d

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
        return cls(_pack(list(fields), list(values)))

    def copy(self) -> "Hash":
        d = self._d
        return Hash(d if type(d) is bytes else dict(d))

    @property
    def encoding(self) -> str:
        return "listpack" if type(self._d) is bytes else "hashtable"

    @property
    def packed(self) -> bool:
        return type(self._d) is bytes

    def _to_table(self, fields: list, values: list) -> dict:
        d = self._d = dict(zip(fields, values))
        return d

    # -- reads -------------------------------------------------------------
    def __len__(self) -> int:
        d = self._d
        if type(d) is bytes:
            # The fields list's count: bytes 6..9 of "[" n "[" n ...
            return int.from_bytes(d[6:10], "little")
        return len(d)

    def get(self, field: bytes):
        """The value of ``field`` or None."""
        d = self._d
        if type(d) is not bytes:
            return d.get(field)
        fields, values = _loads(d)
        if field in fields:
            return values[fields.index(field)]
        return None

    def get_many(self, fields) -> list:
        d = self._d
        if type(d) is not bytes:
            return [d.get(f) for f in fields]
        mine, values = _loads(d)
        return [values[mine.index(f)] if f in mine else None for f in fields]

    def __contains__(self, field: bytes) -> bool:
        d = self._d
        if type(d) is not bytes:
            return field in d
        return field in _loads(d)[0]

    def fields(self) -> list:
        d = self._d
        return _loads(d)[0] if type(d) is bytes else list(d)

    def values(self) -> list:
        d = self._d
        return _loads(d)[1] if type(d) is bytes else list(d.values())

    def to_dict(self) -> dict:
        """Every field and value, in the encoding's order (a new dict)."""
        d = self._d
        if type(d) is bytes:
            fields, values = _loads(d)
            return dict(zip(fields, values))
        return dict(d)

    def flat(self) -> list:
        """[field, value, field, value, ...] in the encoding's order."""
        d = self._d
        if type(d) is bytes:
            fields, values = _loads(d)
        else:
            fields, values = d.keys(), d.values()
        out = [None] * (2 * len(fields))
        out[::2] = fields
        out[1::2] = values
        return out

    # -- writes ------------------------------------------------------------
    def set_pairs(self, argv: list, start: int, limits) -> int:
        """Set the pairs ``argv[start], argv[start+1], ...``; the number of new fields."""
        d = self._d
        if type(d) is bytes:
            n = len(argv) - start
            if n == 2:  # one pair: the common case, without the loop
                return self.set(argv[start], argv[start + 1], limits)
            if n // 2 <= limits.hash_max_listpack_entries and \
                    max(map(len, argv[start:])) <= limits.hash_max_listpack_value:
                fields, values = _loads(d)
                created = 0
                for j in range(start, len(argv), 2):
                    f = argv[j]
                    if f in fields:
                        values[fields.index(f)] = argv[j + 1]
                    else:
                        fields.append(f)
                        values.append(argv[j + 1])
                        created += 1
                if len(fields) > limits.hash_max_listpack_entries:
                    self._to_table(fields, values)
                else:
                    self._d = _pack(fields, values)
                return created
            d = self._to_table(*_loads(d))
        n = len(d)
        for j in range(start, len(argv), 2):
            d[argv[j]] = argv[j + 1]
        return len(d) - n

    def set(self, field: bytes, value: bytes, limits) -> bool:
        """Set one field; True when it is new."""
        d = self._d
        if type(d) is bytes:
            fields, values = _loads(d)
            longest = limits.hash_max_listpack_value
            if len(field) <= longest and len(value) <= longest:
                if field in fields:
                    values[fields.index(field)] = value
                    self._d = _pack(fields, values)
                    return False
                fields.append(field)
                values.append(value)
                if len(fields) > limits.hash_max_listpack_entries:
                    self._to_table(fields, values)
                else:
                    self._d = _pack(fields, values)
                return True
            d = self._to_table(fields, values)
        new = field not in d
        d[field] = value
        return new

    def delete(self, fields) -> int:
        """Remove ``fields``; how many were there."""
        d = self._d
        if type(d) is not bytes:
            n = 0
            for f in fields:
                if d.pop(f, None) is not None:
                    n += 1
            return n
        mine, values = _loads(d)
        n = 0
        for f in fields:
            if f in mine:
                i = mine.index(f)
                del mine[i]
                del values[i]
                n += 1
        if n:
            self._d = _pack(mine, values)
        return n

    # -- random fields (HRANDFIELD) ----------------------------------------
    def random_field(self):
        """One (field, value) at random."""
        d = self._d
        if type(d) is bytes:
            fields, values = _loads(d)
            i = random.randrange(len(fields))
            return fields[i], values[i]
        # The first live entry at or after a random position of the table,
        # as RANDOMKEY picks (see engine.dictscan); O(1) but for holes.
        f = pick(d, random.randrange(layout(d)[0]))
        return f, d[f]

    def random_repeating(self, count: int) -> tuple[list, list]:
        """``count`` (fields, values) picked independently (may repeat)."""
        d = self._d
        if type(d) is bytes:
            fields, values = _loads(d)
            idx = random.choices(range(len(fields)), k=count)
            return [fields[i] for i in idx], [values[i] for i in idx]
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
            fields, values = _loads(d)
            idx = sorted(random.sample(range(len(fields)), count))
            return [fields[i] for i in idx], [values[i] for i in idx]
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
            fields, values = _loads(d)
            return 0, fields, values
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
# Redis 7 loads it. The limits are the defaults (a decoder does not see the
# keyspace's; a hash over a lower configured limit converts at its next write). An empty
# hash, an odd count of entries, a repeated field or a damaged buffer is
# ``rdb.PayloadError`` (RESTORE: "Bad data format"), never a stored value.

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
