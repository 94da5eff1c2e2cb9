"""Loading an RDB file into a keyspace: a full sync's payload, or a dump.rdb.

Role: ``engine.rdbfile.parse`` reads the file and calls an ``RdbSink``;
``KeyspaceSink`` is the sink that puts what it reads into an empty
``engine.keyspace.Keyspace`` the way the checkpoint loader does
(``wal.checkpoint.loader``): straight into ``db.data`` / ``db.expires``,
no watchers, no effects, nothing marked dirty, then ``ks.account_all()``
counts the memory once at the end.

Interface
---------
``load_rdb_file(path, ks, *, drop_expired) -> dict`` / ``load_rdb_bytes(buf, ks, *, drop_expired)``
    Fill the EMPTY keyspace ``ks``; returns ``{"aux": {name: value},
    "keys": loaded, "expired": dropped, "functions": libraries}``.
    ``drop_expired``: keys whose expiry time has passed are left out (a
    primary, an import: as Redis loads its own file); a replica keeps them
    (False) and waits for its primary's ``DEL``, as Redis's replicas do.
    Function libraries go through ``ks.scripting.load_codes`` once the whole
    file has been read, replacing the ones there: they are part of the
    dataset (a file without any leaves none, as a Redis replica's full sync).
``import_dump(persistence) -> dict | None``
    The migration path: on the first start of a server (no checkpoint, an
    empty log, an empty keyspace) whose data directory holds ``dbfilename``
    (``dump.rdb``), load it, write a checkpoint at once so that a restart
    needs no RDB, then rename the file to ``<dbfilename>.imported`` (so it is
    plain that it was taken, and it is never loaded a second time over
    data that moved on). None when there was nothing to import.

Errors: a file that does not parse (truncated, damaged, bad checksum, a
database the server does not have, a library that does not load) raises
``RdbError`` naming the file and, from the parser, the byte offset. The
keyspace is then emptied again (cleared in place; it had to be empty
before, and the function libraries are loaded only after the whole file
parsed), so nothing half-loaded is ever served as complete.
"""

from __future__ import annotations

import logging
import os
import time

from engine.keyspace import now_ms
from engine.rdbfile import RdbError, RdbSink, parse, parse_file

log = logging.getLogger("keel.persistence")

IMPORTED_SUFFIX = ".imported"


class KeyspaceSink(RdbSink):
    """Stores each key the parser reads into an empty keyspace (see the module docstring)."""

    def __init__(self, ks, *, drop_expired: bool):
        self.ks = ks
        self.dbs = ks.dbs
        self.drop_before = now_ms() if drop_expired else None
        self.aux_fields: dict = {}
        self.codes: list = []
        self.loaded = 0
        self.expired = 0

    def aux(self, name: bytes, value: bytes) -> None:
        self.aux_fields[name] = value

    def key(self, db: int, key: bytes, value, expire_ms: int | None) -> None:
        if db >= len(self.dbs):
            raise RdbError(f"the file holds database {db} but the server has {len(self.dbs)} "
                           f"(raise 'databases')")
        if expire_ms is not None:
            if self.drop_before is not None and expire_ms <= self.drop_before:
                self.expired += 1
                return
            self.dbs[db].expires[key] = expire_ms
        self.dbs[db].data[key] = value
        self.loaded += 1

    def function(self, code: bytes) -> None:
        self.codes.append(code)

    def finish(self) -> dict:
        """After a complete parse: the libraries, the accounting; the counts."""
        if sum(len(db.data) for db in self.dbs) != self.loaded:
            # (Redis stops on a duplicated key too: the file is not one it wrote.)
            raise RdbError("a key appears twice in the file")
        scripting = getattr(self.ks, "scripting", None)
        if scripting is None and self.codes:
            raise RdbError("the file holds function libraries but this keyspace has no scripting")
        if scripting is not None and (self.codes or scripting.libraries):
            try:
                scripting.load_codes(self.codes)
            except Exception as e:  # a library that does not load here: the file is not loadable
                raise RdbError(f"function libraries do not load: {e}") from None
        self.ks.account_all()
        return {"aux": self.aux_fields, "keys": self.loaded, "expired": self.expired,
                "functions": len(self.codes)}


def _load(source, ks, drop_expired: bool, name: str) -> dict:
    if any(db.data for db in ks.dbs):
        raise ValueError("an RDB is loaded into an empty keyspace only")
    sink = KeyspaceSink(ks, drop_expired=drop_expired)
    try:
        if isinstance(source, str):
            parse_file(source, sink)
        else:
            parse(source, sink)
        return sink.finish()
    except RdbError as e:
        _empty(ks)
        raise RdbError(f"{name}: {e}") from None
    except OSError as e:
        _empty(ks)
        raise RdbError(f"{name}: cannot read: {e.strerror or e}") from None
    except BaseException:
        _empty(ks)
        raise


def _empty(ks) -> None:
    # Only this loader wrote into the dicts, behind the mutators' backs: no
    # watcher, dirty set or charge refers to what it put there.
    for db in ks.dbs:
        db.data.clear()
        db.expires.clear()
        db.ba_mem.clear()
    ks.mem_used = 0


def load_rdb_file(path: str, ks, *, drop_expired: bool) -> dict:
    """Fill the empty ``ks`` from the RDB file at ``path`` (see the module docstring)."""
    return _load(path, ks, drop_expired, path)


def load_rdb_bytes(buf, ks, *, drop_expired: bool, name: str = "RDB payload") -> dict:
    """Fill the empty ``ks`` from an RDB held in memory (a full sync's payload)."""
    return _load(buf, ks, drop_expired, name)


def import_dump(p) -> dict | None:
    """The dump.rdb migration path, from ``Persistence.load`` (see the module docstring)."""
    cp = p.checkpointer
    ks = p.ks
    if cp is None or cp.info() is not None or any(db.data for db in ks.dbs):
        return None
    if p.log is not None and p.log.end_offset > 0:
        return None
    path = os.path.join(p.dir, p.server.config["dbfilename"])
    if not os.path.isfile(path):
        return None
    t0 = time.time()
    stats = load_rdb_file(path, ks, drop_expired=True)
    p.loaded_keys = stats["keys"]  # INFO rdb_last_load_keys_loaded
    log.info("imported %s: %d keys (%d expired ones left out), %d function libraries in %.2f s",
             path, stats["keys"], stats["expired"], stats["functions"], time.time() - t0)
    cp.forget_captures()  # the keys went in behind the dirty sets: the checkpoint takes them all
    p.save()
    p.dirty_at_last_save = ks.dirty
    os.replace(path, path + IMPORTED_SUFFIX)
    log.info("checkpoint of the imported data written at offset %d; %s renamed to %s",
             p.checkpoint_offset, path, path + IMPORTED_SUFFIX)
    return stats
