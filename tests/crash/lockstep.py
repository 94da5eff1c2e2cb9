"""The lock-step writer the crash tests share: several connections per
thread, a request on each, then each reply, so one event-loop turn of the
server serves many clients at once."""

from __future__ import annotations

import threading

from tests.support import RespClient, encode


class LockStep(threading.Thread):
    """One request on every connection, then every reply, until all connections drop.

    Subclasses say what to send (``request``: an op, encoded by ``wire``, a
    RESP array by default; ``replies``: how many replies one op gets) and
    whether its last reply acknowledged it (``acknowledged``).
    """

    replies = 1

    def __init__(self, port: int, wid: int, rnd: int, nconns: int):
        super().__init__(daemon=True)
        self.port, self.wid, self.rnd, self.nconns = port, wid, rnd, nconns
        self.in_flight = 0  # requests sent whose reply never came

    def request(self, conn: int, seq: int) -> tuple:
        raise NotImplementedError

    def acknowledged(self, op: tuple, reply) -> bool:
        raise NotImplementedError

    def wire(self, op) -> bytes:
        return encode(op)

    def run(self) -> None:
        conns = []
        try:
            for _ in range(self.nconns):
                conns.append(RespClient(self.port, timeout=5.0))
        except OSError:
            pass
        seq = 0
        try:
            while conns:
                seq += 1
                sent = []
                for i, c in enumerate(conns):
                    op = self.request(i, seq)
                    try:
                        c.send_raw(self.wire(op))
                    except OSError:
                        continue
                    sent.append((c, op))
                alive = []
                for c, op in sent:
                    try:
                        for _ in range(self.replies):
                            r = c.read()
                    except (OSError, ConnectionError):
                        self.in_flight += 1
                        continue
                    if self.acknowledged(op, r):
                        alive.append(c)
                for c in conns:
                    if c not in alive:
                        c.close()
                conns = alive
        finally:
            for c in conns:
                c.close()
