"""The set: distinct byte strings, in three encodings behind one interface.

The encodings and their conversion points are Redis 7.2's (7.0 has no set
listpack), converted small to large (the one way back is Redis 7.2's too: an
SPOP that leaves at most a sixth of a hashtable rebuilds it from what stays,
as a listpack when that fits; see ``Set.pop``):

* ``intset`` while every member is the canonical decimal form of a signed
  64-bit integer and there are at most ``set-max-intset-entries``: a sorted
  ``array('q')``, so a lookup is a ``bisect`` (O(log n)) and members come out
  in ascending order, as Redis's intset gives them.
* ``listpack`` while there are at most ``set-max-listpack-entries`` members
  of at most ``set-max-listpack-value`` bytes: the members packed into one
  ``bytes`` object (``marshal`` version 2 of the tuple, in insertion order).
  A command decodes it at C speed, works on the tuple or list and packs it
  again: O(n) for n <= the threshold, as Redis's listpack is, at about a
  third of the memory of a Python set of the same members.
* ``hashtable`` beyond: a dict member -> None. A dict rather than a ``set``
  because its entries sit in an array: ``engine.dictscan.pick`` takes the
  first live member at a random position in O(1), so SPOP and SRANDMEMBER
  cost their count, not the set's size, and SSCAN walks it by position.
  It costs about a tenth more than a set (measured with 1M 10-byte members:
  85 B a member against 77, traced; 90 B resident against Redis 7.0's 65).
  Deletions leave holes; once fewer than an eighth of the entries are live,
  the dict is rebuilt compact (amortised O(1) a deletion), so a pick never
  walks a long run of holes, as Redis shrinks a dict that falls below 10%.

The rules (``t_set.c`` in 7.2): a new set is an intset when its first member
is an integer and the command brings at most ``set-max-intset-entries``
members, else a listpack when it brings at most ``set-max-listpack-entries``,
else a hashtable. SADD of more members than an encoding's threshold converts
the set first, whether or not they are new. A non-integer added to an intset
makes a listpack when the intset has fewer than ``set-max-listpack-entries``
members and both the new member and the intset's longest integer fit
``set-max-listpack-value``; a hashtable otherwise. An intset that grows past
its limit becomes a hashtable; so does a listpack.

Invariants: a stored Set is never empty (the commands delete an emptied
key); ``enc`` names what ``data`` is; an intset's array is sorted and holds
no duplicates; a listpack's tuple has no duplicates.
"""

from __future__ import annotations

import marshal
import random
from array import array
from bisect import bisect_left
from itertools import chain

from engine import intset, listpack, rdb
from engine.dictscan import below, layout, pick
from engine.memory import ARRAY_OBJECT, BYTES_HEADER, DICT_ENTRY, DICT_OBJECT, object_cost, sample_cost, slack
from engine.types import register
from engine.types.limits import Limits
from engine.util import to_int_or_none

INTSET, LISTPACK, HASHTABLE = 0, 1, 2
ENCODING_NAMES = ("intset", "listpack", "hashtable")

# A hashtable is rebuilt once it has more than this many entries per live member.
_HOLES_PER_MEMBER = 8
_MIN_REBUILD = 64


def pack(members) -> bytes:
    """The listpack form of ``members`` (distinct bytes, in order)."""
    return marshal.dumps(tuple(members), 2)


def _packed_len(blob: bytes) -> int:
    # marshal version 2 writes a tuple as "(" and a 4-byte little-endian count.
    return int.from_bytes(blob[1:5], "little")


def _digits(v: int) -> int:
    return len(b"%d" % v)


_OBJECT = object_cost(5)
_PACKED = _OBJECT + slack(BYTES_HEADER + 8)  # a listpack beyond its length (8: the average block rounding)
_INTSET = _OBJECT + ARRAY_OBJECT  # and 8 bytes a member, with the array's spare room
_BIG = _OBJECT + DICT_OBJECT


class Set:
    # _held: the charge Keyspace.mem_used counts this set with; _per, _at: a
    # hashtable's sampled cost per member and the count that resamples it.
    __slots__ = ("enc", "data", "_held", "_per", "_at")

    def __init__(self, enc: int, data):
        self.enc = enc
        self.data = data
        self._at = 0

    def mem_size(self, samples: int | None = None) -> int:
        """Approximate bytes (engine.memory), O(1) amortised: the packed
        bytes, the intset's 8 bytes a member, or members x (a dict entry + a
        sampled member)."""
        d = self.data
        enc = self.enc
        if enc == LISTPACK:
            n = len(d)
            return n + (n >> 3) + _PACKED  # engine.memory.slack
        n = len(d)
        if enc == INTSET:
            return _INTSET + 9 * n  # 8 bytes and the array's spare room
        if samples is not None:  # MEMORY USAGE SAMPLES: that many members now (0: all)
            return _BIG + n * (DICT_ENTRY + sample_cost(d, samples or n))
        if n >= self._at or n < self._at >> 2:
            self._per = DICT_ENTRY + sample_cost(d)
            self._at = 2 * n or 1
        return _BIG + n * self._per

    # -- construction -------------------------------------------------------
    @classmethod
    def new(cls, first: bytes, hint: int, limits) -> "Set":
        """An empty set for a command that brings ``hint`` members, ``first`` first."""
        if hint <= limits.set_max_intset_entries and to_int_or_none(first) is not None:
            return cls(INTSET, array("q"))
        if hint <= limits.set_max_listpack_entries:
            return cls(LISTPACK, pack(()))
        return cls(HASHTABLE, {})

    @classmethod
    def build(cls, members, limits, first_enc: int = LISTPACK) -> "Set":
        """A set holding ``members`` (distinct), built as a store command builds it.

        Redis starts an intset when the first source set is one and a
        listpack otherwise, adds the members one by one (converting as SADD
        does), and ends an all-integer listpack that fits as an intset.
        """
        s = cls(INTSET, array("q")) if first_enc == INTSET else cls(LISTPACK, pack(()))
        s.add(members, limits, hint=0)
        if s.enc == LISTPACK:
            items = marshal.loads(s.data)
            if len(items) <= limits.set_max_intset_entries:
                ints = [to_int_or_none(m) for m in items]
                if None not in ints:
                    s.enc, s.data = INTSET, array("q", sorted(ints))
        return s

    def copy(self) -> "Set":
        if self.enc == LISTPACK:
            return Set(LISTPACK, self.data)  # bytes: immutable, shared
        if self.enc == INTSET:
            return Set(INTSET, self.data[:])
        return Set(HASHTABLE, self.data.copy())

    # -- reading ------------------------------------------------------------
    def __len__(self) -> int:
        if self.enc == LISTPACK:
            return _packed_len(self.data)
        return len(self.data)

    def encoding(self) -> str:
        return ENCODING_NAMES[self.enc]

    def contains(self, m: bytes) -> bool:
        enc = self.enc
        if enc == HASHTABLE:
            return m in self.data
        if enc == LISTPACK:
            return m in marshal.loads(self.data)
        v = to_int_or_none(m)
        if v is None:
            return False
        a = self.data
        i = bisect_left(a, v)
        return i < len(a) and a[i] == v

    def contains_many(self, members) -> list[bool]:
        """``contains`` for each of ``members``, decoding once."""
        enc = self.enc
        if enc == HASHTABLE:
            d = self.data
            return [m in d for m in members]
        if enc == LISTPACK:
            items = frozenset(marshal.loads(self.data))
            return [m in items for m in members]
        return [self.contains(m) for m in members]

    def members(self) -> list:
        """Every member as bytes: ascending for an intset, else in the encoding's order."""
        enc = self.enc
        if enc == HASHTABLE:
            return list(self.data)
        if enc == LISTPACK:
            return list(marshal.loads(self.data))
        return [b"%d" % v for v in self.data]

    def scan(self, cursor: int, count: int) -> tuple[int, list]:
        """SSCAN's step: (next cursor, members). A hashtable is walked by
        position from ``cursor``, O(count); a compact set answers whole, 0."""
        if self.enc == HASHTABLE:
            return below(self.data, cursor, count)
        return 0, self.members()

    def lookup(self):
        """A container answering ``in`` for members: O(1) or O(log n) a test."""
        enc = self.enc
        if enc == HASHTABLE:
            return self.data
        if enc == LISTPACK:
            return frozenset(marshal.loads(self.data))
        return _IntsetView(self.data)

    # -- writing ------------------------------------------------------------
    def add(self, members, limits, hint: int | None = None) -> int:
        """Add ``members``; the number that were new. Converts as SADD does.

        ``hint`` is how many members the command brings (SADD's argument
        count, by default ``len(members)``): more than the encoding's
        threshold converts the set to a hashtable before anything is added.
        """
        if hint is None:
            hint = len(members)
        enc = self.enc
        if enc == LISTPACK and hint > limits.set_max_listpack_entries or \
                enc == INTSET and hint > limits.set_max_intset_entries:
            self._to_hashtable(self.members())
            enc = HASHTABLE
        added = 0
        it = iter(members)
        if enc == INTSET:
            added, it = self._add_intset(it, limits)
            if it is None:
                return added
        if self.enc == LISTPACK:
            items = list(marshal.loads(self.data))
            n, rest = _add_listpack(items, it, limits)
            added += n
            if rest is None:
                if n:
                    self.data = pack(items)
                return added
            self._to_hashtable(items)
            it = chain((rest,), it)
        d = self.data
        before = len(d)
        for m in it:
            d[m] = None
        return added + len(d) - before

    def _add_intset(self, it, limits):
        """Add integers from ``it`` while the set stays an intset: (added,
        the members still to add, once it converted, or None)."""
        a = self.data
        added = 0
        top = limits.set_max_intset_entries
        for m in it:
            v = to_int_or_none(m)
            if v is None:
                if (len(a) < limits.set_max_listpack_entries and len(m) <= limits.set_max_listpack_value
                        and (not a or max(_digits(a[0]), _digits(a[-1])) <= limits.set_max_listpack_value)):
                    self.enc, self.data = LISTPACK, pack([b"%d" % x for x in a])
                else:
                    self._to_hashtable(b"%d" % x for x in a)
                return added, chain((m,), it)
            i = bisect_left(a, v)
            if i < len(a) and a[i] == v:
                continue
            a.insert(i, v)
            added += 1
            if len(a) > top:
                self._to_hashtable(b"%d" % x for x in a)
                return added, it
        return added, None

    def remove(self, members) -> int:
        """Remove ``members``; the number that were there."""
        enc = self.enc
        removed = 0
        if enc == HASHTABLE:
            d = self.data
            for m in members:
                if m in d:
                    del d[m]
                    removed += 1
            if removed:
                self._maybe_rebuild()
        elif enc == LISTPACK:
            items = list(marshal.loads(self.data))
            for m in members:
                try:
                    items.remove(m)
                except ValueError:
                    continue
                removed += 1
            if removed:
                self.data = pack(items)
        else:
            a = self.data
            for m in members:
                v = to_int_or_none(m)
                if v is None:
                    continue
                i = bisect_left(a, v)
                if i < len(a) and a[i] == v:
                    del a[i]
                    removed += 1
        return removed

    # -- random picks -------------------------------------------------------
    def random_member(self) -> bytes:
        enc = self.enc
        if enc == HASHTABLE:
            d = self.data
            return pick(d, int(random.random() * layout(d)[0]))
        if enc == LISTPACK:
            return random.choice(marshal.loads(self.data))
        a = self.data
        return b"%d" % a[int(random.random() * len(a))]

    def random_members(self, count: int) -> list:
        """``count`` members picked independently (repeats allowed)."""
        enc = self.enc
        if enc == HASHTABLE:
            d = self.data
            n = layout(d)[0]
            rnd = random.random
            return [pick(d, int(rnd() * n)) for _ in range(count)]
        if enc == LISTPACK:
            return random.choices(marshal.loads(self.data), k=count)
        return [b"%d" % v for v in random.choices(self.data, k=count)]

    def sample(self, count: int) -> list:
        """``count`` distinct members (``count`` < ``len(self)``), O(count)."""
        if self.enc != HASHTABLE or count * 3 > len(self.data):
            return random.sample(self.members(), count)
        d = self.data
        n = layout(d)[0]
        rnd = random.random
        seen = {}
        while len(seen) < count:
            seen[pick(d, int(rnd() * n))] = None
        return list(seen)

    def pop(self, count: int, limits) -> list:
        """Remove and return ``count`` random members (``count`` < ``len(self)``).

        As Redis 7.2: while more than a fifth of ``count`` stay, the members
        are taken one by one, O(count); otherwise the ones that stay are
        picked instead, O(n) = O(count), and a hashtable's survivors make a
        new set that starts as a listpack and grows as SADD grows one: the
        one place where a set goes back to a compact encoding.
        """
        enc = self.enc
        n = len(self)
        few_stay = (n - count) * 5 <= count
        if enc == HASHTABLE and not few_stay:
            d = self.data
            rnd = random.random
            out = []
            for _ in range(count):
                m = pick(d, int(rnd() * layout(d)[0]))
                del d[m]
                out.append(m)
            self._maybe_rebuild()
            return out
        if enc == INTSET:
            a = self.data
            if count == 1:
                return [b"%d" % a.pop(int(random.random() * len(a)))]
            taken = set(random.sample(range(len(a)), count))
            self.data = array("q", (v for i, v in enumerate(a) if i not in taken))
            return [b"%d" % a[i] for i in taken]
        items = self.members()
        if count == 1:
            taken = [items.pop(int(random.random() * len(items)))]
        else:
            taken = [items[i] for i in random.sample(range(len(items)), count)]
            gone = set(taken)
            items = [m for m in items if m not in gone]
        if enc == LISTPACK:
            self.data = pack(items)
        else:
            self.enc, self.data = LISTPACK, pack(())
            self.add(items, limits, hint=0)
        return taken

    # -- conversions --------------------------------------------------------
    def _to_hashtable(self, members) -> None:
        self.enc, self.data = HASHTABLE, dict.fromkeys(members)

    def _maybe_rebuild(self) -> None:
        d = self.data
        entries, live = layout(d)
        if entries > _MIN_REBUILD and live * _HOLES_PER_MEMBER < entries:
            self.data = dict.fromkeys(d)


def _add_listpack(items: list, it, limits):
    """Add members from ``it`` to the listpack ``items`` until one does not
    fit: (added, that member or None)."""
    added = 0
    top = limits.set_max_listpack_entries
    longest = limits.set_max_listpack_value
    for m in it:
        if m in items:
            continue
        if len(items) < top and len(m) <= longest:
            items.append(m)
            added += 1
        else:
            return added, m
    return added, None


class _IntsetView:
    """``in`` over a sorted int64 array for members given as bytes."""

    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __contains__(self, m) -> bool:
        v = to_int_or_none(m)
        if v is None:
            return False
        a = self.a
        i = bisect_left(a, v)
        return i < len(a) and a[i] == v


register(Set, "set", encoding=Set.encoding, copy=Set.copy)


# --- RDB -----------------------------------------------------------------------
# Written as Redis 7.2 writes each encoding: an intset as RDB type 11 (a string
# holding Redis's intset buffer), a listpack as type 20 (a string holding a
# listpack; Redis 7.0 cannot read it), a hashtable as type 2 (a length, then
# each member as a string). A payload is read with Redis 7.2's default
# thresholds, into the encoding Redis 7.2 would load it as.

RDB_SET, RDB_SET_INTSET, RDB_SET_LISTPACK = 2, 11, 20
_LOAD_LIMITS = Limits()


def _encode(s: Set) -> bytes:
    if s.enc == INTSET:
        buf = intset.encode(s.data)
        return bytes((RDB_SET_INTSET,)) + rdb.encode_length(len(buf)) + buf
    if s.enc == LISTPACK:
        buf = listpack.encode(marshal.loads(s.data))
        return bytes((RDB_SET_LISTPACK,)) + rdb.encode_length(len(buf)) + buf
    parts = [bytes((RDB_SET,)), rdb.encode_length(len(s.data))]
    append = parts.append
    encode_string = rdb.encode_string
    for m in s.data:
        n = len(m)
        if n <= 11 and m[:1] in _INT_START:
            append(encode_string(m))  # may be written as an integer
        elif n < 64:
            append(_LEN6[n])
            append(m)
        else:
            append(rdb.encode_length(n))
            append(m)
    return b"".join(parts)


# What encode_string would write for a member that cannot be an integer.
_INT_START = b"-0123456789"
_LEN6 = [rdb.encode_length(n) for n in range(64)]


def _decode_table(buf: bytes, pos: int):
    n, pos, special = rdb.read_length(buf, pos)
    if special or n == 0:
        raise rdb.PayloadError("empty or malformed set length")
    members = []
    read_string = rdb.read_string
    for _ in range(n):
        m, pos = read_string(buf, pos)
        members.append(m)
    # As Redis loads it: an intset unless it has too many members, growing
    # into a listpack or a hashtable as SADD grows a set.
    limits = _LOAD_LIMITS
    s = Set(INTSET, array("q")) if n <= limits.set_max_intset_entries else Set(HASHTABLE, {})
    if s.add(members, limits, hint=0) != n:
        raise rdb.PayloadError("duplicate set members")
    return s, pos


def _decode_intset(buf: bytes, pos: int):
    blob, pos = rdb.read_string(buf, pos)
    try:
        ints = intset.decode(blob)
    except intset.FormatError as e:
        raise rdb.PayloadError(f"bad intset: {e}") from None
    s = Set(INTSET, array("q", ints))
    if len(ints) > _LOAD_LIMITS.set_max_intset_entries:
        s._to_hashtable(s.members())
    return s, pos


def _decode_listpack(buf: bytes, pos: int):
    blob, pos = rdb.read_string(buf, pos)
    try:
        members = listpack.decode(blob)
    except listpack.FormatError as e:
        raise rdb.PayloadError(f"bad set listpack: {e}") from None
    if not members or len(set(members)) != len(members):
        raise rdb.PayloadError("empty set listpack or duplicate members")
    if len(members) > _LOAD_LIMITS.set_max_listpack_entries:
        return Set(HASHTABLE, dict.fromkeys(members)), pos
    return Set(LISTPACK, pack(members)), pos


rdb.register_encoder(Set, _encode)
rdb.register_decoder(RDB_SET, _decode_table)
rdb.register_decoder(RDB_SET_INTSET, _decode_intset)
rdb.register_decoder(RDB_SET_LISTPACK, _decode_listpack)
