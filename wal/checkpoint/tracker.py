"""Key tracking: which keys changed since the last checkpoint.

Role: ``start_tracking`` gives each database a dirty set
(``Database.dirty``) that the keyspace's mutators add each changed key to
(one ``set.add``, inline, no callback); a capture swaps it out
(``wal.checkpoint.capture``). ``trim`` (server cron) keeps that memory in
proportion to the database: a big set becomes a ``KeyLog`` (a list of every
change, 8 bytes each), and a KeyLog past half a change per key is dropped
(``None``: the next capture takes the database whole).

Invariants (event-loop thread only): a key changed since the last capture
is in its database's dirty set or KeyLog, or the database's ``dirty`` is
None; ``_tables`` holds each database's dict as of the last capture (a
different dict means FLUSHDB/FLUSHALL replaced it); ``_need_full`` says the
next capture must take everything (a keyspace not loaded here, a lost write
or an abandoned capture).
"""

from __future__ import annotations

class KeyLog(list):
    """A dirty set that no longer deduplicates: every change appends its key.

    ``Checkpointer.trim`` puts one in place of a dirty set that grew past a
    share of its database, keeping the set itself, no longer written to, as
    ``earlier``. A change then costs one ``list.append`` and 8 bytes, where a
    set costs 30-60 bytes per key, and the next capture still takes only the
    keys that changed, a chunk per loop turn, from lists nothing writes to
    (a key changed twice in different chunks is taken twice, and the writer
    keeps the later value). Without it a bulk load of new keys made the next
    checkpoint take the database whole.
    """

    __slots__ = ("earlier",)
    add = list.append  # the mutators call ``db.dirty.add(key)`` on a set or a KeyLog alike

    def __init__(self, earlier):
        super().__init__()
        self.earlier = earlier


def changes(d) -> int:
    """Keys a capture of the dirty set or KeyLog ``d`` would take (repeats included)."""
    return len(d) + len(d.earlier) if type(d) is KeyLog else len(d)


class Tracker:
    """Dirty tracking of the keyspace being served; mixed into ``Checkpointer``."""

    def start_tracking(self, ks) -> None:
        """Record every key changed in ``ks`` from now on (call before log replay)."""
        self.stop_tracking()
        for db in ks.dbs:
            db.dirty = set()
        self._ks = ks
        self._tables = [db.data for db in ks.dbs]
        self._need_full = ks is not self._loaded

    def stop_tracking(self) -> None:
        if self._ks is not None:
            for db in self._ks.dbs:
                db.dirty = None
            self._ks = None

    def forget_captures(self) -> None:
        """A capture was abandoned (its keys left the dirty sets): write all next time."""
        self._need_full = True

    def trim(self, ks, floor: int = 65536, ratio: int = 8, log_ratio: float = 0.5,
             copy_below: int = 131072) -> int:
        """Keep the memory of dirty tracking in proportion to the database.

        A dirty set holding more than ``floor`` keys and more than 1/``ratio``
        of its database becomes a ``KeyLog`` (8 bytes per change instead of
        30-60 per key; a set of at most ``copy_below`` keys is copied into
        it, a bigger one kept beside it). A KeyLog holding more than
        ``log_ratio`` changes per key of its database (plus ``floor``) is
        dropped (``db.dirty = None``): the next capture takes that database
        whole (``_Walk``), which costs less than taking each change (a
        checkpoint of a KeyLog of 4 changes per key under a write load ran
        the server at 225k req/s, a whole one at 300k) and bounds memory.
        Half a change per key by default: past that a capture of the changes
        saves the writer less than half its work, while the KeyLog costs up
        to 8 bytes a key, the resident memory of a bulk load of new keys
        (181 against 174 bytes a key for 1M 16-byte strings).
        Returns how many databases changed form. Called from the server cron.
        """
        if ks is not self._ks:
            return 0
        n = 0
        for db in ks.dbs:
            d = db.dirty
            if d is None:
                continue
            size = len(db.data)
            if type(d) is set:
                if len(d) > floor and len(d) * ratio > size:
                    if len(d) <= copy_below:
                        # A set's table takes 16-32 bytes per key, a list 8:
                        # a small one is copied over (a millisecond or two).
                        log = db.dirty = KeyLog(())
                        log.extend(d)
                    else:
                        db.dirty = KeyLog(d)
                    n += 1
            elif len(d) > log_ratio * size + floor:
                db.dirty = None
                n += 1
        return n
