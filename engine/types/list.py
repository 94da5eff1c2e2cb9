"""The list type: a packed ``listpack`` while small, a ``quicklist`` beyond.

``List`` holds its elements (``bytes``) in one of two encodings, behind one
interface; handlers (``engine.commands.list``) never look at which:

* **listpack** -- ``_v`` is one ``bytes`` object, ``marshal.dumps`` of the
  Python list of elements: about 5 bytes of overhead per element, decoded and
  re-encoded at C speed by each command, O(n) for the few KB a listpack may
  hold, as Redis's listpack costs a memmove. ``_sz`` is the size in bytes the
  same elements take in Redis's listpack format (``entry_size``), so that the
  conversion happens exactly where Redis 7.2's does.
* **quicklist** -- ``_v`` is a ``Quicklist``: a deque of ``Node``s whose
  boundaries follow Redis's rules for pushes and pops at the ends (a node
  takes an element while its listpack size + the element + 8 stays within
  ``list-max-listpack-size``; an element larger than a whole node gets a
  "plain" node of its own), so a node count and the conversion back agree
  with Redis. The first and last nodes are *open* once used (a Python list
  of the elements; the head of a list of several nodes held last first, so
  that a push or a pop at either end is an append or a pop at the end of a
  Python list); every other node is *packed* (``marshal`` bytes) and
  unpacked only while a command works inside it. A push or a pop touches one end node:
  O(1), plus an O(node) pack or unpack once per node's worth of elements.
  ``push_one``/``pop_one`` are the one-element push and pop written out.
  LINDEX/LSET walk the node counts from the nearer end, O(nodes), then one
  node; LRANGE costs its start's walk plus the elements it returns.

Conversions (Redis 7.2's): before elements are added (a push, LINSERT,
LSET), a listpack whose ``_sz`` plus the new elements' lengths exceeds the
limit (``-1..-5``: 4/8/16/32/64 KB; a positive ``n``: more than n entries or
over 8 KB) becomes a quicklist of that one node. After elements are removed
(pops, LREM, LTRIM, LSET, LMOVE's source), a quicklist down to one packed
node of at most half the limit becomes a listpack again.

The caller passes the current ``list-max-listpack-size`` (``fill``) to every
method that may convert; a quicklist keeps the fill it was created with for
its node boundaries, as Redis's does. Callers keep the keyspace invariants:
``touched`` after a change, delete a list that became empty (a ``List`` is
never stored empty).
"""

from __future__ import annotations

from engine import listpack, rdb, ziplist
from engine.memory import BYTES_HEADER, object_cost, slack
from engine.types import register
from engine.types.list_quicklist import (
    LP_EMPTY, Node, Quicklist, Rev, pack, unpack, entry_size, exceeds, is_large, node_limits,
)

_NUMERIC_START = b"-0123456789"  # what may begin an element packed as an integer

# --- the list value ---------------------------------------------------------

_OBJECT = object_cost(6)
_LP_COST = _OBJECT + slack(BYTES_HEADER + 8)  # a listpack beyond its length (8: the average block rounding)

class List:
    """A Redis list. ``_v``: marshal bytes (listpack) or a ``Quicklist``."""

    # _held: the charge Keyspace.mem_used counts this list with; _per, _at:
    # a quicklist's sampled element length and the count that resamples it.
    __slots__ = ("_v", "_sz", "_n", "_held", "_per", "_at")

    def mem_size(self, samples: int | None = None) -> int:
        """Approximate bytes (engine.memory), O(1) amortised: the packed
        bytes, or elements x a cost per element sampled (``Quicklist.element_cost``) when
        the count crosses a power of two."""
        v = self._v
        if type(v) is bytes:
            n = len(v)
            return n + (n >> 3) + _LP_COST  # engine.memory.slack
        n = v.count
        if samples is not None:  # MEMORY USAGE SAMPLES: that many nodes now (0: all)
            return _OBJECT + n * v.element_cost(samples or len(v.nodes))
        if n >= self._at or n < self._at >> 2:
            self._per = v.element_cost(8)
            self._at = 2 * n or 1
        return _OBJECT + n * self._per

    def __init__(self, items=(), fill: int = -2):
        self._at = 0
        items = list(items)
        sz = LP_EMPTY + sum(map(entry_size, items))
        self._store(items)
        self._sz = sz
        if items and exceeds(fill, sz, len(items)):
            self._grow_into(items, fill)

    @classmethod
    def from_nodes(cls, nodes: list, fill: int) -> "List":
        """A list loaded with given node boundaries (``nodes``: lists of elements)."""
        nodes = [n for n in nodes if n]
        if len(nodes) == 1:
            lst = cls(nodes[0], fill)
            return lst
        lst = cls.__new__(cls)
        lst._at = 0
        q = Quicklist(fill)
        for items in nodes:
            big = len(items) == 1 and is_large(len(items[0]), q.fill)
            node = Node(items, len(items[0]) if big else LP_EMPTY + sum(map(entry_size, items)), big)
            q.nodes.append(node)
            q.count += len(items)
        for i in range(1, len(q.nodes) - 1):
            q.nodes[i].pack()
        lst._v = q
        lst._sz = lst._n = 0
        return lst

    def _store(self, items: list) -> None:
        """Hold ``items`` as a listpack (``_sz`` is the caller's to keep)."""
        self._v = pack(items)
        self._n = len(items)

    def _grow_into(self, items: list, fill: int) -> None:
        q = Quicklist(fill)
        if items:
            q.nodes.append(Node(items, self._sz))
            q.count = len(items)
        self._v = q
        self._sz = self._n = 0

    # -- encoding ----------------------------------------------------------
    @property
    def encoding(self) -> str:
        return "listpack" if type(self._v) is bytes else "quicklist"

    def nodes(self) -> list[tuple[bool, list]]:
        """(plain, elements) per node, the order RDB writes them."""
        v = self._v
        if type(v) is bytes:
            return [(False, unpack(v))]
        return [(n.plain, n.peek()) for n in v.nodes]

    def grow_check(self, values, fill: int, items: list | None = None) -> list | None:
        """Convert to a quicklist if adding ``values`` would outgrow one node.

        Returns the elements (``items``, decoded here if not given) while the
        list stays a listpack, None once it is a quicklist.
        """
        v = self._v
        if type(v) is not bytes:
            return None
        add = 0
        for x in values:
            add += len(x)
        if items is None:
            items = unpack(v)
        if exceeds(fill, self._sz + add, len(items) + len(values)):
            self._grow_into(items, fill)
            return None
        return items

    def shrink_check(self, fill: int) -> None:
        """Convert back to a listpack if one small packed node is left."""
        q = self._v
        if type(q) is bytes or len(q.nodes) != 1:
            return
        node = q.nodes[0]
        if node.plain:
            return
        size, count = node_limits(fill)
        if node.sz > size // 2 or node.count > count // 2:
            return
        self._store(node.peek())
        self._sz = node.sz

    # -- reads ---------------------------------------------------------------
    def empty(self) -> bool:
        v = self._v
        return not self._n if type(v) is bytes else not v.count

    def __len__(self) -> int:
        v = self._v
        return self._n if type(v) is bytes else v.count

    def elements(self) -> list:
        v = self._v
        return unpack(v) if type(v) is bytes else v.elements()

    def index(self, i: int):
        """Element ``i`` (negative from the tail) or None."""
        v = self._v
        if type(v) is bytes:
            items = unpack(v)
            return items[i] if -len(items) <= i < len(items) else None
        n = v.count
        if i < 0:
            i += n
        if not 0 <= i < n:
            return None
        return v.at(*v.locate(i))

    def range(self, start: int, stop: int) -> list:
        """Elements ``start..stop`` inclusive, already clamped (0 <= start <= stop < len)."""
        v = self._v
        if type(v) is bytes:
            return unpack(v)[start:stop + 1]
        return v.range(start, stop - start + 1)

    def window(self, start: int, stop: int) -> list:
        """LRANGE's elements: ``start..stop`` inclusive, negative from the
        tail, clamped to the list (empty when nothing is left)."""
        v = self._v
        n = self._n if type(v) is bytes else v.count
        if start < 0:
            start += n
            if start < 0:
                start = 0
        if stop < 0:
            stop += n
        elif stop >= n:
            stop = n - 1
        if start > stop:
            return []
        if type(v) is bytes:
            return unpack(v)[start:stop + 1]
        return v.range(start, stop - start + 1)

    def _runs(self, forward: bool):
        """(index of the run's first element, run) for each run of elements:
        the one list of a listpack, or each node, head to tail or back."""
        v = self._v
        if type(v) is bytes:
            yield 0, unpack(v)
            return
        nodes = v.nodes
        if forward:
            base = 0
            for j, node in enumerate(nodes):
                yield base, v.run(j)
                base += node.count
        else:
            base = v.count
            for j in range(len(nodes) - 1, -1, -1):
                node = nodes[j]
                base -= node.count
                yield base, v.run(j)

    def positions(self, value: bytes, rank: int, want: int, maxlen: int) -> list:
        """LPOS: indexes of matches of ``value``, skipping the first ``|rank| - 1``
        (from the tail when ``rank`` < 0), at most ``want``, among the first
        ``maxlen`` elements compared (0: all). Each run is searched by
        ``list.index`` (C speed)."""
        found = []
        skip = abs(rank) - 1
        forward = rank > 0
        n = len(self)
        lo, hi = (0, min(n, maxlen) if maxlen else n) if forward else (max(0, n - maxlen) if maxlen else 0, n)
        for base, items in self._runs(forward):
            end = base + len(items)
            if end <= lo or base >= hi:
                if (forward and base >= hi) or (not forward and end <= lo):
                    break
                continue
            if value not in items:
                continue
            a, b = max(lo, base) - base, min(hi, end) - base
            if forward:
                i = a
                while True:
                    try:
                        i = items.index(value, i, b)
                    except ValueError:
                        break
                    if skip:
                        skip -= 1
                    else:
                        found.append(base + i)
                        if len(found) >= want:
                            return found
                    i += 1
            else:
                back = items[a:b][::-1]
                top = base + b - 1
                i = 0
                while True:
                    try:
                        i = back.index(value, i)
                    except ValueError:
                        break
                    if skip:
                        skip -= 1
                    else:
                        found.append(top - i)
                        if len(found) >= want:
                            return found
                    i += 1
        return found

    # -- writes (the caller has run ``grow_check`` for what they add) ----------
    def push(self, values, head: bool, fill: int) -> int:
        """LPUSH (``head``) / RPUSH of ``values``, in argument order: the new length."""
        items = self.grow_check(values, fill)
        if items is not None:
            if head:
                items[:0] = values[::-1]
            else:
                items.extend(values)
            self._store(items)
            for x in values:
                self._sz += entry_size(x)
            return len(items)
        q = self._v
        push = q.push
        for x in values:
            push(x, head)
        return q.count

    def push_one(self, x: bytes, head: bool, fill: int) -> int:
        """``push((x,), head, fill)``: the new length. The common case -- an
        element joining an open end node with room (a reversed head, an
        in-order tail) -- written out."""
        q = self._v
        if type(q) is not bytes:
            node = q.nodes[0] if head else q.nodes[-1]
            d = node.data
            n = len(x)
            if type(d) is (Rev if head else list) and node.sz + n <= q.room and node.count < q.cap:
                d.append(x)
                node.count += 1
                node.sz += n + 2 if n < 64 and x > b":" else entry_size(x)  # (*)
                q.count += 1
                return q.count
        elif not exceeds(fill, self._sz + len(x), self._n + 1):
            items = unpack(q)
            if head:
                items.insert(0, x)
            else:
                items.append(x)
            self._v = pack(items)
            self._n += 1
            self._sz += entry_size(x)
            return self._n
        return self.push((x,), head, fill)

    # (*) ``entry_size`` written out for an element under 64 bytes that
    # starts with a byte above "9" (``x > b":"``), so is no integer: its
    # length, a 1-byte header and a 1-byte back-length.

    def pop_one(self, head: bool, fill: int):
        """``pop(head, 1, fill)[0]`` for a list of two elements or more; None
        (nothing changed) for a list of one, which the caller pops and deletes
        on the general path. The common case written out, as ``push_one``."""
        q = self._v
        if type(q) is not bytes:
            nodes = q.nodes
            node = nodes[0] if head else nodes[-1]
            d = node.data
            if type(d) is (Rev if head else list) and node.count > 1:
                x = d.pop()
                node.count -= 1
                n = len(x)
                node.sz -= n + 2 if n < 64 and x > b":" else entry_size(x)  # (*)
                q.count -= 1
            elif q.count > 1:
                x = q.pop(head)
            else:
                return None
            if len(nodes) == 1:
                self.shrink_check(fill)
            return x
        if self._n < 2:
            return None
        items = unpack(q)
        x = items.pop(0) if head else items.pop()
        self._v = pack(items)
        self._n -= 1
        self._sz -= entry_size(x)
        return x

    def pop(self, head: bool, count: int, fill: int) -> list:
        """Up to ``count`` elements from one end, in pop order."""
        v = self._v
        if type(v) is bytes:
            items = unpack(v)
            if head:
                out = items[:count]
                del items[:count]
            else:
                out = items[len(items) - count:][::-1] if count < len(items) else items[::-1]
                del items[max(0, len(items) - count):]
            self._store(items)
            for x in out:
                self._sz -= entry_size(x)
            return out
        n = min(count, v.count)
        pop = v.pop
        out = [pop(head) for _ in range(n)]
        if v.count:
            self.shrink_check(fill)
        return out

    def set(self, i: int, value: bytes, fill: int) -> bool:
        """LSET: False when ``i`` is out of range (after the growing check, as Redis)."""
        items = self.grow_check((value,), fill)
        v = self._v
        if items is not None:
            if not -len(items) <= i < len(items):
                return False
            old = items[i]
            items[i] = value
            self._store(items)
            self._sz += entry_size(value) - entry_size(old)
            return True
        n = v.count
        if i < 0:
            i += n
        if not 0 <= i < n:
            return False
        v.set(i, value)
        self.shrink_check(fill)
        return True

    def insert(self, pivot: bytes, value: bytes, after: bool, fill: int) -> bool:
        """LINSERT: False when ``pivot`` is not in the list."""
        items = self.grow_check((value,), fill)
        v = self._v
        if items is not None:
            try:
                i = items.index(pivot)
            except ValueError:
                return False
            items.insert(i + 1 if after else i, value)
            self._store(items)
            self._sz += entry_size(value)
            return True
        for base, run in self._runs(True):
            if pivot in run:
                v.insert(base + run.index(pivot), value, after)
                return True
        return False

    def remove(self, value: bytes, count: int, fill: int) -> int:
        """LREM: how many were removed."""
        v = self._v
        if type(v) is bytes:
            items = unpack(v)
            if value not in items:
                return 0
            if count == 0:
                keep = [x for x in items if x != value]
            else:
                keep = []
                left = abs(count)
                src = items if count > 0 else reversed(items)
                for x in src:
                    if left and x == value:
                        left -= 1
                    else:
                        keep.append(x)
                if count < 0:
                    keep.reverse()
            n = len(items) - len(keep)
            self._store(keep)
            self._sz -= n * entry_size(value)
            return n
        n = v.remove(value, count)
        if n and v.count:
            self.shrink_check(fill)
        return n

    def trim(self, left: int, right: int, fill: int) -> None:
        """Drop ``left`` elements from the head and ``right`` from the tail."""
        v = self._v
        if type(v) is bytes:
            items = unpack(v)
            gone = items[:left] + (items[len(items) - right:] if right else [])
            keep = items[left:len(items) - right]
            self._store(keep)
            self._sz -= sum(map(entry_size, gone))
            return
        v.trim(left, right)
        if v.count:
            self.shrink_check(fill)

    def copy(self) -> "List":
        new = List.__new__(List)
        new._at = 0
        v = self._v
        new._v = v if type(v) is bytes else v.copy()
        new._sz = self._sz
        new._n = self._n
        return new


register(List, "list", encoding=lambda v: v.encoding, copy=List.copy)


# --- RDB ---------------------------------------------------------------------
# Keel writes what Redis 7.0 and 7.2 write: quicklist 2 (type 18), one
# ``container`` (1 plain, 2 packed) and one string per node -- a listpack, or
# a plain node's one element; a listpack-encoded list is one packed node. It
# reads that, the 3.2-6.2 quicklist of ziplists (14), the older single
# ziplist (10) and the plain list of strings (1). A loaded list keeps the
# payload's node boundaries and takes the encoding Redis gives it on load
# (one packed node within the limit: a listpack), under the default
# ``list-max-listpack-size`` (a decoder does not see the keyspace's limits).
# Empty nodes are skipped, as Redis skips them; a list with no element, an
# unknown container or a damaged listpack/ziplist is ``rdb.PayloadError``
# (RESTORE: "Bad data format").

RDB_TYPE_LIST = 1
RDB_TYPE_LIST_ZIPLIST = 10
RDB_TYPE_LIST_QUICKLIST = 14
RDB_TYPE_LIST_QUICKLIST_2 = 18
_PLAIN, _PACKED = 1, 2
_LOAD_FILL = -2


def _encode(lst: List) -> bytes:
    nodes = lst.nodes()
    parts = [bytes((RDB_TYPE_LIST_QUICKLIST_2,)), rdb.encode_length(len(nodes))]
    enc = rdb.encode_string
    for plain, items in nodes:
        if plain:
            parts.append(rdb.encode_length(_PLAIN))
            parts.append(enc(items[0]))
        else:
            parts.append(rdb.encode_length(_PACKED))
            parts.append(enc(listpack.encode(items)))
    return b"".join(parts)


def _decoded(codec, blob) -> list:
    try:
        return codec.decode(bytes(blob))
    except codec.FormatError as e:
        raise rdb.PayloadError(f"damaged {codec.__name__}: {e}") from None


def _length(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    n, pos, special = rdb.read_length(buf, pos)
    if special:
        raise rdb.PayloadError(f"{what} is not a length")
    return n, pos


def _loaded(nodes: list) -> List:
    nodes = [n for n in nodes if n]
    if not nodes:
        raise rdb.PayloadError("an empty list")
    return List.from_nodes(nodes, _LOAD_FILL)


def _decode_quicklist_2(buf: bytes, pos: int):
    n, pos = _length(buf, pos, "node count")
    nodes = []
    for _ in range(n):
        container, pos = _length(buf, pos, "node container")
        blob, pos = rdb.read_string(buf, pos)
        if container == _PLAIN:
            nodes.append([bytes(blob)])
        elif container == _PACKED:
            nodes.append(_decoded(listpack, blob))
        else:
            raise rdb.PayloadError(f"unknown quicklist container {container}")
    return _loaded(nodes), pos


def _decode_quicklist(buf: bytes, pos: int):
    n, pos = _length(buf, pos, "node count")
    nodes = []
    for _ in range(n):
        blob, pos = rdb.read_string(buf, pos)
        nodes.append(_decoded(ziplist, blob))
    return _loaded(nodes), pos


def _decode_ziplist(buf: bytes, pos: int):
    blob, pos = rdb.read_string(buf, pos)
    items = _decoded(ziplist, blob)
    if not items:
        raise rdb.PayloadError("an empty list")
    return List(items, _LOAD_FILL), pos


def _decode_plain(buf: bytes, pos: int):
    n, pos = _length(buf, pos, "list length")
    if not n:
        raise rdb.PayloadError("an empty list")
    items = []
    read = rdb.read_string
    for _ in range(n):
        s, pos = read(buf, pos)
        items.append(bytes(s))
    return List(items, _LOAD_FILL), pos


rdb.register_encoder(List, _encode)
rdb.register_decoder(RDB_TYPE_LIST, _decode_plain)
rdb.register_decoder(RDB_TYPE_LIST_ZIPLIST, _decode_ziplist)
rdb.register_decoder(RDB_TYPE_LIST_QUICKLIST, _decode_quicklist)
rdb.register_decoder(RDB_TYPE_LIST_QUICKLIST_2, _decode_quicklist_2)
