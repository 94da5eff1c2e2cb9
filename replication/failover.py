"""FAILOVER: hand the primary role to a replica with no acknowledged write lost.

``FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | ABORT``, as Redis 6.2+:

1. *waiting-for-sync*: writes are paused (CLIENT PAUSE WRITE's machinery:
   writers are held, not refused) and the primary waits until the target
   (with TO), or any replica, has acknowledged its whole offset. Past the
   timeout it gives up and resumes as primary, unless FORCE was given (then
   it goes on with the target as it is).
2. *failover-in-progress*: the primary becomes a replica of that replica and
   asks ``PSYNC <replid> <offset+1> FAILOVER``: the replica, seeing its own
   primary's history at its own offset, promotes itself and answers
   ``+CONTINUE`` with its new id. The held writers then get ``-READONLY``
   (this server is a replica now), as with Redis.

Every write acknowledged before the pause is on the target (step 1), and no
write is acknowledged during it, so none is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time

from engine import errors
from engine.errors import CommandError
from engine.reply import OK
from engine.util import to_int_or_none

log = logging.getLogger("keel.replication")

PAUSE_MS = 1 << 40  # ended by the failover itself


class Failover:
    def __init__(self, repl, target, force: bool, timeout_ms: int, write_mode: int, pause):
        self.repl = repl
        self.pause = pause  # the server's CLIENT PAUSE state (server.pause)
        self.target = target  # (host, port) or None
        self.force = force
        self.timeout_ms = timeout_ms
        self.write_mode = write_mode
        self.aborted = False
        self.ended = False
        self.task = None

    def _peer_for(self, target):
        for p in self.repl.primary.peers:
            if not p.closed and p.state == "online" and (target is None or (p.ip, p.port) == target):
                return p
        return None

    async def run(self) -> None:
        try:
            await self._run()
        except Exception:
            log.exception("FAILOVER failed")

    async def _run(self) -> None:
        repl = self.repl
        server = repl.server
        repl.failover_state = "waiting-for-sync"
        self.pause.pause(self.write_mode, PAUSE_MS)
        try:
            server.persistence._append_batch()
            want = repl.offset
            deadline = time.time() + self.timeout_ms / 1000.0 if self.timeout_ms else 0.0
            chosen = None
            last_getack = 0.0
            while chosen is None:
                if self.aborted:
                    log.info("FAILOVER aborted")
                    return
                for p in repl.primary.peers:
                    if (not p.closed and p.state == "online" and p.ack >= want
                            and (self.target is None or (p.ip, p.port) == self.target)):
                        chosen = p
                        break
                if chosen is not None:
                    break
                now = time.time()
                if deadline and now >= deadline:
                    if self.force and self.target is not None:
                        chosen = self._peer_for(self.target)
                        if chosen is None:
                            log.warning("FAILOVER: the target is gone, staying primary")
                            return
                        break
                    log.warning("FAILOVER timed out waiting for a replica to reach offset %d: staying primary",
                                want)
                    return
                if now - last_getack > 0.1:
                    last_getack = now
                    repl.waits._getack()
                await asyncio.sleep(0.005)
            repl.failover_state = "failover-in-progress"
            log.info("FAILOVER to %s:%d at offset %d", chosen.ip, chosen.port, want)
            repl.become_replica(chosen.ip, chosen.port, failover=True)
            link = repl.link
            end = time.time() + max(self.timeout_ms / 1000.0, 10.0)
            while not link.up and time.time() < end and not link.stopped and not self.ended:
                await asyncio.sleep(0.01)
            if not link.up:
                log.warning("FAILOVER: %s:%d did not take over in time; this server stays its replica",
                            chosen.ip, chosen.port)
        finally:
            self.end()

    def end(self) -> None:
        """The failover is over (the link to the new primary is up, or it gave
        up): writes resume (as a replica's, they get -READONLY)."""
        if self.ended:
            return
        self.ended = True
        repl = self.repl
        repl.failover_state = "no-failover"
        repl.failover = None
        self.pause.unpause()


def parse_and_start(c, argv, write_mode: int, pause):
    """FAILOVER's arguments as Redis 7.0 reads them: TO host port, TIMEOUT ms
    and FORCE in any order, each once; ABORT only alone."""
    repl = c.server.repl
    target = None
    force = abort = False
    timeout_ms = 0
    i = 1
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"to" and target is None and i + 2 < n:
            port = to_int_or_none(argv[i + 2])
            if port is None:
                raise CommandError(errors.NOT_INTEGER)
            target = (argv[i + 1].decode("utf-8", "replace"), port)
            i += 3
        elif opt == b"timeout" and i + 1 < n and not timeout_ms:
            t = to_int_or_none(argv[i + 1])
            if t is None:
                raise CommandError(errors.NOT_INTEGER)
            if t <= 0:
                raise CommandError("ERR FAILOVER timeout must be greater than 0")
            timeout_ms = t
            i += 2
        elif opt == b"force" and not force:
            force = True
            i += 1
        elif opt == b"abort" and n == 2:
            abort = True
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
    if abort:
        if repl.failover is None:
            raise CommandError("ERR No failover in progress.")
        repl.failover.aborted = True
        return OK
    if repl.role == "slave":
        raise CommandError("ERR FAILOVER is not valid when server is a replica.")
    if not any(not p.closed and p.state == "online" for p in repl.primary.peers):
        raise CommandError("ERR FAILOVER requires connected replicas.")
    if repl.failover is not None:
        raise CommandError("ERR FAILOVER already in progress.")
    if force and (target is None or not timeout_ms):
        raise CommandError("ERR FAILOVER with force option requires both a timeout and target HOST and IP.")
    f = Failover(repl, target, force, timeout_ms, write_mode, pause)
    if target is not None and f._peer_for(target) is None:
        raise CommandError("ERR FAILOVER target HOST and PORT is not a replica.")
    repl.failover = f
    f.task = asyncio.ensure_future(f.run())
    return OK
