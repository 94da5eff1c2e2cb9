"""The size model: what a key and its value cost in this process, in bytes.

``Keyspace.mem_used`` is the sum of ``key_cost`` + ``charge`` over every key,
plus ``TTL_COST`` per key with an expiry time; the keyspace mutators keep it
current (``engine.keyspace``), so INFO's ``used_memory``, ``maxmemory``
eviction and MEMORY USAGE all read one number that rises and falls with the
data. It is an estimate of what CPython really spends, not a count of bytes
held by a Python-level walk (which would cost O(n)):

* a ``bytes`` object of n bytes is a 33-byte header plus its content, in a
  pymalloc block rounded up to 16 bytes up to 512, and beyond that a malloc
  chunk (8 bytes of header, 16-byte granularity) -- ``alloc(33 + n)``;
* a ``bytearray`` (a string changed in place) is a 56-byte object plus its
  own buffer, grown with an eighth of spare room;
* a key is its ``bytes`` object plus its share of the ``data`` dict: an entry
  (hash, key, value: 24 bytes) in a table kept between 1/3 and 2/3 full plus
  its index bytes, ``DICT_ENTRY`` on average over the doublings;
* a TTL is one more entry in ``expires`` and its int (a 32-byte block);
* a collection's ``mem_size()`` is O(1): packed encodings are one ``bytes``
  object, charged by its length; large encodings are their element count
  times a per-element cost (the container's own entry plus the average
  element), the average sampled from a few elements whenever the count
  crosses a power of two, so it is amortised O(1) and costs nothing per
  command between crossings.

A value stored in a database remembers the charge it was added with (a
``_mem`` slot on collections, ``Database.ba_mem`` for bytearrays, the length
itself for ``bytes``, which never change): an in-place change re-reads
``mem_size()`` and adds the difference, and the removal of a key subtracts
exactly what was added, so after deleting everything ``mem_used`` is 0 again.

``used_memory`` (server.info) = ``used_memory_startup`` + ``mem_used`` + the
clients' buffers. Keel's ``used_memory_startup`` is NOT the interpreter's
baseline RSS (~25 MB of code and modules that Redis does not have): it is
what Redis reports for an empty instance (about 1 MB, see ``STARTUP``), so
that ``maxmemory 64mb`` holds as much data in Keel as in Redis, and an
operator's limit is about the data. The interpreter's baseline shows in
``used_memory_rss`` and ``mem_fragmentation_ratio`` instead.

The constants were calibrated against resident-memory growth with
``bench/memory.py`` (it prints, per workload, used_memory growth / RSS
growth). The bytes above alone came to 0.87-0.93 of the growth on the
rows of small collections: a packed value is rebuilt by every write to it
(a new bytes object, the old one freed), and the holes this and the
requests' temporaries leave between long-lived blocks keep pymalloc's pools
partly empty, so a packed value and a collection's object are ``slack``-ed
by an eighth. Strings and the elements of big collections are allocated
once and densely: they are charged their blocks alone.
"""

from __future__ import annotations



def slack(n: int) -> int:
    """``n`` bytes held plus the allocators' share of free space around them (1/8)."""
    return n + (n >> 3)


BYTES_HEADER = 33  # sys.getsizeof(b"")
BYTEARRAY_OBJECT = 64  # sys.getsizeof(bytearray()) = 56, in a 64-byte block
SMALL_LIMIT = 512  # pymalloc serves requests up to this size
DICT_ENTRY = 42  # a dict's resident cost per entry (24, and 4-byte indices), over its fill between resizes
TTL_COST = 42 + 32  # an ``expires`` entry and its int
STARTUP = 1 << 20  # used_memory of an empty instance (what Redis 7.0 reports, about 0.9 MB)


def alloc(n: int) -> int:
    """Bytes a request of ``n`` bytes really takes: a pymalloc block (16-byte
    classes) up to 512, a glibc chunk (8-byte header, 16-byte granularity)
    beyond."""
    if n <= SMALL_LIMIT:
        return (n + 15) & -16
    return (n + 23) & -16


def bytes_cost(n: int) -> int:
    """A ``bytes`` object of ``n`` bytes (Database.set inlines it)."""
    n += BYTES_HEADER
    return (n + 15) & -16 if n <= SMALL_LIMIT else (n + 23) & -16


def bytearray_cost(n: int) -> int:
    """A ``bytearray`` of ``n`` bytes, with the spare room its growth keeps."""
    return slack(BYTEARRAY_OBJECT + alloc(n + (n >> 3) + 1) if n else BYTEARRAY_OBJECT)


def key_cost(key: bytes) -> int:
    """A key: its ``bytes`` object and its entry in ``data``."""
    return bytes_cost(len(key)) + DICT_ENTRY


def charge(v) -> int:
    """The approximate size of the value ``v``, O(1)."""
    t = type(v)
    if t is bytes:
        return bytes_cost(len(v))
    if t is bytearray:
        return bytearray_cost(len(v))
    return v.mem_size()


def sample_cost(items, k: int = 32) -> int:
    """The average ``bytes_cost`` of up to ``k`` of ``items`` (an iterator
    of bytes), 0 when it is empty."""
    total = n = 0
    for x in items:
        total += bytes_cost(len(x))
        n += 1
        if n == k:
            break
    return total // n if n else 0


# --- per-type constants (CPython 3.11, 64-bit) ----------------------------------
# A collection object: the GC header (16), the object header (16), its slots
# (8 each, the memory ones included), in a 16-byte pymalloc block.
def object_cost(slots: int) -> int:
    return slack((32 + 8 * slots + 15) & -16)


DICT_OBJECT = 64  # an empty dict object with its first small table, beyond the entries
FLOAT = 32  # a float object (24 bytes) in its block
ARRAY_OBJECT = 80  # array('q') / array('d') object header
LIST_SLOT = 9  # a list's pointer per item, with its spare room (1/8)


def sample_items(d: dict, k: int = 32) -> int:
    """The average ``bytes_cost`` of a key plus its value over up to ``k``
    entries of ``d`` (bytes keys and values), 0 for an empty dict."""
    total = n = 0
    for key, v in d.items():
        total += bytes_cost(len(key)) + bytes_cost(len(v))
        n += 1
        if n == k:
            break
    return total // n if n else 0


def recount(db) -> int:
    """What database ``db`` holds, every value's size read afresh (O(n)):
    equal to its share of ``Keyspace.mem_used`` when every change went
    through the mutators (tests and MEMORY DOCTOR compare the two)."""
    total = TTL_COST * len(db.expires)
    for k, v in db.data.items():
        total += key_cost(k) + (charge(v) if hasattr(v, "mem_size") or type(v) in (bytes, bytearray) else 0)
    return total


class KeyspaceAccounting:
    """What ``engine.keyspace.Keyspace`` does with ``mem_used`` as a whole
    (the per-key accounting is in its mutators): defer and settle the
    re-reading of changed collections, count everything from scratch."""

    def mem_defer(self, on: bool) -> None:
        """Defer (``on``) or not the re-reading of a collection's size after an
        in-place change. Deferred, ``changed`` only notes the key and
        ``mem_settle`` (INFO, MEMORY, each cron tick) re-reads it: an HSET or
        LPUSH on an existing key pays a set insertion instead of the size's
        re-read. ``mem_used`` stays the sum of the charges the values were
        counted with, so removals stay exact; only the growth of a changed
        collection waits for the settle. The server defers while maxmemory is 0."""
        if on:
            for db in self.dbs:
                if db.mem_stale is None:
                    db.mem_stale = set()
        else:
            self.mem_settle()
            for db in self.dbs:
                db.mem_stale = None

    def mem_settle(self) -> None:
        """Bring ``mem_used`` up to date with the collections changed in place
        since the last settle (see ``mem_defer``); O(keys changed)."""
        for db in self.dbs:
            stale = db.mem_stale
            if not stale:
                continue
            data = db.data
            for key in stale:
                v = data.get(key)
                if v is None or type(v) is bytes or type(v) is bytearray:
                    continue  # gone, or replaced by a string (counted by set)
                try:
                    n = v.mem_size()
                except AttributeError:  # not a value type (a test's stand-in)
                    continue
                h = v._held
                if n != h:
                    self.mem_used += n - h
                    v._held = n
            stale.clear()
        if self.mem_used > self.mem_peak:
            self.mem_peak = self.mem_used

    def account_all(self) -> int:
        """Count ``mem_used`` from scratch, O(n): for a keyspace filled
        without the mutators (a checkpoint's loader stores into ``data``
        directly). Every value gets the charge later changes start from."""
        total = 0
        for db in self.dbs:
            ba = db.ba_mem = {}
            if db.mem_stale:
                db.mem_stale.clear()  # every value is counted afresh below
            total += TTL_COST * len(db.expires)
            for k, v in db.data.items():
                t = type(v)
                if t is bytes:
                    total += bytes_cost(len(v))
                elif t is bytearray:
                    total += ba.setdefault(k, bytearray_cost(len(v)))
                else:
                    total += db._hold(k, v)
                total += key_cost(k)
        self.mem_used = total
        return total
