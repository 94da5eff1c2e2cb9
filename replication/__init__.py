"""Replication: a primary streams its log to replicas, which take over when it fails.

Wire-compatible with Redis (PSYNC2): a replica connects, says ``REPLCONF
listening-port`` and ``capa eof psync2``, asks ``PSYNC replid offset`` and
gets ``+CONTINUE`` (the bytes after ``offset`` follow) or ``+FULLRESYNC
replid offset`` (an RDB of the dataset at ``offset``, then the bytes after
it). Offsets are Redis's: a server at offset N has applied the stream's first
N bytes, and Keel's log offsets count the same bytes (``wal``), so

* **the log is the backlog**: a replica at offset N resumes from the
  segments still on disk, however far behind (``primary.Primary``);
* **a replica journals what it applies** into its own log, byte for byte, so
  it is durable by itself, restarts with ``+CONTINUE``, and can be promoted
  at any moment (``replica.Link``);
* **promotion** keeps the history and switches replication id; the old id
  stays as ``replid2`` up to ``second_repl_offset``, so the other replicas
  continue from the new primary without a full sync.

Modules: ``primary`` (the replicas of this server: PSYNC, full sync, the live
feed, acks, the output limit), ``replica`` (this server's link to its
primary: handshake, load, apply), ``waits`` (WAIT, WAITAOF and the
synchronous mode ``min-replicas-to-ack``), ``state`` (the replication id
kept across restarts). The commands are in ``server.commands.replication``.

This package never touches a value: a replica applies the stream through
the engine's own command handlers, as recovery does.
"""

from __future__ import annotations

import logging
import os
import re
import time

from replication import state as state_mod
from replication.primary import Primary
from replication.waits import Waits

log = logging.getLogger("keel.replication")


def new_replid() -> str:
    return os.urandom(20).hex()


_TEMP = re.compile(r"temp-(sync-)?\d+(-\d+)?\.rdb$")


def remove_stale_temp_files(directory: str) -> None:
    """RDB files a killed process left half-written (a replica's download, a
    primary's full-sync file): nothing reads them again."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if _TEMP.match(name):
            try:
                os.unlink(os.path.join(directory, name))
                log.info("removed %s, left by a process that stopped during a full sync", name)
            except OSError:
                pass


class Replication:
    """The server's replication state: its role, ids and both sides' links."""

    def __init__(self, server):
        self.server = server
        cfg = server.config
        self.role = "master"
        self.master_host = None
        self.master_port = None
        self.link = None  # replica.Link while this server replicates from a primary
        st = state_mod.load(cfg["dir"])
        self.replid = st.get("replid") or new_replid()
        self.replid2 = st.get("replid2") or "0" * 40
        self.second_offset = st.get("second_offset", -1)  # Redis's second_repl_offset (1-based)
        remove_stale_temp_files(cfg["dir"])
        self.primary = Primary(self)
        self.waits = Waits(self)
        self.failover_state = "no-failover"
        self.failover = None  # replication.failover.Failover while FAILOVER runs
        self.last_cron = time.time()
        self.ckpt_db = st.get("ckpt_db", -1)
        # A full sync was loading, or its checkpoint not yet written, when the
        # server stopped: what is on disk is no history of any primary's.
        self.syncing = bool(st.get("syncing"))
        self.stream_db = self.ckpt_db  # the stream's database at the end of the log
        if not st.get("replid"):
            # Kept from the first start on, so that a restarted primary's
            # replicas continue (+CONTINUE) instead of syncing in full: they
            # were fed only what this server's log had written (a process crash
            # takes none of it back; a power loss under everysec or no could).
            self.save_state()

    # -- offsets ---------------------------------------------------------------
    @property
    def offset(self) -> int:
        """master_repl_offset: the bytes of the stream this server holds."""
        p = self.server.persistence
        if p.log is None:
            return 0
        return p.log.end_offset + sum(map(len, p.batch))

    def save_state(self) -> None:
        state_mod.save(self.server.config["dir"], {
            "replid": self.replid, "replid2": self.replid2, "second_offset": self.second_offset,
            "ckpt_db": self.ckpt_db, "syncing": self.syncing})

    def checkpoint_done(self, offset: int, db: int) -> None:
        """A checkpoint at ``offset``: the stream's database there, for a replay
        that starts at it (a replica's stream names its database only when it
        changes; a primary's next record names it anyway)."""
        if db != self.ckpt_db:
            self.ckpt_db = db
            self.save_state()

    # -- roles -------------------------------------------------------------------
    def become_replica(self, host: str, port: int, failover: bool = False) -> None:
        """REPLICAOF host port: drop the current link (and primary duties), connect."""
        from replication.replica import Link

        if self.link is not None:
            self.link.stop()
            self.link = None
        was_master = self.role == "master"
        self.role = "slave"
        self.master_host, self.master_port = host, port
        self.server.ks.expire_on_lookup = False  # a replica waits for its primary's DEL
        self.primary.drop_all()  # replicas of a replica reconnect (and follow the new history)
        self.server.full_dispatch("replica", True)
        self.waits.role_changed()
        if was_master:
            log.info("connecting to primary %s:%d", host, port)
        self.link = Link(self, host, port)
        self.link.failover = failover  # PSYNC … FAILOVER: the primary hands over (replication.failover)
        self.link.start()

    def become_primary(self) -> None:
        """REPLICAOF NO ONE: keep the data and the history, start a new id."""
        if self.link is not None:
            self.link.stop()
            self.link = None
        if self.role == "master":
            return
        self.role = "master"
        self.master_host = self.master_port = None
        self.shift_replid()
        self.server.ks.expire_on_lookup = True
        self.server.full_dispatch("replica", False)
        self.primary.drop_all()  # sub-replicas PSYNC again: +CONTINUE with the new id
        self.waits.role_changed()
        log.info("promoted to primary: new replication id %s, old %s up to offset %d",
                 self.replid, self.replid2, self.second_offset - 1)

    def shift_replid(self) -> None:
        """A new history starts here: the old id stays valid up to this offset."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.replid = new_replid()
        self.save_state()

    def read_only_for(self, client) -> bool:
        """Whether this is a read-only replica to ``client`` (its primary's client may write)."""
        return (self.role == "slave" and self.server.config["replica-read-only"]
                and not getattr(client, "is_master", False))

    def refuses_write(self, client, stat) -> bool:
        """-READONLY: a write from an ordinary client of a read-only replica."""
        return "write" in stat.flags and self.read_only_for(client)

    def stale(self) -> bool:
        """A replica whose link is not up, with replica-serve-stale-data no."""
        return (self.role == "slave" and not self.server.config["replica-serve-stale-data"]
                and (self.link is None or not self.link.up))

    # -- the cron (once a second) -----------------------------------------------------
    def cron(self) -> None:
        """From the server's cron (``hz`` times a second): pings, acks and
        timeouts once a second, the -NOREPLICAS gate every tick."""
        now = time.time()
        if now - self.last_cron >= 1.0:
            self.last_cron = now
            self.primary.cron()
            if self.link is not None:
                self.link.cron()
        self.waits.cron()

    def close(self) -> None:
        if self.link is not None:
            self.link.stop()
            self.link = None
        self.primary.drop_all()

    # -- INFO replication, ROLE --------------------------------------------------------
    def info(self) -> list:
        server = self.server
        cfg = server.config
        fields = [("role", self.role)]
        link = self.link
        if self.role == "slave":
            up = link is not None and link.up
            now = time.time()
            fields += [
                ("master_host", self.master_host),
                ("master_port", self.master_port),
                ("master_link_status", "up" if up else "down"),
                ("master_last_io_seconds_ago", int(now - link.last_io) if link and link.last_io else -1),
                ("master_sync_in_progress", int(bool(link and link.syncing))),
                ("slave_read_repl_offset", self.offset),
                ("slave_repl_offset", self.offset),
            ]
            if link is not None and link.syncing:
                total = link.sync_total
                read = link.sync_read
                fields += [
                    ("master_sync_total_bytes", total),
                    ("master_sync_read_bytes", read),
                    ("master_sync_left_bytes", max(total - read, 0) if total >= 0 else -1),
                    ("master_sync_perc", "%.2f" % (100.0 * read / total if total > 0 else 0.0)),
                    ("master_sync_last_io_seconds_ago", int(now - link.last_io) if link.last_io else -1),
                ]
            if not up:
                since = link.down_since if link is not None else now
                fields.append(("master_link_down_since_seconds", int(now - since) if since else -1))
            fields += [
                ("slave_priority", cfg["replica-priority"]),
                ("slave_read_only", int(cfg["replica-read-only"])),
                ("replica_announced", int(cfg["replica-announced"])),
            ]
        reps = self.primary.info_lines()
        fields.append(("connected_slaves", len(reps)))
        if cfg["min-replicas-to-write"] and cfg["min-replicas-max-lag"]:
            fields.append(("min_slaves_good_slaves", self.primary.good_replicas()))
        fields += reps
        lg = server.persistence.log
        off = self.offset
        first = lg.start_offset + 1 if lg is not None else 0
        fields += [
            ("master_failover_state", self.failover_state),
            ("master_replid", self.replid),
            ("master_replid2", self.replid2),
            ("master_repl_offset", off),
            ("second_repl_offset", self.second_offset),
            ("repl_backlog_active", int(lg is not None)),
            ("repl_backlog_size", cfg["repl-backlog-size"]),
            ("repl_backlog_first_byte_offset", first),
            ("repl_backlog_histlen", off - first + 1 if lg is not None else 0),
        ]
        return fields

    def role_reply(self) -> list:
        if self.role == "master":
            return [b"master", self.offset, self.primary.role_entries()]
        link = self.link
        if link is None or link.state == "connect":
            st = b"connect"
        else:
            st = link.state.encode()
        return [b"slave", self.master_host.encode(), self.master_port, st,
                self.offset if link is not None and link.up else -1]
