"""A script past ``busy-reply-threshold``: the others get -BUSY, not silence.

Why the script stays on the loop thread: handing every script to a worker
thread costs a thread hand-off each way, measured at ~53 us a call here
(lupa releases the GIL while Lua runs, but the two wake-ups remain), against
~10 us for a whole EVALSHA of one SET on the loop: scripts would run at a
fraction of Redis's rate. So a script runs where every command runs, and
only a script that runs long pays for the others' answers.

How: the Lua count hook calls ``tick`` every ``HOOK_EVERY`` instructions.
Once the script has run past the threshold, ``tick`` polls (``select.poll``,
no wait) the sockets of every other client and the listening sockets, reads
what is ready and feeds it to each connection's own ``data_received``.
While a script is busy every client is gated onto the full dispatch, which
answers ``-BUSY`` to any command not flagged ``allow_busy`` (and to SHUTDOWN
without NOSAVE); SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE, AUTH, HELLO,
CLIENT … run. Nothing that runs then touches the keyspace, so the script is
still the only writer. The event loop itself is not re-entered: uvloop's
readers for those sockets are simply not running while the loop thread is
inside the script, and what is read here is gone from the socket when the
loop polls it again. Connections accepted meanwhile are served through a
small blocking transport and handed to the loop when the script ends.

Around each poll the running script's pending effects are set aside (a
reply to another client must not journal half a script), and replies are
not held for the log: a -BUSY depends on no write. A client that still has
replies waiting for the log gets its -BUSY after them, in order.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time

from engine import errors
from server import tls

log = logging.getLogger("keel.scripting")

_READ = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


class _BlockingTransport:
    """What a connection accepted during a busy script writes through until the
    loop adopts it (``Busy.leave``)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.closing = False

    def write(self, data: bytes) -> None:
        if not self.closing:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closing = True

    def get_extra_info(self, name, default=None):
        if name == "socket":
            return self.sock
        if name == "peername":
            return self.sock.getpeername()
        if name == "sockname":
            return self.sock.getsockname()
        return default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close


class Busy:
    def __init__(self, server, scripting):
        self.server = server
        self.scripting = scripting
        server.busy_run = None  # the ScriptRun past the threshold (dispatch's gate)
        self.threshold = server.config["busy-reply-threshold"] / 1000
        server.config.listeners.append(self._config_changed)
        self.listening: list[socket.socket] = []
        self.accepted: list = []  # (Connection, socket) accepted while busy
        self.done: set[int] = set()  # fds that reached EOF while busy

    def _config_changed(self, name: str, value) -> None:
        if name == "busy-reply-threshold":
            self.threshold = value / 1000

    def tick(self, run) -> None:
        if not run.busy:
            if time.monotonic() - run.started < self.threshold:
                return
            self.enter(run)
        self.poll(run)
        if self.server.shutdown_event is not None and self.server.shutdown_event.is_set():
            run.killed = errors.SCRIPT_SHUTDOWN

    def enter(self, run) -> None:
        server = self.server
        run.busy = True
        server.busy_run = run
        log.warning("Slow script detected: still in execution after %d milliseconds. "
                    "You can try killing the script using the %s KILL command.",
                    int((time.monotonic() - run.started) * 1000), run.kind.upper())
        for c in server.clients.values():
            c.gated = True
            c.gated_fast = None  # every command meets the -BUSY check
        for srv in getattr(server, "listeners", ()):
            for s in srv.sockets or ():
                dup = socket.socket(fileno=os.dup(s.fileno()))
                dup.setblocking(False)
                self.listening.append(dup)

    def leave(self, run) -> None:
        server = self.server
        server.busy_run = None
        for c in server.clients.values():
            c.regate()
        for s in self.listening:
            s.close()
        self.listening = []
        self.done.clear()
        accepted, self.accepted = self.accepted, []
        for conn, sock in accepted:
            if conn.closed:
                sock.close()
                continue
            sock.setblocking(False)
            server.loop.create_task(server.loop.connect_accepted_socket(lambda conn=conn: conn, sock))

    def poll(self, run) -> None:
        server = self.server
        persistence = server.persistence
        effects = self.scripting.ks.effects
        stash = effects[:]
        effects.clear()
        held = persistence.must_hold
        persistence.must_hold = False
        try:
            self._serve(run, server)
        finally:
            persistence.must_hold = held or persistence.must_hold
            effects[:0] = stash

    def _serve(self, run, server) -> None:
        by_fd = {}
        for c in list(server.clients.values()):
            conn = c.conn
            if c is run.client or conn is None or conn.closed or c.fd < 0 or c.fd in self.done:
                continue
            if tls.is_tls(conn.transport):
                continue  # its socket carries TLS records: it waits for the script's end (server.tls)
            by_fd[c.fd] = conn
        listening = {s.fileno(): s for s in self.listening}
        p = select.poll()
        for fd in by_fd:
            p.register(fd, _READ)
        for fd in listening:
            p.register(fd, select.POLLIN)
        for fd, _ in p.poll(0):
            if fd in listening:
                self._accept(listening[fd])
                continue
            conn = by_fd[fd]
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self.done.add(fd)  # the loop sees the EOF itself once the script ends
                continue
            conn.data_received(data)

    def _accept(self, listener: socket.socket) -> None:
        from server.protocol import Connection

        try:
            sock, _ = listener.accept()
        except OSError:
            return
        sock.setblocking(True)
        sock.settimeout(5.0)
        conn = Connection(self.server)
        conn.connection_made(_BlockingTransport(sock))
        self.accepted.append((conn, sock))
        if conn.client is not None:
            conn.client.gated = True  # its requests are read here too, until the loop adopts it
            conn.client.gated_fast = None
