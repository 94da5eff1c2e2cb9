"""The connection's slow path: requests parsed by ``server.resp.RequestParser``.

``server.protocol.Connection`` takes this mixin. Everything the hot path does
not run itself comes here: inline commands, requests cut across reads, an
unauthenticated client (Redis's smaller limits), a blocked client's later
requests, protocol errors. Replies are flushed every ``FLUSH_AT`` bytes; one
client's requests run for at most ``TURN_TIME`` before the loop serves the
others.
"""

from __future__ import annotations

import logging
import time

from server import dispatch
from server.resp import ProtocolError, RequestParser

log = logging.getLogger("keel.protocol")

FLUSH_AT = 256 * 1024
# The slow path runs one client's requests for at most TURN_TIME seconds
# (looking at the clock every SLICE requests), then lets the other clients in
# for a turn of the loop (Redis reads 16 KB of a client a turn): 300 000
# inline requests in one write stalled every other client 6 s. A read that
# takes less, whatever it holds, still runs in one turn (one fsync).
SLICE = 256
TURN_TIME = 0.05


# Commands whose replies depend on no key: when every command of a read is
# one of these and the connection holds no earlier reply, the replies leave
# at once even while others wait for the log or, in synchronous mode, for
# the replicas' acks. So PING and INFO (what Sentinel reads), PUBLISH (its
# hello messages, on the same link) and a replica's handshake are answered
# while the replicas are silent. (INFO's counters may include writes not yet
# acknowledged; no key's value can be read this way.)
REPLY_FREE = frozenset((b"ping", b"echo", b"info", b"role", b"replconf", b"psync", b"sync", b"hello",
                        b"auth", b"client", b"time", b"command", b"select", b"publish", b"quit",
                        b"lastsave"))


def needs_no_key(requests) -> bool:
    """Whether every request is one of REPLY_FREE."""
    for argv in requests:
        name = argv[0]
        if type(name) is not bytes or name.lower() not in REPLY_FREE:
            return False
    return True


class SlowPath:
    """The slow-path methods of ``server.protocol.Connection`` (its attributes)."""

    __slots__ = ()

    def _drain_pending(self) -> None:
        if not self.closed and not self.paused and self.pending:
            self._slow_received(b"")

    def _yield_turn(self) -> None:
        """Let the loop serve other clients before the rest of this one's buffer."""
        if not self.yielding:
            self.yielding = True
            self.transport.pause_reading()  # (libuv would read on, 32 reads in a row)
            self.server.loop.call_soon(self._resume_turn)

    def _resume_turn(self) -> None:
        self.yielding = False
        if self.closed or self.paused:
            return  # resume_writing takes it from here
        self.transport.resume_reading()
        self._drain_pending()

    def _slow_received(self, data: bytes) -> None:
        """Parse and run what ``data`` completes, with Redis's limits.

        Replies are flushed every ``FLUSH_AT`` bytes, and the loop stops as
        soon as the transport asks to pause: the unread rest of the buffer
        waits in ``pending`` until ``resume_writing``. A client that never
        reads its replies thus holds at most the write-buffer limit plus one
        read of requests, however many requests it pipelines.
        """
        client = self.client
        server = self.server
        config = server.config
        parser = self.parser
        if parser is None:
            parser = self.parser = RequestParser()
        parser.max_bulk = config["proto-max-bulk-len"]
        parser.authenticated = client.authenticated
        buf = self.pending
        if buf is None:
            buf = bytearray(data)
        else:
            buf += data
        if len(buf) > config["client-query-buffer-limit"]:
            # As Redis does: no reply, a log line, the connection closed.
            log.warning("Closing client that reached max query buffer length: id=%d addr=%s qbuf=%d",
                        client.id, client.addr, len(buf))
            self.pending = None
            self.close()
            return
        pos = 0
        out = self.outbox = []
        free = True  # every request so far is one of protocol.REPLY_FREE
        size = 0
        budget = SLICE
        started = time.monotonic()
        try:
            while pos < len(buf) and not self.paused and client.blocked is None:
                budget -= 1
                if not budget:
                    budget = SLICE
                    if time.monotonic() - started > TURN_TIME:
                        self._yield_turn()
                        break
                argv, pos2 = parser.parse(buf, pos)
                if argv is None:
                    if parser.more:  # a huge request, read in part: the rest next turn
                        self._yield_turn()
                    break
                pos = pos2
                if argv:
                    if free:
                        name = argv[0]
                        free = type(name) is bytes and name.lower() in REPLY_FREE
                    r = dispatch.call(client, argv)
                    if r is not None:
                        out.append(r)
                        size += len(r)
                    if self.closed or client.close_after_reply:
                        break
                    parser.authenticated = client.authenticated
                    if size > FLUSH_AT:
                        self.outbox = None
                        self._write(out)
                        out = self.outbox = []
                        size = 0
        except ProtocolError as e:
            self.outbox = None
            out.append(e.reply)
            self._protocol_close(out)
            return
        self.outbox = None
        if self.closed or client.close_after_reply:
            self.pending = None
            if out:
                self._write(out)
            elif not self.holding:
                self.close()
            return
        del buf[:pos]
        # An unauthenticated client stays on the slow path (see connection_made),
        # and so does a blocked one: what it sends waits there until it is served.
        self.pending = buf if buf or not client.authenticated or client.blocked is not None else None
        if out:
            self._write(out, free=free)

    def _protocol_close(self, out: list) -> None:
        self.server.stats.protocol_errors += 1
        self.pending = None
        self.client.close_after_reply = True
        self._write(out)
