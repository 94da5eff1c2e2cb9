"""The large sorted set encoding (``skiplist`` in OBJECT ENCODING): a dict
member -> score and the (score, member) order kept as short sorted runs.

Each run is an ``array('d')`` of scores and a parallel list of members,
at most ``2 * LOAD`` long, in (score, member bytes) order — Redis's order:
scores as doubles (so -0 and 0 tie), ties by memcmp of the members. A search
bisects the runs' last scores (``_maxs``, contiguous doubles), then the one
run's scores, and compares members only where scores tie: almost every probe
reads a double from a contiguous array instead of following a pointer to a
tuple and its float (one cache miss each on a set of a million members),
which is what made a search of a big set cost ten times a small one's.

A Fenwick tree over the run lengths (``_tree``, 1-based) turns a (run,
offset) into a rank and back in O(log runs); it is rebuilt (O(runs)) only
when a run is split, merged or dropped, about once per LOAD inserts.

Every method that takes a (score, member) pair for an existing entry
expects the score the dict holds for it. Invariants: no run is empty;
``_maxs[p]``/``_maxm[p]`` are run p's last score and member; ``len(d)`` is
the total of the run lengths; a member is in ``d`` iff it is in one run.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

LOAD = 1000  # a run is split past 2*LOAD entries, merged with a neighbour below LOAD/4


class Runs:
    __slots__ = ("d", "_sc", "_mem", "_maxs", "_maxm", "_tree", "_top")

    def __init__(self, pairs=()):
        """The set of ``pairs`` ((score, member), sorted, members distinct)."""
        self.d = {m: s for s, m in pairs}
        self._sc = []
        self._mem = []
        for i in range(0, len(pairs), LOAD):
            chunk = pairs[i:i + LOAD]
            self._sc.append(array("d", [s for s, _ in chunk]))
            self._mem.append([m for _, m in chunk])
        self._reindex()

    def _reindex(self) -> None:
        """Rebuild the run maxima and the Fenwick tree from the runs."""
        sc, mem = self._sc, self._mem
        self._maxs = array("d", [a[-1] for a in sc])
        self._maxm = [m[-1] for m in mem]
        n = len(sc)
        tree = [0]
        tree += map(len, sc)
        for i in range(1, n + 1):
            j = i + (i & -i)
            if j <= n:
                tree[j] += tree[i]
        self._tree = tree
        self._top = 1 << (n.bit_length() - 1) if n else 0

    def copy(self) -> "Runs":
        r = Runs.__new__(Runs)
        r.d = self.d.copy()
        r._sc = [a[:] for a in self._sc]
        r._mem = [m[:] for m in self._mem]
        r._maxs = self._maxs[:]
        r._maxm = self._maxm[:]
        r._tree = self._tree[:]
        r._top = self._top
        return r

    # -- positions -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.d)

    def _before(self, p: int) -> int:
        """How many entries the runs before run ``p`` hold."""
        tree = self._tree
        t = 0
        while p:
            t += tree[p]
            p &= p - 1
        return t

    def _at(self, pos: int):
        """(run, offset) of position ``pos`` (0 <= pos < len)."""
        tree = self._tree
        n = len(tree) - 1
        p = 0
        step = self._top
        while step:
            q = p + step
            if q <= n and tree[q] <= pos:
                p = q
                pos -= tree[q]
            step >>= 1
        return p, pos

    def _grow(self, p: int, delta: int) -> None:
        tree = self._tree
        n = len(tree) - 1
        p += 1
        while p <= n:
            tree[p] += delta
            p += p & -p

    def _find(self, s: float, m: bytes, right: bool):
        """(run, offset) where (s, m) goes: before an equal pair, or after it if ``right``."""
        maxs = self._maxs
        n = len(maxs)
        p = bisect_left(maxs, s)
        if p < n and maxs[p] == s:  # runs ending on this score: their last members decide
            p = (bisect_right if right else bisect_left)(self._maxm, m, p, bisect_right(maxs, s, p))
        if p == n:
            return p, 0
        sc = self._sc[p]
        i = bisect_left(sc, s)
        if i < len(sc) and sc[i] == s:
            i = (bisect_right if right else bisect_left)(self._mem[p], m, i, bisect_right(sc, s, i))
        return p, i

    def _position(self, p: int, i: int) -> int:
        return len(self.d) if p == len(self._sc) else self._before(p) + i

    def rank(self, s: float, m: bytes) -> int:
        """The position of the entry (s, m)."""
        p, i = self._find(s, m, False)
        tree = self._tree
        while p:  # (_before, inlined: ZRANK's one other call)
            i += tree[p]
            p &= p - 1
        return i

    def bisect(self, s: float, m: bytes, right: bool = False) -> int:
        """The position where (s, m) goes (after an equal pair if ``right``)."""
        return self._position(*self._find(s, m, right))

    def bisect_score(self, s: float, right: bool = False) -> int:
        """The first position with a score >= s (> s if ``right``)."""
        maxs = self._maxs
        p = (bisect_right if right else bisect_left)(maxs, s)
        if p == len(maxs):
            return len(self.d)
        return self._before(p) + (bisect_right if right else bisect_left)(self._sc[p], s)

    def bisect_member(self, m: bytes, right: bool = False) -> int:
        """The first position with a member >= m (> m if ``right``), bisecting
        by member alone: exact where the members are in lex order (all of one
        score, as lex ranges assume); where they are not, the answer is as
        unspecified as that of Redis's skiplist search, which assumes it too."""
        f = bisect_right if right else bisect_left
        maxm = self._maxm
        p = f(maxm, m)
        if p == len(maxm):
            return len(self.d)
        return self._before(p) + f(self._mem[p], m)

    def __getitem__(self, pos: int):
        """The (score, member) at position ``pos`` (0 <= pos < len)."""
        p, i = self._at(pos)
        return self._sc[p][i], self._mem[p][i]

    def slice(self, start: int, stop: int) -> list:
        """(score, member) pairs at positions start <= i < stop (0 <= start <= stop <= len)."""
        if start >= stop:
            return []
        p, i = self._at(start)
        sc, mem = self._sc, self._mem
        j = i + stop - start
        if j <= len(sc[p]):  # within one run, as a short range mostly is
            return list(zip(sc[p][i:j], mem[p][i:j]))
        out = []
        left = stop - start
        while left > 0:
            a, m = sc[p], mem[p]
            j = min(len(a), i + left)
            out += zip(a[i:j], m[i:j])
            left -= j - i
            p += 1
            i = 0
        return out

    def __iter__(self):
        for a, m in zip(self._sc, self._mem):
            yield from zip(a, m)

    def __reversed__(self):
        for a, m in zip(reversed(self._sc), reversed(self._mem)):
            yield from zip(reversed(a), reversed(m))

    def backwards(self):
        """(scores, members) of each run, highest first, each reversed: for
        an encoder that works a run at a time in C (``map``, ``zip``)."""
        for a, m in zip(reversed(self._sc), reversed(self._mem)):
            yield a[::-1], m[::-1]

    # -- changes ---------------------------------------------------------------
    def add(self, s: float, m: bytes) -> None:
        """Insert the new member ``m`` at score ``s`` (``d`` included)."""
        self.d[m] = s
        sc = self._sc
        if not sc:
            sc.append(array("d", (s,)))
            self._mem.append([m])
            self._reindex()
            return
        p, i = self._find(s, m, False)
        if p == len(sc):
            p -= 1
            i = len(sc[p])
        a, mem = sc[p], self._mem[p]
        a.insert(i, s)
        mem.insert(i, m)
        if i == len(a) - 1:
            self._maxs[p] = s
            self._maxm[p] = m
        if len(a) > 2 * LOAD:
            sc.insert(p + 1, a[LOAD:])
            self._mem.insert(p + 1, mem[LOAD:])
            del a[LOAD:], mem[LOAD:]
            self._reindex()
        else:
            self._grow(p, 1)

    def discard(self, s: float, m: bytes) -> None:
        """Remove the member ``m``, whose score is ``s`` (``d`` included)."""
        del self.d[m]
        p, i = self._find(s, m, False)
        a, mem = self._sc[p], self._mem[p]
        del a[i], mem[i]
        n = len(a)
        if n < LOAD // 4 and (n == 0 or len(self._sc) > 1):
            self._merge(p)
            return
        if i == n:
            self._maxs[p] = a[-1]
            self._maxm[p] = mem[-1]
        self._grow(p, -1)

    def _merge(self, p: int) -> None:
        """Run ``p`` ran short: join it to a neighbour (split again if that is too long)."""
        sc, mem = self._sc, self._mem
        if not sc[p]:
            del sc[p], mem[p]
        else:
            q = p + 1 if p + 1 < len(sc) else p - 1
            lo = min(p, q)
            sc[lo] += sc[lo + 1]
            mem[lo] += mem[lo + 1]
            del sc[lo + 1], mem[lo + 1]
            if len(sc[lo]) > 2 * LOAD:
                sc.insert(lo + 1, sc[lo][LOAD:])
                mem.insert(lo + 1, mem[lo][LOAD:])
                del sc[lo][LOAD:], mem[lo][LOAD:]
        self._reindex()

    def take(self, start: int, stop: int) -> list:
        """Remove and return the pairs at positions start <= i < stop (0 <= start < stop <= len)."""
        p, i = self._at(start)
        sc, mem, d = self._sc, self._mem, self.d
        a, m = sc[p], mem[p]
        if i + (stop - start) < len(a):  # within one run, which keeps some: no reindex
            j = i + stop - start
            taken = list(zip(a[i:j], m[i:j]))
            del a[i:j], m[i:j]
            for _, x in taken:
                del d[x]
            if len(a) < LOAD // 4 and len(sc) > 1:
                self._merge(p)
            else:
                self._grow(p, i - j)
            return taken
        taken = self.slice(start, stop)
        for _, x in taken:
            del d[x]
        left = stop - start
        while left > 0:
            a, m = sc[p], mem[p]
            j = min(len(a), i + left)
            left -= j - i
            del a[i:j], m[i:j]
            if a:
                p += 1
            else:
                del sc[p], mem[p]
            i = 0
        if p < len(sc) and len(sc[p]) < LOAD // 4 and len(sc) > 1:
            self._merge(p)  # (reindexes)
        elif p > 0 and len(sc[p - 1]) < LOAD // 4 and len(sc) > 1:
            self._merge(p - 1)
        else:
            self._reindex()
        return taken
