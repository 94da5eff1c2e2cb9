"""The protocol fuzzer: malformed, truncated, oversized and random requests.

``Inputs`` is a seeded generator of single *inputs*, each a byte string
built from a valid request (RESP2 multibulk or inline) and then damaged by
one to three mutations: bad or huge ``*``/``$`` counts, negative counts,
missing or half CRLFs, nested arrays and RESP3 values as arguments, inline
requests with quotes and escapes, truncation, byte flips, inserted NULs,
splices of two requests; some inputs are plain random bytes, and a few in a
thousand are oversized (a 70 KB inline line, a header of 70 000 digits, a
bulk of tens of MB announced and partly sent, a million-argument header
followed by some of its arguments).

``run`` drives a real server with them: ``workers`` connections at a time,
each session a few inputs written in one go, cut at random byte boundaries
across writes, sometimes with pauses between the writes, then ended in one of
three ways: the client shuts its sending side and reads until the server
closes (the server must close within ``close_timeout``, and what it sent
must parse as a sequence of RESP replies, a protocol error only last), the
client closes without reading, or the client resets the connection. Beside
them a checked workload (SET, INCR and RPUSH in database 9, where no fuzzing
input can reach: no input selects a database) verifies every reply and reads
everything back at the end, and after every batch of sessions a fresh
connection must get PONG within ``ping_bound`` seconds and the process must
be alive. ``Report`` counts inputs, sessions, replies and every failure.

``compare`` sends a sample of inputs whose replies depend neither on timing
nor on which server answers (one write of at most 8 KB, the same inputs in
the same order so that both hold the same data) to Keel and to a real
redis-server, one fresh connection each, and lists the inputs whose replies
or close differ.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
import struct
import threading
import time

import hiredis

from tests.support import encode

# --- inputs -------------------------------------------------------------------

# Requests the fuzzer damages. Keys are fz:* in database 0; every value stays
# bounded (lists are trimmed, nothing appends), so the dataset cannot grow
# with the number of inputs and memory can be compared with its baseline.
_STATEFUL = [
    ["SET", "fz:k", "v"], ["GET", "fz:k"], ["INCR", "fz:n"], ["DECRBY", "fz:n", "3"],
    ["RPUSH", "fz:l", "a", "b"], ["LTRIM", "fz:l", "0", "15"], ["LRANGE", "fz:l", "0", "-1"],
    ["HSET", "fz:h", "f", "v"], ["HGETALL", "fz:h"], ["SADD", "fz:s", "m", "n"], ["SMEMBERS", "fz:s"],
    ["ZADD", "fz:z", "1.5", "m"], ["ZRANGE", "fz:z", "0", "-1", "WITHSCORES"], ["DEL", "fz:k"],
    ["MGET", "fz:k", "fz:n"], ["EXPIRE", "fz:k", "100"], ["TTL", "fz:k"], ["INCRBYFLOAT", "fz:f", "0.5"],
    ["MULTI"], ["EXEC"], ["DISCARD"], ["HELLO", "3"], ["HELLO", "2"], ["CLIENT", "SETNAME", "fz"],
    ["DBSIZE"], ["COMMAND", "COUNT"], ["TYPE", "fz:h"], ["QUIT"],
]
# Requests that read keys nothing writes, or none.
_STATELESS = [
    ["PING"], ["PING", "pong"], ["ECHO", "x"], ["ECHO", ""], ["ECHO", "a b\x00c"],
    ["GET", "cmp:none"], ["EXISTS", "cmp:none", "cmp:other"], ["STRLEN", "cmp:none"], ["TYPE", "cmp:none"],
    ["GET"], ["NOSUCHCMD", "a", "b"], ["LLEN", "cmp:none"],
]

# Sent to Keel and to redis-server in the same order, these leave both in the
# same state and answer alike; left out are the requests whose replies name
# the server (HELLO, COMMAND COUNT), depend on the clock (EXPIRE, TTL) or
# come in an unspecified order (SMEMBERS).
_COMPARABLE = _STATELESS + [argv for argv in _STATEFUL
                            if argv[0] not in ("HELLO", "COMMAND", "EXPIRE", "TTL", "SMEMBERS")]

# What goes where an argument belongs: other RESP2/RESP3 types, nested arrays.
_FOREIGN = [
    b":5\r\n", b":-1\r\n", b",1.5\r\n", b",inf\r\n", b"#t\r\n", b"#f\r\n", b"_\r\n", b"(12345678901234567890\r\n",
    b"+OK\r\n", b"-ERR x\r\n", b"=7\r\ntxt:abc\r\n", b"!3\r\nerr\r\n", b"%1\r\n$1\r\na\r\n$1\r\nb\r\n",
    b"~1\r\n$1\r\na\r\n", b">1\r\n$1\r\na\r\n", b"|1\r\n$1\r\na\r\n$1\r\nb\r\n", b"*1\r\n$1\r\na\r\n",
    b"*2\r\n$1\r\na\r\n*1\r\n*1\r\n$1\r\nb\r\n", b"*-1\r\n", b"$-1\r\n", b"*0\r\n", b"~2147483647\r\n",
    b">99999999\r\n", b"%2147483647\r\n", b"*3000000000\r\n",
]
_COUNTS = [b"-1", b"-2", b"-0", b"0", b"00", b"+1", b" 1", b"1 ", b"", b"x", b"1x", b"2147483647", b"2147483648",
           b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808", b"99999999999999999999",
           b"536870912", b"536870913", b"10000000", b"1e3", b"0x10", b"\x00", b"\xff"]
_RANDOM_ALPHABET = b"*$\r\n:+-_,#!=~>|%()0123456789abcPINGSETGET \"'\\\t\x00\xff"


def _words_inline(argv: list, rng: random.Random) -> bytes:
    """An inline request for ``argv``, quoted as telnet users quote (sometimes badly)."""
    parts = []
    for a in argv:
        w = a.encode() if isinstance(a, str) else a
        kind = rng.random()
        if kind < 0.55 and w and not any(ch in b" \t\r\n\"'\\\x00" for ch in w):
            parts.append(w)
        elif kind < 0.75:
            parts.append(b'"' + w.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')
        elif kind < 0.85:
            parts.append(b"'" + w.replace(b"'", b"\\'") + b"'")
        elif kind < 0.92:
            parts.append(b'"' + b"".join(b"\\x%02x" % ch for ch in w) + b'"')
        else:
            parts.append(rng.choice([b'"' + w, b"'" + w, b'"' + w + b'"x', w + b'"', b'"\\x4' + w + b'"']))
    sep = rng.choice([b" ", b" ", b"\t", b"  "])
    end = rng.choice([b"\r\n", b"\r\n", b"\n", b"\r", b""])
    return sep.join(parts) + end


class Inputs:
    """A seeded stream of fuzz inputs (``next()``), reproducible from the seed."""

    def __init__(self, seed: int, comparable: bool = False, oversized: bool = True):
        self.rng = random.Random(seed)
        self.pool = _COMPARABLE if comparable else _STATELESS + _STATEFUL
        self.oversized = oversized

    def valid(self) -> bytes:
        rng = self.rng
        argv = list(rng.choice(self.pool))
        if argv[0] == "ECHO" and rng.random() < 0.3:
            argv[1] = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        if rng.random() < 0.25:
            return _words_inline(argv, rng)
        return encode(argv)

    def next(self) -> bytes:
        rng = self.rng
        r = rng.random()
        if self.oversized and r < 0.003:
            return self.huge()
        if r < 0.08:
            return bytes(rng.choice(_RANDOM_ALPHABET) for _ in range(rng.randrange(1, 64)))
        if r < 0.18:
            return self.valid()  # an intact request between damaged ones
        data = self.valid()
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            data = self.mutate(data)
        return data

    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        m = rng.randrange(14)
        n = len(data)
        if m == 0 and n:  # truncate
            return data[:rng.randrange(n)]
        if m == 1:  # a bad element count
            return b"*" + rng.choice(_COUNTS) + data[data.find(b"\r\n"):] if data.startswith(b"*") else b"*" + rng.choice(_COUNTS) + b"\r\n" + data
        if m == 2:  # a bad bulk length
            starts = [i for i in range(n) if data[i] == 36]
            if starts:
                i = rng.choice(starts)
                j = data.find(b"\r\n", i)
                if j > 0:
                    if rng.random() < 0.5 and data[i + 1:j].isdigit():
                        length = int(data[i + 1:j]) + rng.choice((-2, -1, 1, 2, 100))
                        return data[:i + 1] + b"%d" % length + data[j:]
                    return data[:i + 1] + rng.choice(_COUNTS) + data[j:]
            return data
        if m == 3:  # a foreign element where an argument belongs
            starts = [i for i in range(1, n) if data[i] == 36 and data[i - 1] == 10]
            if starts:
                i = rng.choice(starts)
                j = data.find(b"\r\n", i)
                length = int(data[i + 1:j]) if data[i + 1:j].isdigit() else 0
                end = j + 2 + length + 2
                return data[:i] + rng.choice(_FOREIGN) + data[end:]
            return data + rng.choice(_FOREIGN)
        if m == 4 and n:  # drop one byte of a CRLF
            ends = [i for i in range(n) if data[i] in (10, 13)]
            if ends:
                i = rng.choice(ends)
                return data[:i] + data[i + 1:]
            return data
        if m == 5:  # CRLF -> LF everywhere, or LF -> CRLF
            return data.replace(b"\r\n", b"\n") if rng.random() < 0.7 else data.replace(b"\n", b"\r\n")
        if m == 6 and n:  # flip a byte
            i = rng.randrange(n)
            return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        if m == 7:  # insert a byte (often a NUL or a quote)
            i = rng.randrange(n + 1)
            return data[:i] + bytes([rng.choice((0, 0, 34, 39, 92, 13, 10, rng.randrange(256)))]) + data[i:]
        if m == 8 and n:  # delete a byte
            i = rng.randrange(n)
            return data[:i] + data[i + 1:]
        if m == 9:  # splice with another request
            other = self.valid()
            return data[:rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1):]
        if m == 10:  # wrap in an array (a request as an argument of another)
            return b"*2\r\n$4\r\nECHO\r\n" + data
        if m == 11:  # an aggregate header before it
            return rng.choice((b"~", b">", b"|", b"%", b"*")) + rng.choice(_COUNTS) + b"\r\n" + data
        if m == 12 and n:  # duplicate a slice
            i = rng.randrange(n)
            j = rng.randrange(i, n + 1)
            return data[:j] + data[i:j] + data[j:]
        return data + self.valid()  # m == 13: two requests in one

    def huge(self) -> bytes:
        rng = self.rng
        k = rng.randrange(6)
        if k == 0:
            return b"x" * rng.randrange(65 * 1024, 80 * 1024)  # an inline line past 64 KB
        if k == 1:
            return rng.choice((b"*", b"*1\r\n$")) + b"1" * 70000  # a header line past 64 KB
        if k == 2:  # a big bulk announced, part of it sent
            size = rng.choice((10**6, 30 * 10**6, 512 * 1024 * 1024))
            return b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % size + b"y" * rng.randrange(64 * 1024, 2 * 10**6)
        if k == 3:  # a million-argument header, some arguments sent
            count = rng.choice((10**6, 9_999_999, 2**31 - 1))
            return b"*%d\r\n" % count + b"$1\r\na\r\n" * rng.randrange(1000, 150_000)
        if k == 4:  # a big but whole ECHO
            return encode(["ECHO", b"z" * rng.randrange(100_000, 1_500_000)])
        return b"*2\r\n$4\r\nECHO\r\n" + b"*1\r\n" * rng.randrange(1000, 50_000) + b"$1\r\na\r\n"  # deep nesting


# --- a session's bytes, split into writes ------------------------------------

def split_writes(data: bytes, rng: random.Random) -> list[tuple[bytes, float]]:
    """``data`` as (bytes, pause before the next write) pieces, cut at random boundaries."""
    mode = rng.random()
    n = len(data)
    if mode < 0.45 or n < 2:
        return [(data, 0.0)]
    if mode < 0.9 or n > 4096:
        cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randrange(1, 6))))
    else:  # one byte per write
        cuts = list(range(1, n))
    paused = rng.random() < 0.3
    pieces, prev = [], 0
    for cut in cuts + [n]:
        pieces.append((data[prev:cut], rng.choice((0.0, 0.001, 0.005, 0.02)) if paused else 0.0))
        prev = cut
    return pieces


# --- reports -----------------------------------------------------------------

@dataclasses.dataclass
class Report:
    inputs: int = 0
    sessions: int = 0
    bytes_sent: int = 0
    replies: int = 0
    protocol_errors: int = 0
    closed_by_server: int = 0
    checked_ops: int = 0
    max_ping: float = 0.0
    max_pinger: float = 0.0  # the slowest of the PINGs sent every 50 ms all along
    max_checked_latency: float = 0.0
    crashes: int = 0
    hangs: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)
    rss_baseline: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    seconds: float = 0.0

    def fail(self, what: str, data: bytes = b"") -> None:
        if len(self.failures) < 50:
            self.failures.append((what, data[:300]))

    def summary(self) -> str:
        return (f"{self.inputs} inputs in {self.sessions} sessions ({self.bytes_sent / 1e6:.1f} MB) in "
                f"{self.seconds:.1f} s; {self.replies} replies, {self.protocol_errors} protocol errors, "
                f"{self.checked_ops} checked ops (max latency {self.max_checked_latency * 1000:.0f} ms), "
                f"max PING {self.max_ping * 1000:.0f} ms (every 50 ms: {self.max_pinger * 1000:.0f} ms); crashes {self.crashes}, hangs {len(self.hangs)}, "
                f"failures {len(self.failures)}; RSS {self.rss_baseline >> 20} MB -> peak {self.rss_peak >> 20}"
                f" MB -> {self.rss_after >> 20} MB")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def parse_replies(data: bytes) -> tuple[list, bool]:
    """The replies in ``data`` and whether they parse whole (nothing left over, no garbage)."""
    reader = hiredis.Reader(replyError=lambda s: ("ERR", s))
    reader.feed(data)
    out = []
    try:
        while True:
            r = reader.gets()
            if r is False:
                break
            out.append(r)
    except hiredis.ProtocolError:
        return out, False
    return out, not reader.has_data()


def _error_text(r) -> str | None:
    return r[1] if isinstance(r, tuple) and len(r) == 2 and r[0] == "ERR" else None


# --- the driver -------------------------------------------------------------

# How far above its baseline (taken after the first 2% of inputs) the
# server's resident size may settle once the fuzzing is over: the allocator
# keeps some of what the oversized inputs took, none of it may be leaked.
RSS_SLACK = 32 << 20

async def _session(port: int, data: bytes, rng: random.Random, report: Report, close_timeout: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ending = rng.random()
    try:
        for piece, pause in split_writes(data, rng):
            writer.write(piece)
            if pause:
                await writer.drain()
                await asyncio.sleep(pause)
        if ending < 0.85:  # shut the sending side, read until the server closes
            if writer.can_write_eof():
                writer.write_eof()
            out = bytearray()
            deadline = time.monotonic() + close_timeout
            while True:
                # (At the deadline, one more short read: this loop may have
                # been busy elsewhere while the server's close was waiting.)
                left = max(deadline - time.monotonic(), 0.5)
                try:
                    chunk = await asyncio.wait_for(reader.read(1 << 20), left)
                except asyncio.TimeoutError:
                    report.hangs.append(data[:300])
                    return
                if not chunk:
                    break
                out += chunk
                if time.monotonic() > deadline + close_timeout:  # replies that never end
                    report.hangs.append(data[:300])
                    return
            report.closed_by_server += 1
            replies, whole = parse_replies(bytes(out))
            report.replies += len(replies)
            if not whole:
                report.fail("reply bytes do not parse as RESP", data)
            for i, r in enumerate(replies):
                text = _error_text(r)
                if text is None:
                    continue
                if "internal error" in text:
                    report.fail(f"internal error: {text}", data)
                if "Protocol error" in text:
                    report.protocol_errors += 1
                    if i != len(replies) - 1:
                        report.fail("replies after a protocol error", data)
        elif ending < 0.95:
            await writer.drain()
        else:  # reset: RST instead of FIN, unread replies dropped
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (ConnectionResetError, BrokenPipeError):
        report.closed_by_server += 1  # the server closed first (a protocol error): allowed
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionResetError, BrokenPipeError):
            pass


class Checked:
    """SET/INCR/RPUSH in database 9 with every reply verified; ``verify`` reads it all back.

    It runs in a thread of its own, on a blocking socket, so that its latency
    is the server's, not that of the fuzzing loop (which may be busy parsing
    300 000 replies of one session): the thread gets the interpreter back
    every few milliseconds whatever that loop does."""

    def __init__(self, report: Report, port: int, password: str | None = None):
        self.report = report
        self.port = port
        self.password = password
        self.n = 0
        self.values: dict[bytes, bytes] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def call(self, *requests):
        self.sock.sendall(b"".join(encode(r) for r in requests))
        out = []
        while len(out) < len(requests):
            r = self.parser.gets()
            if r is not False:
                out.append(r)
                continue
            chunk = self.sock.recv(65536)  # socket timeout: 10 s
            if not chunk:
                raise ConnectionError("checked connection closed")
            self.parser.feed(chunk)
        return out

    def _main(self) -> None:
        try:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10.0)
            self.parser = hiredis.Reader(replyError=lambda s: ("ERR", s))
            if self.password is not None:
                assert self.call(["AUTH", self.password]) == [b"OK"]
            assert self.call(["SELECT", "9"], ["FLUSHDB"]) == [b"OK", b"OK"]
            while not self.stop.is_set():
                i = self.n
                key = b"chk:s:%d" % (i % 500)
                value = b"v%d" % i
                t0 = time.monotonic()
                got = self.call(["SET", key, value], ["INCR", "chk:n"], ["RPUSH", "chk:l", str(i)])
                self.report.max_checked_latency = max(self.report.max_checked_latency, time.monotonic() - t0)
                if got != [b"OK", i + 1, i + 1]:
                    self.report.fail(f"checked workload step {i}: {got!r}")
                    return
                self.values[key] = value
                self.n += 1
                self.report.checked_ops += 3
                time.sleep(0.002)
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self) -> None:
        """Stop, then read everything back; any failure is reported."""
        self.stop.set()
        self.thread.join(30)
        if self.error is not None:
            self.report.fail(f"checked workload: {self.error!r}")
            return
        if self.thread.is_alive():
            self.report.fail("checked workload: no reply for 30 s")
            return
        keys = sorted(self.values)
        try:
            got = self.call(["GET", "chk:n"], ["LLEN", "chk:l"], ["LRANGE", "chk:l", "0", "-1"], ["MGET", *keys])
        except (OSError, ConnectionError) as e:
            self.report.fail(f"checked workload read back: {e!r}")
            return
        finally:
            self.sock.close()
        expect = [str(self.n).encode(), self.n, [str(i).encode() for i in range(self.n)],
                  [self.values[k] for k in keys]]
        if got != expect:
            self.report.fail(f"checked workload read back differs after {self.n} steps")


async def _ping(port: int, bound: float) -> float:
    t0 = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), bound)
    try:
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        line = await asyncio.wait_for(reader.readline(), bound)
        if line != b"+PONG\r\n" and not line.startswith(b"-NOAUTH"):  # (-NOAUTH: alive, behind requirepass)
            raise AssertionError(f"PING answered {line!r}")
    finally:
        writer.close()
    return time.monotonic() - t0


async def _pinger(port: int, report: Report, stop: list) -> None:
    """PING every 50 ms on one connection: the longest wait tells a stalled
    loop (or a slow fsync, which PING waits for under `always`) from a slow
    checked client."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop:
            t0 = time.monotonic()
            writer.write(b"*1\r\n$4\r\nPING\r\n")
            await reader.readline()
            report.max_pinger = max(report.max_pinger, time.monotonic() - t0)
            await asyncio.sleep(0.05)
    finally:
        writer.close()


async def _run(port: int, proc, inputs: Inputs, total: int, workers: int, batch: int,
               close_timeout: float, ping_bound: float, report: Report, password: str | None) -> None:
    checked = Checked(report, port, password)
    checked.start()
    stop_pinger: list = []
    pinger = asyncio.ensure_future(_pinger(port, report, stop_pinger)) if password is None else None
    rng = random.Random(inputs.rng.random())
    pending: set = set()
    started = time.monotonic()
    next_check = batch
    warm = max(batch, total // 50)
    while report.inputs < total or pending:
        while report.inputs < total and len(pending) < workers:
            k = rng.randrange(1, 8)
            parts = [inputs.next() for _ in range(k)]
            data = b"".join(parts)
            report.inputs += k
            report.sessions += 1
            report.bytes_sent += len(data)
            pending.add(asyncio.ensure_future(_session(port, data, rng, report, close_timeout)))
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, (ConnectionError, OSError)):
                report.fail(f"session raised {exc!r}")
            elif isinstance(exc, ConnectionRefusedError):
                report.fail("connection refused")
        if report.inputs >= next_check or (report.inputs >= total and not pending):
            next_check += batch
            if proc is not None and proc.poll() is not None:
                report.crashes += 1
                report.fail(f"server exited with status {proc.returncode}")
                break
            try:
                report.max_ping = max(report.max_ping, await _ping(port, ping_bound))
            except (asyncio.TimeoutError, OSError, AssertionError) as e:
                report.hangs.append(f"PING after {report.inputs} inputs: {e!r}".encode())
                break
            if proc is not None:
                now = rss(proc.pid)
                report.rss_peak = max(report.rss_peak, now)
                if not report.rss_baseline and report.inputs >= warm:
                    report.rss_baseline = now
            if checked.done():
                break
    stop_pinger.append(True)
    if pinger is not None:
        await asyncio.wait_for(pinger, 15)
    checked.finish()
    report.seconds = time.monotonic() - started
    if proc is not None and proc.poll() is None:
        # Every fuzzing connection is closed: give the server a moment to
        # free their buffers, then take the resident size it settles at.
        deadline = time.monotonic() + 10
        while True:
            report.rss_after = rss(proc.pid)
            if report.rss_after <= report.rss_baseline + RSS_SLACK or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    elif proc is not None and not report.crashes:
        report.crashes += 1
        report.fail(f"server exited with status {proc.returncode}")


def run(port: int, proc, seed: int, total: int, workers: int = 8, batch: int = 2000,
        close_timeout: float = 10.0, ping_bound: float = 5.0, password: str | None = None) -> Report:
    """Fuzz the server on ``port`` (``proc``: its Popen, for liveness and RSS) with ``total`` inputs.

    ``password``: the server has requirepass; the checked client logs in, the
    fuzzing connections never do (so they meet the unauthenticated limits)."""
    report = Report()
    # Writes to connections the server already closed are expected here;
    # asyncio would log each one ("socket.send() raised exception").
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    asyncio.run(_run(port, proc, Inputs(seed), total, workers, batch, close_timeout, ping_bound, report, password))
    return report


# --- side by side with redis-server --------------------------------------------

def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """One fresh connection: send ``data`` in one write, shut the sending side,
    read until the server closes; (what it sent, whether it closed in time)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return out, True
                out += d
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            return out, True
    finally:
        s.close()


def compare(keel_port: int, ref_port: int, seed: int, count: int) -> tuple[int, list]:
    """Send ``count`` comparable inputs to both servers, emptied first, one
    connection each, in the same order; (inputs compared, differences)."""
    for port in (keel_port, ref_port):
        exchange(port, b"FLUSHALL\r\n")
    inputs = Inputs(seed, comparable=True, oversized=False)
    diffs = []
    done = 0
    while done < count:
        data = inputs.next()
        if len(data) > 8192 or not data:
            continue
        done += 1
        k, r = exchange(keel_port, data), exchange(ref_port, data)
        if k != r:
            diffs.append((data, k, r))
    return done, diffs
