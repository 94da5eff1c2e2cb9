"""Eviction: per-key access information and the policies that choose victims.

Access information (``Access``): while ``maxmemory-policy`` is an LRU or LFU
policy, each database has a side dict ``key -> packed int`` beside ``data``
(values are often plain ``bytes`` and carry no attributes of their own):

* LRU: the access clock, seconds & 24 bits, as Redis's ``lru`` field. The
  clock of the current second is one int object (``Access.clock``, advanced
  by ``tick``), shared by every key touched in that second, so a key costs
  only its dict entry.
* LFU: ``(minutes & 0xffff) << 8 | counter``: Redis's 16-bit decay time and
  8-bit logarithmic counter (``lfu-log-factor``, ``lfu-decay-time``); a new
  key starts at ``LFU_INIT``. Equal packed values share one int object.

A key with no entry (written before tracking began, or while it was off)
counts as last touched when tracking began (``Access.base``). Entries are
written after a command touched its keys (``touch``; the server decides
which commands do, as Redis's lookups do); a key the command deleted loses
its entry; FLUSHDB, FLUSHALL and SWAPDB drop or move a database's entries
whole (``flushed``, ``swapped``; ``follow`` catches any other replacement of
a database's dict); keys removed otherwise (expiry) leave entries that
``sweep`` drops a slice at a time. Switching between LRU and LFU, or turning
tracking off, drops every entry: Redis reinterprets the same bits, Keel
starts afresh (both say "LRU and LFU data will take some time to adjust").

Choosing victims (``Evictor``): the LRU, LFU and TTL policies sample
``maxmemory-samples`` keys of every database (entries at random positions of
the table, holes rejected, so that every key is as likely; ``engine.dictscan``,
in C) into a pool of the ``POOL_SIZE`` best
candidates, as Redis does, and evict the best one still there; volatile-*
policies sample only ``expires``; volatile-ttl prefers the nearest expiry;
the random policies take a random key. Evicted keys go through
``Database.evict`` (journaled as DEL, counted, announced ``evicted``); under
``lazyfree-lazy-eviction`` a big value goes to the keyspace's reaper (``engine.lazyfree``).
Nothing here reads a clock but ``Access.tick``'s caller and the TTL
comparison; no I/O.
"""

from __future__ import annotations

import random
import time
from bisect import insort

from engine.dictscan import below, layout, pick, sample

LRU_MAX = (1 << 24) - 1
# What one key's access entry costs the process: its place in the side dict
# (the int is shared). Measured as resident growth per key of 200k 16-byte
# strings written under allkeys-lru against noeviction: 239 - 187 bytes.
ENTRY_COST = 52
LFU_INIT = 5
POOL_SIZE = 16
PER_ROUND = 2  # victims taken per sampling round (see Evictor.victim)
REFRESH = 64  # sampling rounds between two looks at which databases have keys

OFF, LRU, LFU = 0, 1, 2

# policy -> (tracking mode, sample from expires only, how candidates are ranked)
POLICIES = {
    "noeviction": (OFF, False, None),
    "allkeys-lru": (LRU, False, "lru"),
    "volatile-lru": (LRU, True, "lru"),
    "allkeys-lfu": (LFU, False, "lfu"),
    "volatile-lfu": (LFU, True, "lfu"),
    "allkeys-random": (OFF, False, "random"),
    "volatile-random": (OFF, True, "random"),
    "volatile-ttl": (OFF, True, "ttl"),
}


def lru_clock(now: float | None = None) -> int:
    return int(time.time() if now is None else now) & LRU_MAX


def lfu_minutes(now: float | None = None) -> int:
    return (int(time.time() if now is None else now) // 60) & 0xFFFF


class Access:
    """The LRU clock or LFU counter of every key touched while tracking is on."""

    def __init__(self, ks):
        self.ks = ks
        self.mode = OFF
        self.dicts: list[dict] = [{} for _ in ks.dbs]
        self.clock = lru_clock()
        self.minutes = lfu_minutes()
        self.base = self.clock  # what a key without an entry counts as (LRU)
        self.base_minutes = self.minutes
        self.log_factor = 10
        self.decay_time = 1
        self._interned: dict[int, int] = {}
        self._sweep_db = 0
        self._sweep_pos = 0
        self._ids = [id(db.data) for db in ks.dbs]  # which data dict each database's entries belong to

    def set_mode(self, mode: int) -> None:
        if mode == self.mode:
            return
        self.mode = mode
        self.dicts = [{} for _ in self.ks.dbs]
        self._ids = [id(db.data) for db in self.ks.dbs]
        self._interned = {}
        self.tick()
        self.base, self.base_minutes = self.clock, self.minutes

    def tick(self, now: float | None = None) -> None:
        """Advance the clocks (the server calls it from its cron); the same
        int object stays in place while the second has not changed."""
        c = lru_clock(now)
        if c != self.clock:
            self.clock = c
        m = lfu_minutes(now)
        if m != self.minutes:
            self.minutes = m
            self._interned = {}

    # -- LFU arithmetic (Redis's logarithmic counter) --------------------------
    def _decayed(self, packed: int) -> int:
        counter = packed & 255
        if self.decay_time:
            elapsed = (self.minutes - (packed >> 8)) & 0xFFFF
            counter -= elapsed // self.decay_time
        return counter if counter > 0 else 0

    def _packed(self, counter: int) -> int:
        v = (self.minutes << 8) | counter
        return self._interned.setdefault(v, v)

    def lfu_touch(self, d: dict, key: bytes) -> None:
        """One access under LFU: the counter decayed by the minutes since its
        last access, then maybe incremented (Redis's logarithmic rule). On
        every read of a key: ``_decayed`` and ``_packed`` written out."""
        packed = d.get(key)
        minutes = self.minutes
        if packed is None:
            v = (minutes << 8) | LFU_INIT
        else:
            counter = packed & 255
            if self.decay_time:
                elapsed = (minutes - (packed >> 8)) & 0xFFFF
                if elapsed:
                    counter -= elapsed // self.decay_time
                    if counter < 0:
                        counter = 0
            if counter < 255:
                base = counter - LFU_INIT
                if base <= 0 or random.random() < 1.0 / (base * self.log_factor + 1):
                    counter += 1
            v = (minutes << 8) | counter
        d[key] = self._interned.setdefault(v, v)

    # -- touching --------------------------------------------------------------
    def touch(self, db, key: bytes) -> None:
        """After a command that touched ``key`` in ``db``: record the access,
        or drop the entry of a key the command deleted."""
        d = self.dicts[db.index]
        if key in db.data:
            if self.mode == LRU:
                d[key] = self.clock
            else:
                self.lfu_touch(d, key)
        else:
            d.pop(key, None)

    def set_idle(self, db, key: bytes, seconds: int) -> bool:
        """RESTORE … IDLETIME: only under an LRU policy, as Redis (False otherwise)."""
        if self.mode != LRU:
            return False
        self.dicts[db.index][key] = (self.clock - min(seconds, LRU_MAX)) & LRU_MAX
        return True

    def set_freq(self, db, key: bytes, freq: int) -> bool:
        """RESTORE … FREQ: only under an LFU policy, as Redis (False otherwise)."""
        if self.mode != LFU:
            return False
        self.dicts[db.index][key] = self._packed(freq)
        return True

    def flushed(self, index: int | None = None) -> None:
        """FLUSHDB (``index``) or FLUSHALL (None) emptied databases: their entries go."""
        if index is None:
            self.dicts = [{} for _ in self.ks.dbs]
        else:
            self.dicts[index] = {}
        self._ids = [id(db.data) for db in self.ks.dbs]

    def swapped(self, a: int, b: int) -> None:
        """SWAPDB a b: the entries change places with the data."""
        d = self.dicts
        d[a], d[b] = d[b], d[a]
        self._ids = [id(db.data) for db in self.ks.dbs]

    def follow(self) -> None:
        """A database whose ``data`` dict was replaced other than by the
        commands above (DEBUG RELOAD, a full sync) starts afresh."""
        dbs = self.ks.dbs
        for i, db in enumerate(dbs):
            if id(db.data) != self._ids[i]:
                self.dicts[i] = {}
        self._ids = [id(db.data) for db in dbs]

    def size(self) -> int:
        """What the access entries cost, in bytes (``ENTRY_COST`` each)."""
        return ENTRY_COST * sum(map(len, self.dicts))

    def forget(self, db, key: bytes) -> None:
        self.dicts[db.index].pop(key, None)

    # -- reading ---------------------------------------------------------------
    def idle_seconds(self, db, key: bytes) -> int:
        """Seconds since ``key`` was last touched (LRU tracking)."""
        v = self.dicts[db.index].get(key, self.base)
        return (self.clock - v) & LRU_MAX

    def freq(self, db, key: bytes) -> int:
        """The decayed LFU counter of ``key`` (OBJECT FREQ: no increment)."""
        v = self.dicts[db.index].get(key)
        if v is None:
            v = (self.base_minutes << 8) | LFU_INIT
        return self._decayed(v)

    def sweep(self, count: int = 256) -> int:
        """Drop the entries of keys that are gone (expired, flushed), looking
        at up to ``count`` of them: one database at a time, walking from where
        the last sweep stopped. The number of entries dropped."""
        dicts = self.dicts
        dbs = self.ks.dbs
        for _ in range(len(dicts)):
            i = self._sweep_db % len(dicts)
            d = dicts[i]
            if d:
                data = dbs[i].data
                nxt, keys = below(d, self._sweep_pos, count)
                gone = [k for k in keys if k not in data]
                for k in gone:
                    del d[k]
                self._sweep_pos = nxt
                if nxt == 0:
                    self._sweep_db = i + 1
                return len(gone)
            self._sweep_db = i + 1
            self._sweep_pos = 0
        return 0


class Evictor:
    """The policy in force and its pool of candidates."""

    def __init__(self, ks, access: Access):
        self.ks = ks
        self.access = access
        self.policy = "noeviction"
        self.volatile = False
        self.rank = None
        self.samples = 5
        self.pool: list[tuple] = []  # (score, tie-break, db index, key), ascending: the best last
        self._next_db = 0
        self._credit = 0  # victims the pool may still give before the next sampling round
        self._srcs = None  # the databases with keys to sample (see _sources)
        self._refresh = 0

    def set_policy(self, name: str) -> None:
        mode, volatile, rank = POLICIES[name]
        self.policy, self.volatile, self.rank = name, volatile, rank
        self.pool = []
        self._srcs = None
        self.access.set_mode(mode)

    def _source(self, db) -> dict:
        return db.expires if self.volatile else db.data

    def _score(self, db, key: bytes) -> int:
        """Higher: a better victim."""
        rank = self.rank
        a = self.access
        if rank == "lru":
            return a.idle_seconds(db, key)
        if rank == "lfu":
            return 255 - a.freq(db, key)
        return -db.expires.get(key, 0)  # ttl: the nearest expiry first

    def _sources(self) -> list:
        """The databases that have keys to sample, found again every
        ``REFRESH`` rounds (a database emptied meanwhile is skipped; one filled
        meanwhile waits for the next look): most servers use one database of
        sixteen, and looking at all of them each round cost more than the
        sampling."""
        srcs = self._srcs
        self._refresh -= 1
        if srcs is None or self._refresh < 0:
            volatile = self.volatile
            srcs = self._srcs = [db for db in self.ks.dbs if (db.expires if volatile else db.data)]
            self._refresh = REFRESH
        return srcs

    def _populate(self, runs: int) -> None:
        """Sample ``runs * samples`` keys of every database, uniformly, into the
        pool. (The hottest loop of eviction: the LRU score is computed inline;
        a key sampled twice may hold two places, and the second finds it gone.)"""
        pool = self.pool
        samples = self.samples
        rnd = random.random
        a = self.access
        lru = self.rank == "lru"
        lfu = self.rank == "lfu"
        clock, base = a.clock, a.base
        dicts = a.dicts
        volatile = self.volatile
        for db in self._sources():
            d = db.expires if volatile else db.data
            if not d:
                continue
            n = layout(d)[0]
            get = dicts[db.index].get
            index = db.index
            want = runs * samples
            # Random positions drawn in C (holes rejected: a key after a run
            # of holes, where evicting the old keys left most of them, would
            # be met from every position in the run, and those are the
            # survivors, the keys being read); under LRU the idle times are
            # read there too, and only samples that could enter the pool
            # (as idle as its worst, or more) come back.
            full = len(pool) >= POOL_SIZE
            if lru:
                got, seen = sample(d, want, dicts[index], base, clock, LRU_MAX, pool[0][0] if full else -1)
            else:
                got, seen = sample(d, want, None, 0, 0, 0, 0)
            for score, p, key in got:
                if not lru:
                    score = self._score(db, key)
                # Equal scores: under LFU the older key goes first (nearer the
                # front of the table: written earlier), as a frequency ties
                # with an age; under LRU (a clock of seconds) a random one: a
                # key read this second is as old in the table as one not read.
                tie = -p if lfu else rnd()
                if len(pool) >= POOL_SIZE:
                    if score < pool[0][0] or (score == pool[0][0] and tie <= pool[0][1]):
                        continue
                    del pool[0]
                insort(pool, (score, tie, index, key))
            if seen < want:  # mostly holes (rare: the table is rebuilt once it fills): a run of keys
                found = below(d, 1 + int(rnd() * n), samples)[1]
                if not found:  # none before that position: the last ones (one key left at the end)
                    found = below(d, n, samples)[1]
                for key in found:
                    if lru:
                        score = (clock - get(key, base)) & LRU_MAX
                    else:
                        score = self._score(db, key)
                    insort(pool, (score, 0, index, key))
                del pool[:-POOL_SIZE]

    def victim(self):
        """(database, key) of the next key to evict, or None when nothing
        can be evicted under the policy. The pool is filled with
        ``PER_ROUND`` runs of ``samples`` keys for every ``PER_ROUND`` victims (as many
        samples per victim as Redis takes, fewer rounds of overhead)."""
        if self.rank is None:
            return None
        dbs = self.ks.dbs
        if self.rank == "random":
            for attempt in range(2):
                srcs = self._sources()
                if attempt:
                    srcs = self._srcs = [db for db in dbs if self._source(db)]
                for _ in range(len(srcs)):
                    db = srcs[self._next_db % len(srcs)]
                    self._next_db += 1
                    d = self._source(db)
                    if not d:
                        continue
                    n = layout(d)[0]
                    for _ in range(16):  # a random position, holes rejected (see _populate)
                        p = int(random.random() * n)
                        q, found = below(d, p + 1, 1)
                        if found and q == p:
                            return db, found[0]
                    return db, pick(d, int(random.random() * n))
            return None
        pool = self.pool
        for attempt in range(4):
            if self._credit <= 0 or not pool:
                if attempt:
                    self._srcs = None  # nothing found: look at every database again
                self._populate(PER_ROUND)
                self._credit = PER_ROUND
            while pool:
                score, tie, i, key = pool.pop()
                db = dbs[i]
                if key not in self._source(db):
                    continue  # gone since it was sampled
                now = self._score(db, key)
                if now < score and pool and now < pool[-1][0]:
                    insort(pool, (now, tie, i, key))  # touched since: a better one is waiting
                    continue
                self._credit -= 1
                return db, key
            self._credit = 0
        return None

    def evict_one(self) -> bool:
        """Evict one key; False when there is nothing to evict."""
        v = self.victim()
        if v is None:
            return False
        db, key = v
        r = getattr(self.ks, "reaper", None)
        if r is not None and r.eviction and not self.ks.loading:  # lazyfree-lazy-eviction: freed later
            value = db.data.get(key)
            db.evict(key)
            r.free(value)
        else:
            db.evict(key)
        self.access.dicts[db.index].pop(key, None)
        return True
