"""The quicklist: the large encoding of a list, a deque of element runs.

Nodes follow Redis 7.2's quicklist rules for where one ends and the next
begins when elements are pushed and popped at the ends (see
``engine.types.list``), so node counts -- which decide when a list becomes a
listpack again -- agree with Redis's for queue and stack use. Edits inside
the list (LSET, LINSERT) keep a node within its limit by splitting it, close
to, though not always exactly where, Redis would.

Also here: ``entry_size`` (an element's size in Redis's listpack format,
which the conversion rules are written in) and the node limits of a
``list-max-listpack-size`` value.

Invariants: ``count`` is the sum of the nodes' counts; no node is empty; a
node's ``sz`` is its listpack size (a plain node's: its element's length);
every node but the first and the last is packed (``marshal`` bytes) between
commands; the end nodes are opened (Python lists) by the first command that
works on them and stay open.

The first node of a quicklist of several nodes holds its elements in reverse
(a ``Rev``) once something was pushed or popped at the head, so that LPUSH and
LPOP are an append and a pop at the end of a Python list, as RPUSH and RPOP
are, instead of a memmove of the whole node. Only ``nodes[0]`` is ever a
``Rev`` (a head node that stops being the head is packed, or turned round when
it becomes the tail). Readers see elements in list order: ``Node.items``
turns a ``Rev`` round (for edits inside the node), ``Node.peek`` and ``run``
give a forward copy, and LRANGE, LINDEX, LSET and LTRIM read or write a
``Rev`` where it is, by reversed index.
"""

from __future__ import annotations

import marshal
from collections import deque

from engine.memory import LIST_SLOT, bytes_cost


LP_EMPTY = 7  # listpack header (6) + end byte
_SIZE_SAFETY = 8192  # a node limit by count still stays under 8 KB
_INSERT_ESTIMATE = 8  # Redis's overestimate of an entry's overhead
_UINT_MAX = 2**32 - 1
_SIZE_MAX = 2**64 - 1
_LEVELS = (4096, 8192, 16384, 32768, 65536)
_NODE_COST = 160  # memory of a node: its object, its packed bytes' header, its deque slot
_MAX_FILL = 32767


def _backlen(n: int) -> int:
    if n <= 127:
        return 1
    if n < 16383:
        return 2
    if n < 2097151:
        return 3
    if n < 268435455:
        return 4
    return 5


def entry_size(v: bytes) -> int:
    """Bytes ``v`` takes as one listpack entry (integers packed as Redis packs them)."""
    n = len(v)
    if n <= 20 and n and (v[0] in b"-0123456789"):
        try:
            i = int(v)
        except ValueError:
            i = None
        if i is not None and b"%d" % i == v and -(2**63) <= i < 2**63:
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
    head = n + (1 if n <= 63 else 2 if n <= 4095 else 5)
    return head + _backlen(head)


def node_limits(fill: int) -> tuple[int, int]:
    """(size limit, count limit) of one node under ``fill``."""
    if fill >= 0:
        return _SIZE_MAX, fill or 1
    return _LEVELS[min(-fill - 1, len(_LEVELS) - 1)], _UINT_MAX


def exceeds(fill: int, size: int, count: int) -> bool:
    """Whether a listpack of ``size`` bytes and ``count`` entries outgrows a node."""
    if fill < 0:
        return size > _LEVELS[min(-fill - 1, len(_LEVELS) - 1)]
    return size > _SIZE_SAFETY or count > (fill or 1)


DEFAULT_PACKED_THRESHOLD = 1 << 30
_packed_threshold = DEFAULT_PACKED_THRESHOLD  # DEBUG QUICKLIST-PACKED-THRESHOLD


def set_packed_threshold(n: int) -> None:
    """From DEBUG QUICKLIST-PACKED-THRESHOLD: elements of ``n`` bytes or more get
    a plain node (the default, 1 GB, leaves the decision to the fill level).

    ``List.push_one``'s fast path (one element into an open end node) does
    not look at the threshold, so that the common push pays nothing for a
    test hook: while a threshold is set, one-element pushes take the general
    path (``Quicklist.push``, whose ``_allows`` tests it)."""
    global _packed_threshold
    from engine.types.list import List

    _packed_threshold = n
    if n == DEFAULT_PACKED_THRESHOLD:
        fast = List.__dict__.get("_fast_push_one")
        if fast is not None:
            List.push_one = fast
    else:
        if "_fast_push_one" not in List.__dict__:
            List._fast_push_one = List.push_one
        List.push_one = lambda self, x, head, fill: self.push((x,), head, fill)


def is_large(n: int, fill: int) -> bool:
    """Whether an element of ``n`` bytes gets a plain node of its own."""
    if _packed_threshold != DEFAULT_PACKED_THRESHOLD:
        return n >= _packed_threshold
    if fill >= 0:
        return n > _SIZE_SAFETY
    return n > _LEVELS[min(-fill - 1, len(_LEVELS) - 1)]


def pack(items: list) -> bytes:
    return marshal.dumps(items)


def unpack(blob: bytes) -> list:
    return marshal.loads(blob)


class Rev(list):
    """A head node's elements, last first (see the module docstring)."""

    __slots__ = ()


# --- quicklist --------------------------------------------------------------

class Node:
    """A run of elements: ``data`` is a list (open) or marshal bytes (packed)."""

    __slots__ = ("data", "count", "sz", "plain")

    def __init__(self, items: list, sz: int, plain: bool = False):
        self.data = items
        self.count = len(items)
        self.sz = sz
        self.plain = plain

    def items(self) -> list:
        """The elements in order, opened for an edit (a ``Rev`` is turned round)."""
        d = self.data
        t = type(d)
        if t is not list:
            d = self.data = unpack(d) if t is bytes else d[::-1]
        return d

    def open(self) -> list:
        """The elements as they are held, opened: a list, or a head's ``Rev``."""
        d = self.data
        if type(d) is bytes:
            d = self.data = unpack(d)
        return d

    def head_run(self) -> Rev:
        """The elements reversed, for pushes and pops at the head."""
        d = self.data
        if type(d) is not Rev:
            d = Rev(unpack(d) if type(d) is bytes else d)
            d.reverse()
            self.data = d
        return d

    def peek(self) -> list:
        """The elements in order without opening the node (a copy when packed
        or reversed)."""
        d = self.data
        t = type(d)
        if t is list:
            return d
        return unpack(d) if t is bytes else d[::-1]

    def pack(self) -> None:
        d = self.data
        t = type(d)
        if t is not bytes:
            self.data = pack(d if t is list else d[::-1])


class Quicklist:
    __slots__ = ("nodes", "count", "fill", "room", "cap")

    def __init__(self, fill: int):
        self.nodes: deque[Node] = deque()
        self.count = 0
        self.fill = fill = max(-5, min(fill, _MAX_FILL))
        # An element of n bytes may join a node while node.sz + n <= room
        # and node.count < cap (``_allows``). A plain node's sz is more than
        # room, so the size test alone keeps elements out of plain nodes.
        if fill < 0:
            self.room, self.cap = _LEVELS[-fill - 1] - _INSERT_ESTIMATE, _UINT_MAX
        else:
            self.room, self.cap = _SIZE_SAFETY - _INSERT_ESTIMATE, fill or 1

    # -- node housekeeping ---------------------------------------------------
    def run(self, i: int) -> list:
        """The elements of node ``i`` in order, to read: an end node is opened
        (it stays open, as end nodes do; a reversed head is read as a copy),
        an inner one decoded without opening it."""
        nodes = self.nodes
        if i == 0 or i == len(nodes) - 1:
            d = nodes[i].open()
            return d if type(d) is list else d[::-1]
        return nodes[i].peek()

    def at(self, i: int, off: int) -> bytes:
        """Element ``off`` of node ``i``."""
        node = self.nodes[i]
        d = node.data
        t = type(d)
        if t is Rev:
            return d[node.count - 1 - off]
        if t is list:
            return d[off]
        return self.run(i)[off]

    def _chunk(self, i: int, off: int, n: int) -> list:
        """Up to ``n`` elements of node ``i`` from ``off`` on (a new list)."""
        node = self.nodes[i]
        d = node.data
        if type(d) is Rev:
            hi = node.count - 1 - off
            lo = hi - n
            return d[hi:lo if lo >= 0 else None:-1]
        return self.run(i)[off:off + n]

    def range(self, start: int, n: int) -> list:
        """``n`` elements from ``start`` on (``start + n <= count``)."""
        node = self.nodes[0]
        if start + n <= node.count:  # within the open head node: sliced where it is
            d = node.data
            t = type(d)
            if t is Rev:
                hi = node.count - 1 - start
                lo = hi - n
                return d[hi:lo if lo >= 0 else None:-1]
            if t is list:
                return d[start:start + n]
            i, off = 0, start
        else:
            i, off = self.locate(start)
        out = self._chunk(i, off, n)
        n -= len(out)
        while n:
            i += 1
            chunk = self._chunk(i, 0, n)
            out += chunk
            n -= len(chunk)
        return out

    def _settle(self, i: int) -> None:
        """Pack node ``i`` unless it is an end node."""
        if 0 < i < len(self.nodes) - 1:
            self.nodes[i].pack()

    def _allows(self, node: Node | None, n: int) -> bool:
        """Whether an element of ``n`` bytes may join ``node`` (Redis's
        ``_quicklistNodeAllowInsert``: not a plain node, not a large element,
        within the node's size and count once added)."""
        return (node is not None and node.sz + n <= self.room and node.count < self.cap
                and n < _packed_threshold)

    def _new_end(self, v: bytes, head: bool) -> None:
        nodes = self.nodes
        node = self._node_of([v])
        if head:
            nodes.appendleft(node)
            if len(nodes) > 1:
                if len(nodes) > 2:
                    nodes[1].pack()
                else:
                    nodes[1].items()  # the old head is now the tail: in order
                if not node.plain:
                    node.data = Rev(node.data)
        else:
            nodes.append(node)
            if len(nodes) > 2:
                nodes[-2].pack()

    def push(self, v: bytes, head: bool) -> None:
        nodes = self.nodes
        end = (nodes[0] if head else nodes[-1]) if nodes else None
        if self._allows(end, len(v)):
            d = end.data
            if head:
                if len(nodes) == 1 and type(d) is not Rev:
                    end.items().insert(0, v)  # one node in order: kept so for the tail's sake
                else:
                    end.head_run().append(v)
            elif type(d) is Rev:  # the one node, reversed
                d.insert(0, v)
            else:
                end.items().append(v)
            end.count += 1
            end.sz += entry_size(v)
        else:
            self._new_end(v, head)
        self.count += 1

    def pop(self, head: bool) -> bytes:
        nodes = self.nodes
        if head:
            node = nodes[0]
            if len(nodes) == 1 and type(node.data) is not Rev:
                v = node.items().pop(0)
            else:
                v = node.head_run().pop()
        else:
            node = nodes[-1]
            d = node.open()
            v = d.pop(0) if type(d) is Rev else d.pop()
        node.count -= 1
        self.count -= 1
        if node.count == 0:
            if head:
                nodes.popleft()
            else:
                nodes.pop()
        elif not node.plain:
            node.sz -= entry_size(v)
        return v

    def _drop(self, i: int, items: list, removed: list) -> None:
        """Node ``i`` now holds the non-empty ``items`` (``removed`` were taken out)."""
        node = self.nodes[i]
        self.count -= len(removed)
        node.data = items
        node.count = len(items)
        if not node.plain:
            node.sz -= sum(map(entry_size, removed))
        self._settle(i)

    def locate(self, index: int) -> tuple[int, int]:
        """(node position, offset in it) of element ``index`` (0 <= index < count)."""
        nodes = self.nodes
        if index < self.count // 2:
            for i, node in enumerate(nodes):
                if index < node.count:
                    return i, index
                index -= node.count
        else:
            back = self.count - 1 - index
            for j in range(len(nodes) - 1, -1, -1):
                node = nodes[j]
                if back < node.count:
                    return j, node.count - 1 - back
                back -= node.count
        raise IndexError(index)

    def set(self, index: int, v: bytes) -> None:
        i, off = self.locate(index)
        node = self.nodes[i]
        if node.plain or is_large(len(v), self.fill):
            # A plain node (or a new element too large to share one) is
            # rebuilt around it: split the node there, the element alone.
            node.items()[off] = v
            self._isolate(i, off)
        else:
            d = node.open()
            j = off if type(d) is list else node.count - 1 - off
            old = d[j]
            d[j] = v
            node.sz += entry_size(v) - entry_size(old)
            if exceeds(self.fill, node.sz, node.count):
                self._split(i)
        self._settle_all_near(i)

    def _node_of(self, items: list) -> Node:
        """A node holding ``items``: plain when it is one element too large to share."""
        if len(items) == 1 and is_large(len(items[0]), self.fill):
            return Node(items, len(items[0]), plain=True)
        return Node(items, LP_EMPTY + sum(map(entry_size, items)))

    def _isolate(self, i: int, off: int) -> None:
        """Split node ``i`` so that its element ``off`` is a node of its own."""
        nodes = self.nodes
        items = nodes[i].items()
        parts = [p for p in (items[:off], items[off:off + 1], items[off + 1:]) if p]
        del nodes[i]
        for k, part in enumerate(parts):
            nodes.insert(i + k, self._node_of(part))

    def _split(self, i: int) -> None:
        node = self.nodes[i]
        items = node.items()
        half = len(items) // 2
        left, right = items[:half], items[half:]
        node.data, node.count, node.sz = left, len(left), LP_EMPTY + sum(map(entry_size, left))
        self.nodes.insert(i + 1, Node(right, LP_EMPTY + sum(map(entry_size, right))))

    def _settle_all_near(self, i: int) -> None:
        """Pack the inner nodes an edit at node ``i`` may have opened or made."""
        for j in (i - 1, i, i + 1, i + 2):
            if 0 <= j < len(self.nodes):
                self._settle(j)

    def insert(self, index: int, v: bytes, after: bool) -> None:
        """Insert ``v`` next to element ``index``."""
        i, off = self.locate(index)
        nodes = self.nodes
        node = nodes[i]
        if i == 0:
            node.items()  # a reversed head turns round: a node may go before it
        n = len(v)
        if is_large(n, self.fill) or node.plain:
            items = node.items()
            pos = off + 1 if after else off
            items.insert(pos, v)
            node.count += 1
            self.count += 1
            if node.plain:
                node.plain = False
                node.sz = LP_EMPTY + sum(map(entry_size, items))
            else:
                node.sz += entry_size(v)
            self._isolate(i, pos)
            self._settle_all_near(i)
            return
        if self._allows(node, n):
            node.items().insert(off + 1 if after else off, v)
            node.count += 1
            node.sz += entry_size(v)
        elif after and off == node.count - 1 and self._allows(nodes[i + 1] if i + 1 < len(nodes) else None, n):
            nxt = nodes[i + 1]
            nxt.items().insert(0, v)
            nxt.count += 1
            nxt.sz += entry_size(v)
        elif not after and off == 0 and i > 0 and self._allows(nodes[i - 1], n):
            prv = nodes[i - 1]
            prv.items().append(v)
            prv.count += 1
            prv.sz += entry_size(v)
        elif (after and off == node.count - 1) or (not after and off == 0):
            nodes.insert(i + 1 if after else i, self._node_of([v]))
        else:
            items = node.items()
            items.insert(off + 1 if after else off, v)
            node.count += 1
            node.sz += entry_size(v)
            self._split(i)
        self.count += 1
        self._settle_all_near(i)

    def trim(self, left: int, right: int) -> None:
        """Remove ``left`` elements from the head and ``right`` from the tail."""
        nodes = self.nodes
        while left:
            node = nodes[0]
            if node.count <= left:
                left -= node.count
                self.count -= node.count
                nodes.popleft()
                continue
            items = node.open()
            cut = len(items) - left if type(items) is Rev else 0
            gone = items[cut:cut + left]
            del items[cut:cut + left]
            self._drop(0, items, gone)
            left = 0
        while right:
            node = nodes[-1]
            if node.count <= right:
                right -= node.count
                self.count -= node.count
                nodes.pop()
                continue
            items = node.open()
            cut = 0 if type(items) is Rev else len(items) - right
            gone = items[cut:cut + right]
            del items[cut:cut + right]
            self._drop(len(nodes) - 1, items, gone)
            right = 0
        if nodes:
            nodes[0].open()
            nodes[-1].open()

    def remove(self, v: bytes, count: int) -> int:
        """LREM on the nodes: ``count`` > 0 from the head, < 0 from the tail, 0 all."""
        nodes = self.nodes
        limit = abs(count) or self.count
        removed = 0
        order = range(len(nodes)) if count >= 0 else range(len(nodes) - 1, -1, -1)
        emptied = []
        for i in order:
            if removed >= limit:
                break
            node = nodes[i]
            items = node.peek()
            if v not in items:
                continue
            keep = []
            if count >= 0:
                for x in items:
                    if x == v and removed < limit:
                        removed += 1
                    else:
                        keep.append(x)
            else:
                for x in reversed(items):
                    if x == v and removed < limit:
                        removed += 1
                    else:
                        keep.append(x)
                keep.reverse()
            taken = len(items) - len(keep)
            self.count -= taken
            if not keep:
                emptied.append(i)
                continue
            node.data = keep
            node.count = len(keep)
            if not node.plain:
                node.sz -= taken * entry_size(v)
        for i in sorted(emptied, reverse=True):
            del nodes[i]
        for i in range(len(nodes)):
            self._settle(i)
        if nodes:
            nodes[0].open()
            nodes[-1].open()
        return removed

    def elements(self) -> list:
        out = []
        for node in self.nodes:
            out.extend(node.peek())
        return out

    def element_cost(self, k: int) -> int:
        """The memory cost per element now (engine.memory): the inner nodes'
        elements packed (marshal: 5 bytes + the element), the open end
        nodes' as Python objects (a list slot and a bytes object each), the
        nodes' own objects, from the average element length of up to ``k`` nodes."""
        nodes = self.nodes
        n = self.count
        sz = cnt = 0
        for i in range(min(len(nodes), k)):
            sz += nodes[i].sz
            cnt += nodes[i].count
        avg = max(sz // cnt - 2, 0) if cnt else 0
        opened = 0
        if nodes:
            if type(nodes[0].data) is not bytes:
                opened = nodes[0].count
            if len(nodes) > 1 and type(nodes[-1].data) is not bytes:
                opened += nodes[-1].count
        total = _NODE_COST * len(nodes) + (n - opened) * (avg + 5) + opened * (LIST_SLOT + bytes_cost(avg))
        return total // n if n else 0

    def copy(self) -> "Quicklist":
        q = Quicklist(self.fill)
        for node in self.nodes:
            d = node.data
            n = Node([], node.sz, node.plain)
            t = type(d)
            n.data = d if t is bytes else t(d)  # a list, or a Rev
            n.count = node.count
            q.nodes.append(n)
        q.count = self.count
        return q
