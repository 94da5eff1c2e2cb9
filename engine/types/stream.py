"""The stream type: entries by ID in packed nodes, and consumer groups.

Representation (why: Redis keeps a stream's entries in listpacks of at most
``stream-node-max-bytes`` / ``stream-node-max-entries`` under a radix tree;
one Python object per entry would cost several times its memory):

* Entries are grouped into **nodes** with Redis's boundaries: a new node
  starts when the last one holds ``stream-node-max-entries`` entries (live
  and deleted alike) or when its listpack size (``_tail_lp``, what Redis's
  listpack of the same entries would take) plus the new entry's field and
  value bytes reaches ``stream-node-max-bytes``. So ``radix-tree-keys``
  (the node count) agrees with Redis.
* Each node has a **master field list** (the first entry's field names, as
  in Redis): an entry with the same field names keeps only its values (a
  tuple); one with other fields keeps ``[f, v, f, v, ...]`` (a list).
* The last node is **open**: ``[master_fields, ids, values]`` with ``ids``
  a Python list of ``(ms, seq)`` tuples; an append is two list appends. A
  deleted entry's value there is ``None`` (its bytes still count towards
  ``_tail_lp``, as a deleted listpack entry does).
* Every older node is **packed**: ``marshal`` bytes of ``(master_fields,
  base_ms, ms_code, ms_deltas, seq_code, seqs, layout, values)``: the IDs as
  two ``array`` buffers of the narrowest width that fits (milliseconds as
  deltas from ``base_ms``), ``layout`` None when every entry uses the master
  fields (else one int per entry: 0 or its pair count), ``values`` flat.
  Deleted entries are dropped when a node is packed. Unpacking is C code
  (``array``, ``zip``, ``map``) but for the mixed layout; one unpacked node
  is cached (``_cache``) so that consecutive reads in a node unpack it once.
* Per node, parallel lists: ``_firsts`` (the node's master ID: its first
  entry ever, deleted or not — what ``bisect`` searches), ``_lasts`` (its last
  entry ever), ``_live`` and ``_dead`` counts. A node whose entries are all
  deleted is removed, as Redis frees an emptied listpack.

A read from any ID bisects ``_firsts`` and unpacks one node: O(log nodes +
node). An append is O(1) (packing the closed node once per node's worth).

Stream metadata as Redis keeps it: ``length``, ``last_id`` (last generated
ID), ``first_id`` (the recorded first entry ID: the first live entry, 0-0
when empty), ``max_deleted`` (the largest ID XDEL removed), ``entries_added``.

Consumer groups (``groups``: name -> ``Group``, listed sorted by name as
Redis's radix tree lists them) are in ``engine.types.stream_group``.

IDs are ``(ms, seq)`` tuples of unsigned 64-bit ints throughout.
"""

from __future__ import annotations

import marshal
from array import array
from bisect import bisect_left, bisect_right
from itertools import chain, repeat
from operator import add

from engine.memory import bytes_cost, object_cost
from engine.types import register
from engine.types.stream_group import Consumer, Group, Pending

UINT64_MAX = 2**64 - 1
MIN_ID = (0, 0)
MAX_ID = (UINT64_MAX, UINT64_MAX)
_CODES = (("B", 0xFF), ("H", 0xFFFF), ("I", 0xFFFFFFFF), ("Q", UINT64_MAX))
_LP_HEADER = 7  # listpack header (6) and terminator (1)
_MAX_NODE_BYTES = 2**30  # Redis's cap on a stream listpack, whatever stream-node-max-bytes says


def format_id(i) -> bytes:
    return b"%d-%d" % i


_INT_START = frozenset(b"-0123456789")


def _code(top: int) -> str:
    for code, limit in _CODES:
        if top <= limit:
            return code
    return "Q"


# --- listpack sizes (for Redis's node boundaries) -----------------------------

def _backlen(n: int) -> int:
    return 1 if n <= 127 else 2 if n < 16383 else 3 if n < 2097151 else 4 if n < 268435455 else 5


def int_size(i: int) -> int:
    """Bytes an integer takes as one listpack entry."""
    if 0 <= i <= 127:
        return 2
    if -4096 <= i <= 4095:
        return 3
    if -32768 <= i <= 32767:
        return 4
    if -8388608 <= i <= 8388607:
        return 5
    if -2147483648 <= i <= 2147483647:
        return 6
    return 10


def str_size(v: bytes) -> int:
    """Bytes a string takes as one listpack entry (integers packed as such)."""
    n = len(v)
    if n and n <= 20 and v[0] in _INT_START:
        try:
            i = int(v)
        except ValueError:
            i = None
        if i is not None and b"%d" % i == v and -(2**63) <= i < 2**63:
            return int_size(i)
    if n <= 63:
        return n + 2
    head = n + (2 if n <= 4095 else 5)
    return head + _backlen(head)


def _delta_size(d: int) -> int:
    # Redis writes ID deltas as int64 listpack integers (a wrapped value past 2**63).
    if d >= 2**63:
        d -= 2**64
    return int_size(d)


def master_size(mfields) -> int:
    """A node's master entry without its count and deleted fields, plus the listpack frame."""
    return _LP_HEADER + int_size(len(mfields)) + sum(map(str_size, mfields)) + 2


# --- nodes ----------------------------------------------------------------------

def pack_node(mfields, ids, vals) -> bytes:
    """The packed form of a node's live entries."""
    keep = [k for k, v in enumerate(vals) if v is not None]
    if len(keep) != len(ids):
        ids = [ids[k] for k in keep]
        vals = [vals[k] for k in keep]
    base = ids[0][0]
    msd = [m - base for m, _ in ids]
    seqs = [s for _, s in ids]
    mc, sc = _code(max(msd)), _code(max(seqs))
    if all(type(v) is tuple for v in vals):
        layout = None
        flat = [x for v in vals for x in v]
    else:
        layout = [0 if type(v) is tuple else len(v) // 2 for v in vals]
        flat = [x for v in vals for x in v]
    return marshal.dumps((mfields, base, mc, array(mc, msd).tobytes(), sc, array(sc, seqs).tobytes(), layout, flat))


def unpack_node(blob: bytes):
    """``(master_fields, ids, values)`` of a packed node."""
    mfields, base, mc, mb, sc, sb, layout, flat = marshal.loads(blob)
    msd = array(mc)
    msd.frombytes(mb)
    seqs = array(sc)
    seqs.frombytes(sb)
    ids = list(zip(map(add, msd, repeat(base)), seqs))
    if layout is None:
        n = len(mfields)
        vals = list(zip(*[iter(flat)] * n)) if n else [()] * len(ids)
    else:
        vals = []
        pos = 0
        n = len(mfields)
        for k in layout:
            if k:
                vals.append(flat[pos:pos + 2 * k])
                pos += 2 * k
            else:
                vals.append(tuple(flat[pos:pos + n]))
                pos += n
    return mfields, ids, vals


def fields_of(mfields, v) -> list:
    """An entry's ``[field, value, ...]`` from its stored form."""
    if type(v) is tuple:
        return list(chain.from_iterable(zip(mfields, v)))
    return list(v)


# --- the stream -------------------------------------------------------------------

_OBJECT = object_cost(16)
_NODE = 200  # a packed node's bytes header, its first/last IDs and counts in the index lists
_TAIL_ENTRY = 200  # an entry of the open node: its ID tuple and ints, its values tuple and slots
_GROUP = 400  # a consumer group's objects and its dict entry
_PENDING = 180  # a PEL entry: its ID, its Pending object, its places in the group's and consumer's PEL
_GROUP_ID = _GROUP + bytes_cost(8)  # and its last ID (computed once: mem_size runs on every change)


class Stream:
    # _held: the charge Keyspace.mem_used counts this stream with; _per, _at:
    # the sampled packed bytes per entry and the length that resamples it.
    __slots__ = ("_firsts", "_lasts", "_nodes", "_live", "_dead", "_tail_lp", "_cache",
                 "length", "last_id", "first_id", "max_deleted", "entries_added", "groups",
                 "_held", "_per", "_at")

    def mem_size(self, samples: int | None = None) -> int:
        """Approximate bytes (engine.memory), O(groups) (a few): the packed
        nodes from a sampled size per entry, the open node's entries as the
        Python objects they are, the consumer groups and their PELs
        (``samples``, from MEMORY USAGE, changes nothing: nodes are sampled
        whole)."""
        nodes = self._nodes
        n = self.length
        tail = 0
        if nodes and type(nodes[-1]) is list:
            tail = self._live[-1] + self._dead[-1]
            total = tail * _TAIL_ENTRY + self._tail_lp * 2
        else:
            total = 0
        packed = max(n - tail, 0)
        # Resampled at a power of two, and once the first node is packed.
        if n >= self._at or n < self._at >> 2 or packed and not self._per:
            sz = cnt = 0
            for k in range(len(nodes) - 1, max(len(nodes) - 6, -1), -1):
                if type(nodes[k]) is bytes:
                    sz += len(nodes[k])
                    cnt += self._live[k] + self._dead[k]
            self._per = sz // cnt if cnt else 0
            self._at = 2 * n or 1
        total += _OBJECT + _NODE * len(nodes) + packed * self._per
        groups = self.groups
        if groups:
            for g in groups.values():
                total += _GROUP_ID + len(g.pel.map) * _PENDING + len(g.consumers) * _GROUP
        return total

    def __init__(self):
        self._at = 0
        self._firsts: list = []
        self._lasts: list = []
        self._nodes: list = []  # packed bytes, or the open last node [mfields, ids, vals]
        self._live: list = []
        self._dead: list = []
        self._tail_lp = 0  # the open node's listpack bytes but its count fields
        self._cache = None  # (node index, unpacked) of one packed node
        self.length = 0
        self.last_id = MIN_ID
        self.first_id = MIN_ID
        self.max_deleted = MIN_ID
        self.entries_added = 0
        self.groups: dict[bytes, Group] | None = None

    def __len__(self) -> int:
        return self.length

    # -- nodes ------------------------------------------------------------------
    def node_count(self) -> int:
        return len(self._nodes)

    def node(self, k: int):
        """``(master_fields, ids, values)`` of node ``k`` (shared: do not change)."""
        n = self._nodes[k]
        if type(n) is list:
            return n
        c = self._cache
        if c is not None and c[0] == k:
            return c[1]
        u = unpack_node(n)
        self._cache = (k, u)
        return u

    def _close_tail(self) -> None:
        if self._nodes and type(self._nodes[-1]) is list:
            mf, ids, vals = self._nodes[-1]
            self._nodes[-1] = pack_node(mf, ids, vals)

    def append(self, i, fv: list, max_bytes: int, max_entries: int) -> None:
        """Add the entry ``i`` (greater than ``last_id``) with ``fv`` = [f, v, ...]."""
        nodes = self._nodes
        tail = nodes[-1] if nodes else None
        if type(tail) is list:
            live, dead = self._live[-1], self._dead[-1]
            lp = self._tail_lp + (2 if live < 128 else int_size(live)) + (2 if dead < 128 else int_size(dead))
            if max_bytes <= 0 or max_bytes > _MAX_NODE_BYTES:
                max_bytes = _MAX_NODE_BYTES
            if lp + sum(map(len, fv)) >= max_bytes or (max_entries and live + dead >= max_entries):
                tail = None
        else:
            tail = None
        names = tuple(fv[0::2])
        if tail is None:
            self._close_tail()
            tail = [names, [], []]
            nodes.append(tail)
            self._firsts.append(i)
            self._lasts.append(i)
            self._live.append(0)
            self._dead.append(0)
            self._tail_lp = master_size(names)
        mf, ids, vals = tail
        master = self._firsts[-1]
        d = i[0] - master[0]
        q = (i[1] - master[1]) & UINT64_MAX
        # flags, ms and seq differences, the element count: 2 bytes each when small
        n = 8 + (0 if 0 <= d < 128 else 1 if d < 4096 else _delta_size(d) - 2) + \
            (0 if q < 128 else _delta_size(q) - 2)
        if names == mf:
            v = tuple(fv[1::2])
            if len(v) > 124:
                n += int_size(len(v) + 3) - 2
        else:
            v = list(fv)
            n += int_size(len(v) // 2) + int_size(len(v) + 4) - 2
        for x in v:  # str_size, its common case written out
            k = len(x)
            n += k + 2 if k < 64 and not (k and x[0] in _INT_START) else str_size(x)
        self._tail_lp += n
        ids.append(i)
        vals.append(v)
        self._lasts[-1] = i
        self._live[-1] += 1
        if not self.length:
            self.first_id = i
        self.length += 1
        self.last_id = i
        self.entries_added += 1

    def _drop_node(self, k: int) -> None:
        for lst in (self._firsts, self._lasts, self._nodes, self._live, self._dead):
            del lst[k]
        self._cache = None

    def _rewrite(self, k: int, mf, ids, vals) -> None:
        """Store node ``k`` changed (some values set to None; some still live)."""
        if type(self._nodes[k]) is list:
            return  # the open node was changed in place
        self._nodes[k] = pack_node(mf, ids, vals)
        self._cache = None

    def _refresh_first(self) -> None:
        if not self.length:
            self.first_id = MIN_ID
            return
        for k in range(len(self._nodes)):
            if self._live[k]:
                _, ids, vals = self.node(k)
                for j, v in enumerate(vals):
                    if v is not None:
                        self.first_id = ids[j]
                        return

    # -- lookups ----------------------------------------------------------------
    def _start_node(self, lo) -> int:
        k = bisect_right(self._firsts, lo) - 1
        return max(k, 0)

    def range(self, lo, hi, count: int = 0, rev: bool = False) -> list:
        """``[(id, stored value, master_fields), ...]`` with lo <= id <= hi, at most ``count`` (0: all)."""
        out = []
        if lo > hi or not self.length:
            return out
        if not rev:
            k = self._start_node(lo)
            while k < len(self._nodes):
                if self._firsts[k] > hi:
                    break
                if self._lasts[k] >= lo:
                    mf, ids, vals = self.node(k)
                    j = bisect_left(ids, lo)
                    while j < len(ids):
                        i = ids[j]
                        if i > hi:
                            return out
                        v = vals[j]
                        if v is not None:
                            out.append((i, v, mf))
                            if len(out) == count:
                                return out
                        j += 1
                k += 1
            return out
        k = bisect_right(self._firsts, hi) - 1
        while k >= 0:
            if self._lasts[k] < lo:
                break
            mf, ids, vals = self.node(k)
            j = bisect_right(ids, hi) - 1
            while j >= 0:
                i = ids[j]
                if i < lo:
                    return out
                v = vals[j]
                if v is not None:
                    out.append((i, v, mf))
                    if len(out) == count:
                        return out
                j -= 1
            k -= 1
        return out

    def slices(self, lo, count: int = 0) -> list:
        """The live entries from ``lo`` on, at most ``count`` (0: all), as ``range`` finds them
        but node by node: ``[(master_fields, ids, values), ...]``, lists cut from each node
        (a slice in C where no deleted entry lies in the way)."""
        out = []
        if not self.length:
            return out
        left = count
        lasts = self._lasts
        k = self._start_node(lo)
        while k < len(lasts):
            if lasts[k] >= lo:
                mf, ids, vals = self.node(k)
                j = bisect_left(ids, lo) if ids[0] < lo else 0
                end = j + left if count else len(ids)
                sv = vals[j:end]
                if None in sv:  # deleted entries of the open node: skipped one by one
                    si, sv = [], []
                    for x in range(j, len(ids)):
                        v = vals[x]
                        if v is not None:
                            si.append(ids[x])
                            sv.append(v)
                            if len(sv) == left:
                                break
                else:
                    si = ids[j:end]
                if sv:
                    out.append((mf, si, sv))
                    if count:
                        left -= len(sv)
                        if not left:
                            return out
            k += 1
        return out

    def get(self, i):
        """The stored value and master fields of entry ``i``, or None."""
        k = bisect_right(self._firsts, i) - 1
        if k < 0 or self._lasts[k] < i:
            return None
        mf, ids, vals = self.node(k)
        j = bisect_left(ids, i)
        if j < len(ids) and ids[j] == i and vals[j] is not None:
            return vals[j], mf
        return None

    def first_entry(self):
        r = self.range(MIN_ID, MAX_ID, 1)
        return r[0] if r else None

    def last_entry(self):
        r = self.range(MIN_ID, MAX_ID, 1, rev=True)
        return r[0] if r else None

    def entries(self):
        """Every live entry in order, node by node (for RDB): yields (k, mf, ids, vals)."""
        for k in range(len(self._nodes)):
            yield (k, *self.node(k))

    # -- deletion -----------------------------------------------------------------
    def delete(self, i) -> bool:
        """XDEL of one ID: True when it was there."""
        k = bisect_right(self._firsts, i) - 1
        if k < 0 or self._lasts[k] < i:
            return False
        mf, ids, vals = self.node(k)
        j = bisect_left(ids, i)
        if j >= len(ids) or ids[j] != i or vals[j] is None:
            return False
        if type(self._nodes[k]) is not list:
            vals = list(vals)
        vals[j] = None
        self._mark_deleted(k, mf, ids, vals, 1)
        if i > self.max_deleted:
            self.max_deleted = i
        if i == self.first_id:
            self._refresh_first()
        return True

    def _mark_deleted(self, k, mf, ids, vals, n: int) -> None:
        self._live[k] -= n
        self._dead[k] += n
        self.length -= n
        if not self._live[k]:
            self._drop_node(k)
        else:
            self._rewrite(k, mf, ids, vals)

    def trim(self, maxlen=None, minid=None, approx: bool = False, limit: int = 0) -> int:
        """XTRIM/XADD trimming by MAXLEN or MINID: how many entries went."""
        deleted = 0
        while self._nodes:
            if maxlen is not None and self.length <= maxlen:
                break
            live = self._live[0]
            if limit and deleted + live > limit:
                break
            if maxlen is not None:
                whole = self.length - live >= maxlen
            else:
                whole = self._lasts[0] < minid
            if whole:
                self.length -= live
                deleted += live
                self._drop_node(0)
                continue
            if approx:
                break
            mf, ids, vals = self.node(0)
            if type(self._nodes[0]) is not list:
                vals = list(vals)
            n = 0
            for j, v in enumerate(vals):
                if v is None:
                    continue
                if maxlen is not None:
                    if self.length - n <= maxlen:
                        break
                elif ids[j] >= minid:
                    break
                vals[j] = None
                n += 1
            if n:
                self._mark_deleted(0, mf, ids, vals, n)
                deleted += n
            break
        if deleted:
            self._refresh_first()
        return deleted

    # -- groups -------------------------------------------------------------------
    def group(self, name: bytes):
        g = self.groups
        return None if g is None else g.get(name)

    def copy(self) -> "Stream":
        s = Stream()
        self._close_tail_copy(s)
        return s

    def _close_tail_copy(self, s: "Stream") -> None:
        s._firsts = list(self._firsts)
        s._lasts = list(self._lasts)
        s._nodes = [[n[0], list(n[1]), list(n[2])] if type(n) is list else n for n in self._nodes]
        s._live = list(self._live)
        s._dead = list(self._dead)
        s._tail_lp = self._tail_lp
        s.length, s.last_id, s.first_id = self.length, self.last_id, self.first_id
        s.max_deleted, s.entries_added = self.max_deleted, self.entries_added
        if self.groups is not None:
            s.groups = {}
            for name, g in self.groups.items():
                ng = Group(g.last_id, g.entries_read)
                for cname, cons in g.consumers.items():
                    nc = Consumer(cname, cons.seen)
                    nc.active = cons.active
                    for i in cons.pel:
                        nc.pel.add(i)
                    ng.consumers[cname] = nc
                for i, p in g.pel.items():
                    ng.pel[i] = Pending(ng.consumers[p.consumer.name], p.time, p.count)
                s.groups[name] = ng

    # -- building from RDB ------------------------------------------------------------
    def add_node(self, first, mf, ids, vals, dead: int, last) -> None:
        """Append a whole node as loaded: master ID ``first``, ``vals`` None for deleted entries."""
        self._close_tail()
        live = sum(1 for v in vals if v is not None)
        if not live:
            return
        self._firsts.append(first)
        self._lasts.append(last)
        self._live.append(live)
        self._dead.append(dead)
        self._nodes.append([mf, list(ids), list(vals)])
        self.length += live

    def set_tail_size(self, lp_bytes: int) -> None:
        """The open node's listpack size as loaded (its count fields excluded)."""
        if self._nodes and type(self._nodes[-1]) is list:
            self._tail_lp = lp_bytes - int_size(self._live[-1]) - int_size(self._dead[-1])


register(Stream, "stream", lambda s: "stream", Stream.copy)
