"""The hot path: bytes in, commands run, replies out — one write per batch.

``Connection.data_received`` feeds the read into a ``hiredis.Reader``, runs
every complete command in it, and writes all their replies with a single
``transport.write``. That is the fast path, and it is taken whenever a read
starts at a request boundary with ``*`` (what every client library sends).

Everything else goes through ``_slow_received`` (``server.protocol_slow``) and ``server.resp.RequestParser``:
inline commands (``PING\\r\\n`` from telnet), a request cut across reads, and
any request hiredis rejects. The slow path knows where each request starts,
so it can refuse an over-long bulk length the moment its header arrives and
name the exact protocol error in Redis's words. A protocol error answers,
then closes *this* connection only.

Per read the fast path tests ``client.gated`` once (auth, CLIENT REPLY,
loading: all folded into one flag); per command it does one lookup in the
fast table (indexed by argument count, so it checks the arity too), proves
the arguments bulk strings for commands that store or echo them, calls the
handler and encodes the reply (``Raw`` and ``bytes`` inline). Errors raised
by handlers are ``CommandError``s; anything else is a bug, answered with
``-ERR`` and logged, never a dropped connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from itertools import repeat

import hiredis

from engine import errors
from engine.errors import CommandError
from engine.registry import FAST
from engine.reply import Raw
from server import dispatch, tls
from server.protocol_slow import SlowPath, needs_no_key
from server.resp import ProtocolError, requests_length

log = logging.getLogger("keel.protocol")

# Pause reading a client whose unsent replies exceed OUTPUT_HIGH bytes; resume
# below OUTPUT_LOW (the slow path, server.protocol_slow, flushes its replies
# every FLUSH_AT bytes to notice the pause); the hot path hands a batch to it
# after any reply bigger than BIG_REPLY.
OUTPUT_HIGH = 64 * 1024 * 1024
OUTPUT_LOW = 16 * 1024 * 1024
BIG_REPLY = 64 * 1024


def _before(cmds: list, argv: list) -> list:
    """The requests of ``cmds`` before ``argv`` (found by identity)."""
    for i, a in enumerate(cmds):
        if a is argv:
            return cmds[:i]
    return cmds


def _inside(data: bytes, cmds: list) -> bool:
    """True if the requests ``cmds`` (as hiredis returned them) end within ``data``."""
    try:
        requests_length(data, cmds)
    except ProtocolError:
        return False
    return True


def _through(cmds: list, argv: list) -> list:
    """The requests of ``cmds`` up to and including ``argv``."""
    return cmds[:len(_before(cmds, argv)) + 1]


def _bulk_strings(argv) -> bool:
    """True unless a request array holds something other than bulk strings."""
    # In C (map over isinstance): hiredis gives bytes, ints, lists, None.
    return type(argv) is list and all(map(isinstance, argv, repeat(bytes)))


# The fast table of a read that must take the full dispatch: rows that hold
# nothing, so the lookup misses without raising.
_NO_FAST: list = [{} for _ in FAST]

# hiredis allocates a request's whole argument list when it reads the header
# (`*`, and the RESP3 aggregates `~`, `>` and `|` alike),
# and freeing a list of 2**31 empty slots stalls the loop for seconds: a read
# that may hold a header announcing 10**7 or more arguments takes the slow
# path, whose parser allocates nothing ahead (a false match in a value only
# costs that read the slow path). A read with one request (see
# ``data_received``) holds no other header and is not searched.
_huge_count = re.compile(rb"\*[0-9]{8}").search  # a literal first byte: a fast scan
_huge_resp3 = re.compile(rb"[~>|][0-9]{8}").search  # a class: a slow one, run when needed

# Where a read ends, hiredis may be part-way through a request even with its
# buffer empty (the read ended just after ``*3\r\n``, or after a whole
# argument). A read with one header ends on a boundary exactly when hiredis
# returned one request and kept nothing. A read that may hold several
# requests is fed with a probe behind it: a one-argument
# request whose argument is random, drawn when the process starts. If the
# read ended on a request boundary, the last thing hiredis returns is the
# probe itself; otherwise the probe's bytes were swallowed by the unfinished
# request, the reader is discarded, and the slow path re-parses from the
# start of the last request hiredis returned (which the probe may have
# completed with its own bytes, so it never runs from the fast path).
_PROBE_ARG = os.urandom(16).hex().encode()
_PROBE = b"*1\r\n$32\r\n" + _PROBE_ARG + b"\r\n"
_PROBE_ARGV = [_PROBE_ARG]

# INFO commandstats times a sample of calls (the hot path reads no clock):
# every tick of the ops/sec sampler asks for the first command of the next
# SAMPLE_READS reads to take the full dispatch, which times it.
SAMPLE_READS = 32
_sample = 0


def sample_calls() -> None:
    global _sample
    _sample = SAMPLE_READS


class Connection(SlowPath, asyncio.Protocol):
    __slots__ = ("server", "transport", "reader", "client", "pending", "parser", "paused", "closed",
                 "holding", "held", "outbox", "pushed", "yielding", "acks_pending")

    def __init__(self, server):
        self.server = server
        self.transport = None
        self.reader = hiredis.Reader()
        self.client = None
        self.pending = None  # bytearray of an incomplete request (slow path), or None
        self.parser = None
        self.paused = False
        self.yielding = False  # the slow path left the loop to others (SLICE)
        self.closed = False
        self.holding = False  # replies wait for the log (see Persistence.must_hold)
        self.held: list = []
        self.acks_pending = 0  # of its replies, how many wait for replicas' acks (replication.waits)
        # While this connection runs a batch, the list its replies collect in:
        # a message pushed to it meanwhile (``push``) takes its place among them.
        self.outbox = None
        # Messages pushed outside its batch, written together at the end of
        # the loop's turn (``push``), or before a reply if one comes first.
        self.pushed = None

    # -- connection lifecycle ----------------------------------------------
    def connection_made(self, transport) -> None:
        if self.client is not None:
            # Accepted while a script was busy (server.scripting.busy): the
            # loop adopts it now, client state and unread requests kept.
            self.transport = transport
            transport.set_write_buffer_limits(*self.server.client_limits.water)
            return
        self.transport = transport
        server = self.server
        if len(server.clients) >= server.config["maxclients"]:
            server.stats.rejected_connections += 1
            transport.write(b"-" + errors.MAX_CLIENTS.encode() + b"\r\n")
            transport.close()
            self.closed = True
            return
        if server.config["protected-mode"] and tls.refuse_unprotected(server, transport):
            self.closed = True
            return
        self.client = server.new_client(self, transport)
        # (The marks sit at client-output-buffer-limit normal's lowest limit:
        # pause_writing checks the limits, server.client_limits.)
        transport.set_write_buffer_limits(*server.client_limits.water)
        if not self.client.authenticated:
            # Until AUTH, requests take the slow path, which applies Redis's
            # smaller limits for unauthenticated clients.
            self.pending = bytearray()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.client is not None:
            if self.client.blocked is not None:
                self.server.blocking.forget(self.client)
            self.server.remove_client(self.client)
            self.client.conn = None

    def eof_received(self):
        # The client shut its sending side (`printf 'SET a b\r\n' | nc -N`):
        # replies still waiting for the log go out first, as Redis sends
        # them, and release() closes after them. A blocked client is dropped
        # (Redis frees it on EOF); anything else closes once its buffer drains.
        client = self.client
        if self.holding and client is not None and client.blocked is None:
            client.close_after_reply = True
            return True  # keep the write side open until release()
        return None

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests
        # until the output drains, so its output buffer cannot grow unbounded.
        if self.server.client_limits.over(self):
            return  # past a limit: disconnected
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()
            if self.pending:
                # Requests read before the pause are still waiting: run them
                # from the loop, not from inside the transport's callback.
                self.server.loop.call_soon(self._drain_pending)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Close now, dropping what is still unsent (a subscriber past its
        output limit: a graceful close would wait for it to read)."""
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def pending_len(self) -> int:
        return len(self.pending) if self.pending is not None else 0

    def output_len(self) -> int:
        t = self.transport
        return t.get_write_buffer_size() if t is not None and not self.closed else 0

    # -- the hot path --------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        global _sample
        client = self.client
        if client is None or self.closed or client.close_after_reply:
            return
        client.active = True
        if self.pending is not None or data[0] != 42:
            self._slow_received(data)
            return
        reader = self.reader
        # Most reads hold one request: the read's only `*` is its header
        # (rpartition's head is empty), which announces fewer than ten
        # arguments, and no byte could start a RESP3 aggregate that hiredis
        # reads as an array (`~` set, `>` push, `|` attribute).
        try:
            several = (data[2] != 13 or data.rpartition(b"*")[0]
                       or 126 in data or 62 in data or 124 in data)
        except IndexError:
            several = True
        if several:
            if _huge_count(data) is not None or (
                    (126 in data or 62 in data or 124 in data) and _huge_resp3(data) is not None):
                self._slow_received(data)
                return
            reader.feed(data + _PROBE)
            cmds = []
            push = cmds.append
            try:
                while True:
                    argv = reader.gets()
                    if argv is False:
                        break
                    push(argv)
            except Exception:  # noqa: BLE001 - hiredis also raises TypeError (a map keyed by an array)
                push(None)  # not a request: the slow path names the error
            if cmds and cmds[-1] == _PROBE_ARGV:
                cmds.pop()
                whole = True
            else:
                # The read ends inside a request (or hiredis refused something):
                # the last request hiredis returned may hold the probe's bytes.
                if cmds and cmds[-1] is None:
                    cmds.pop()
                if cmds:
                    cmds.pop()
                # The probe's bytes may have finished more than that request:
                # `…$4\r\nab` + `*1\r\n$32…` reads as an argument "ab*1", the
                # rest of the probe as one more value. Only requests lying
                # wholly inside the read may run.
                while cmds and not _inside(data, cmds):
                    cmds.pop()
                whole = False
            # hiredis reads `+OK`, `(12`, `=7\r\ntxt:abc` and `#t` as arguments
            # too (bytes, or a bool a read command may not trip over), where
            # Redis names a protocol error: every bulk argument has its `$`
            # header, so fewer `$` bytes than arguments proves a foreign
            # element. (A `$` inside a payload can hide one: a leniency, never
            # a wrong parse, since hiredis found the element's bounds.)
            try:
                n = sum(map(len, cmds))  # (a top-level bytes value over-counts: the slow path is right too)
            except TypeError:
                n = 0  # a None or an int: the loop below hands it to the slow path
            # Likewise every request starts with `*`: hiredis also returns a
            # top-level `~` set, `>` push or `|` attribute as a list, where
            # Redis reads an inline command ("~1").
            # A null bulk (`$-1`, `$-2`…) where an argument belongs is a
            # protocol error in Redis; hiredis reads it as None, which a read
            # command would take for a missing key: the slow path names it.
            if data.count(b"$") < n or data.count(b"*") < len(cmds) or b"$-" in data:
                self._to_slow_path([], [], data)  # nothing ran: the slow path names the error
                return
        else:
            # One header: the read ends on a boundary exactly when hiredis
            # returns one request and keeps nothing.
            reader.feed(data)
            try:
                argv = reader.gets()
            except Exception:  # noqa: BLE001 - not only ProtocolError: `%1\r\n*1\r\n…` is a TypeError
                argv = None
            if type(argv) is not list or reader.has_data() or data.count(b"$") < len(argv) or None in argv:
                # (Fewer `$` than arguments: a `+OK` or `#t` element; None: a
                # null bulk; see above.)
                self._to_slow_path([], [], data)  # nothing ran: re-parse it all
                return
            # The common case in full, without the batch's lists: a known
            # command (fewer than ten arguments, so FAST has its row), an
            # ungated client, a reply that is a constant or a short string.
            if argv and not client.gated and not _sample:
                try:
                    entry = FAST[len(argv)].get(argv[0])
                except TypeError:  # `*1\r\n%1\r\n…`: a map as the command name
                    entry = None
                if entry is not None and not entry[1]:
                    cmd = entry[2]
                    try:
                        r = entry[0](client, argv)
                    except CommandError as e:
                        r = Raw(dispatch.failed(self.server, cmd, e))  # counts the call
                    except Exception as e:
                        if not _bulk_strings(argv):
                            self._to_slow_path([], [], data)
                            return
                        r = Raw(dispatch.crashed(self.server, cmd, argv, e))
                    else:
                        cmd.calls += 1
                    t = type(r)
                    if t is bytes:
                        r = b"$%d\r\n%s\r\n" % (len(r), r)
                    elif t is not Raw:
                        r = client.encode(r)
                    # (The tail below repeats the batch path's, after its loop:
                    # a shared method cost this read 1.7k instructions, 12%.)
                    if self.closed or client.close_after_reply:
                        client.close_after_reply = True
                        if not self.closed:
                            self._write([r])  # closes once the reply is out
                        elif not self.holding:
                            self.close()
                        return
                    if len(r) > BIG_REPLY:  # let the slow path meter what follows
                        self._to_slow_path([argv], [r], data)
                        return
                    persistence = self.server.persistence
                    effects = client.ks.effects
                    if effects and self.server.blocking.ready:  # a change wakes blocked clients
                        self.server.blocking.serve()
                    if self.holding or persistence.must_hold or (effects and persistence.holds_replies):
                        self._write([r], data, [argv])
                        return
                    if effects:  # no log: nothing to journal
                        effects.clear()
                    if self.pushed is not None:
                        r = self._take_pushed() + r
                    self.transport.write(r)
                    return
            cmds = [argv]
            whole = True
        # A gated client, and the first command of a sampled read (INFO
        # commandstats times it), take the full dispatch.
        if client.gated:
            fast = client.gated_fast or _NO_FAST  # a restricted user's: ACL-checked (server.acl_fast)
        elif _sample:
            _sample -= 1
            fast = _NO_FAST
        else:
            fast = FAST
        out = []
        append = out.append
        self.outbox = out
        server = self.server
        ready = server.blocking.ready
        for argv in cmds:
            try:
                entry = fast[len(argv)].get(argv[0])
                if entry is not None:
                    handler, check, cmd = entry
                    if check:
                        b"".join(argv)  # TypeError unless every argument is a bulk string
            except (TypeError, LookupError):  # KeyError: a RESP3 map where a request belongs
                entry = None
            if entry is None:  # not on the fast path (or not a request of bulk strings)
                if not _bulk_strings(argv):
                    # `*1\r\n:5\r\n`: the slow path names the protocol error.
                    self._to_slow_path(_before(cmds, argv), out, data)
                    return
                if argv:
                    r = dispatch.call(client, argv)
                    if r is not None:
                        append(r)
                    if self.closed or client.close_after_reply:
                        break
                    if client.blocked is not None:
                        # Nothing more runs until it is served: the slow path keeps the rest.
                        self._to_slow_path(_through(cmds, argv), out, data)
                        return
                    fast = (client.gated_fast or _NO_FAST) if client.gated else FAST
                continue
            try:
                r = handler(client, argv)
            except CommandError as e:
                append(dispatch.failed(server, cmd, e))
                continue
            except Exception as e:
                if not _bulk_strings(argv):
                    # A read command (not checked above) got a nested array
                    # or a RESP3 value: the slow path names the protocol error.
                    self._to_slow_path(_before(cmds, argv), out, data)
                    return
                append(dispatch.crashed(server, cmd, argv, e))  # a bug: answer, log, keep serving
                continue
            cmd.calls += 1
            if ready:  # this command changed keys blocked clients wait on
                server.blocking.serve()
            t = type(r)
            if t is Raw:
                append(r)
            elif t is bytes:
                append(b"$%d\r\n%s\r\n" % (len(r), r))
                if len(r) > BIG_REPLY:  # let the slow path meter the rest
                    self._to_slow_path(_through(cmds, argv), out, data)
                    return
            else:
                r = client.encode(r)
                append(r)
                if len(r) > BIG_REPLY:
                    self._to_slow_path(_through(cmds, argv), out, data)
                    return
        self.outbox = None
        if self.closed or client.close_after_reply:
            client.close_after_reply = True
            if out and not self.closed:
                self._write(out)  # closes once the replies are out
            elif not self.holding:
                self.close()
            return
        if not whole:
            # A request is cut across reads (or malformed): hand its bytes to
            # the slow path, which validates what has arrived and waits.
            self._to_slow_path(cmds, out, data)
            return
        if out:
            persistence = server.persistence
            effects = client.ks.effects
            if self.holding or persistence.must_hold or (effects and persistence.holds_replies):
                self._write(out, data, cmds)
            else:  # nothing to journal (no log, or no write), nothing to wait for
                if effects:
                    effects.clear()
                if self.pushed is not None:
                    out.insert(0, self._take_pushed())
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _to_slow_path(self, done: list, out: list, data: bytes) -> None:
        self.outbox = None
        try:
            consumed = requests_length(data, done) if done else 0
        except ProtocolError as e:  # cannot happen for bytes hiredis parsed; never guess
            log.error("closing client: %s", e)
            self.client.close_after_reply = True
            if out:
                self._write(out)  # sends (or holds) the replies, then closes
            elif not self.holding:
                self.close()
            return
        self.reader = hiredis.Reader()
        self.pending = bytearray()
        if out:
            self._write(out)
        self._slow_received(data[consumed:])

    def _write(self, out: list, raw: bytes | None = None, requests: list | None = None,
               free: bool = False) -> None:
        """Journal what the replies depend on, then send them or hold them.

        ``raw``/``requests``: the read the replies answer and its requests,
        when every one of them ran (see ``Persistence.journal``). ``free``:
        the caller knows every request was one of REPLY_FREE.
        """
        persistence = self.server.persistence
        changed = bool(self.client.ks.effects)
        if changed:
            persistence.journal(raw, requests)
        data = b"".join(out) if len(out) > 1 else out[0]
        if self.pushed is not None:
            data = self._take_pushed() + data
        if self.holding or (persistence.must_hold and (
                changed or self.acks_pending
                or not (free or (requests is not None and needs_no_key(requests))))):
            # These replies depend on records not yet safe (fsynced under
            # `always`, written under `everysec`/`no`): they leave in
            # commit(), after the turn's write (and fsync).
            self.held.append(data)
            persistence.hold(self)
            self.holding = True
            return
        self.transport.write(data)
        if self.client.close_after_reply:
            self.close()

    def release(self) -> None:
        """The log holds every record the held replies depend on: send them (one write)."""
        held = self.held
        data = b"".join(held) if len(held) > 1 else held[0]
        held.clear()
        self.holding = False
        if self.closed:
            return
        if self.pushed is not None:
            data = self._take_pushed() + data
        self.transport.write(data)
        if self.client is not None and self.client.close_after_reply:
            self.close()

    def push(self, data: bytes) -> None:
        """Send a message that is no reply to a request (a pub/sub message, a
        tracking invalidation): after every reply already produced for this
        connection, held ones included, so it never overtakes them. Outside
        the connection's own batch, messages wait for the end of the loop's
        turn and leave in one write; a reply written before then takes them
        along, in front of it."""
        if self.closed:
            return
        outbox = self.outbox
        if outbox is not None:
            outbox.append(data)
        elif self.holding:
            self.held.append(data)
        elif self.acks_pending:  # behind its replies waiting for acks (synchronous mode): queued after them
            self.held.append(data)
            self.server.persistence.hold(self)  # (before holding is set: it joins the waiting list)
            self.holding = True
        elif self.pushed is not None:
            self.pushed.append(data)
        else:
            # Written at the end of the loop's turn: a publish to many
            # subscribers costs each of them one write a turn, not one a message.
            self.pushed = [data]
            self.server.loop.call_soon(self.flush_pushed)

    def _take_pushed(self) -> bytes:
        pushed = self.pushed
        self.pushed = None
        return b"".join(pushed) if len(pushed) > 1 else pushed[0]

    def flush_pushed(self) -> None:
        """Write the messages pushed since the last write (the end of the turn, or
        a subscriber's output being measured)."""
        if self.pushed is not None and not self.closed:
            self.transport.write(self._take_pushed())

    def unblocked(self) -> None:
        """The client's wait ended: run the requests it sent meanwhile, or go
        back to the hot path when there are none."""
        if self.pending:
            if not self.closed:
                self.server.loop.call_soon(self._drain_pending)
        elif self.client.authenticated:
            self.pending = None

    def drop_held(self) -> None:
        """The log failed: what was held is never acknowledged."""
        self.held = []
        self.holding = False
        self.close()

    # -- the slow path -------------------------------------------------------
