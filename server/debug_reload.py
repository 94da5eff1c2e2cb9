"""DEBUG RELOAD: write a checkpoint, then rebuild the dataset in place from disk.

What Redis's DEBUG RELOAD proves (the server can persist, flush and load
back its data) done Keel's way: the checkpoint is written as SAVE writes it
(which also writes the log out to the offset it covers), read back into a
separate keyspace as startup reads it (``Checkpointer.load``), and only then
moved into the live keyspace. So a checkpoint that does not load, or a log
that does not replay, leaves the live data as it was and answers an error.

NOSAVE writes nothing and rebuilds from what is on disk: the last checkpoint
and, with ``appendonly``, the log after it, replayed through the engine's
handlers as recovery replays it (``server.persistence.Replayer``) — exactly
the state a restart would load. (Redis's NOSAVE loads the last RDB file as
it is; in Keel that file is only half of the durable state.) Function
libraries are not reloaded: the live ones are what the log leads to.

Moving the data in goes through the keyspace's mutators (``Database.set``,
``set_expire``, ``Keyspace.flushall``) with ``ks.loading`` set: memory
accounting, WATCH and checkpoint dirty-tracking see it as they see any
write (the next checkpoint rewrites the databases, whose dicts are new),
no keyspace event is sent and nothing is journaled, since the log already
describes this state. With NOFLUSH the old keys stay; a key also in the
checkpoint takes the checkpoint's value with MERGE, and without MERGE the
reload is refused and nothing changes (Redis stops the server there).
Inside MULTI … EXEC it is refused (Redis runs it): the checkpoint would
write the transaction's first effects out as a record of their own.
"""

from __future__ import annotations

import logging
import time

from engine import errors
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.session import Session

log = logging.getLogger("keel.debug")

IN_EXEC = "ERR DEBUG RELOAD is not allowed inside a transaction"
NOFLUSH_CONFLICT = ("ERR DEBUG RELOAD NOFLUSH: key '{}' of database {} is both in memory and on disk "
                    "(add MERGE to take the one on disk)")


def _read_disk(p, ks, replay_log: bool) -> Keyspace:
    """A new keyspace holding the checkpoint (and the log after it, ``replay_log``)."""
    from server.persistence import Replayer

    fresh = Keyspace(len(ks.dbs))
    fresh.limits = ks.limits
    fresh.proto_max_bulk_len = ks.proto_max_bulk_len
    fresh.loading = True
    if replay_log:
        # A scratch function registry: the log's FUNCTION records replay into
        # it (the live one already holds their outcome and is left as it is).
        from server.scripting.runner import Scripting

        fresh.scripting = Scripting(fresh)
    try:
        offset = p.checkpointer.load(fresh) or 0
    except Exception as e:
        raise CommandError(f"ERR DEBUG RELOAD: the checkpoint does not load: {e}") from None
    lg = p.log
    if replay_log and lg is not None:
        p._prepare_checkpoint(sync=False)  # the records of this turn, written out
        replay = Replayer(Session(fresh))
        try:
            for off, ts, payload in lg.read_from(max(offset, lg.start_offset)):
                replay(off, ts, payload)
        except Exception as e:
            raise CommandError(f"ERR DEBUG RELOAD: the log does not replay: {e}") from None
    fresh.effects.clear()
    return fresh


def reload_dataset(server, merge: bool, flush: bool, save: bool) -> None:
    """The work of DEBUG RELOAD; CommandError (nothing changed) when it cannot."""
    p = server.persistence
    if p.checkpointer is None:
        raise CommandError(errors.NO_CHECKPOINTER)
    if p.bgsave_task is not None:
        raise CommandError(errors.BGSAVE_IN_PROGRESS)
    ks = server.ks
    if getattr(getattr(ks, "scripting", None), "in_exec", False):
        # Its checkpoint would write the transaction's first effects out as a
        # record of their own: half a transaction on disk.
        raise CommandError(IN_EXEC)
    t0 = time.perf_counter()
    if save:
        try:
            p.save()
        except Exception as e:
            raise CommandError(f"ERR checkpoint failed: {e}") from None
    t1 = time.perf_counter()
    fresh = _read_disk(p, ks, replay_log=not save)
    t2 = time.perf_counter()
    if not flush and not merge:
        for db, fdb in zip(ks.dbs, fresh.dbs):
            for key in fdb.data:
                if db.get(key) is not None:
                    raise CommandError(NOFLUSH_CONFLICT.format(key.decode("utf-8", "replace"), db.index))
    was_loading = ks.loading
    ks.loading = True
    try:
        if flush:
            ks.flushall()
        for db, fdb in zip(ks.dbs, fresh.dbs):
            expires = fdb.expires
            for key, value in fdb.data.items():
                db.set(key, value)
                when = expires.get(key)
                if when is not None:
                    db.set_expire(key, when)
    finally:
        ks.loading = was_loading
    if save:
        p.dirty_at_last_save = ks.dirty
    log.info("DEBUG RELOAD: %d keys loaded (checkpoint %.2f s, read back %.2f s, moved in %.2f s)",
             sum(len(db.data) for db in fresh.dbs), t1 - t0, t2 - t1, time.perf_counter() - t2)
