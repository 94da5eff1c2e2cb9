"""Replication under faults: each ends in a log line and a retry, never a
replica serving half-loaded data as complete, never a crash of the primary.

- a wrong ``masterauth``: the link stays down, the log names the refusal,
  the replica retries and syncs once the password is set right;
- a "primary" that is not Redis (answers garbage, or closes at once), one
  that sends a truncated RDB, a damaged RDB, or a damaged stream after a
  good RDB: fake primaries in the test (``FakePrimary``, a small asyncio
  server that answers the handshake and then follows a script);
- PSYNC from a raw client with an unknown replid or an offset past the end:
  ``+FULLRESYNC``, as redis-server answers;
- a replica killed in the middle of its full sync, a primary killed in the
  middle of the stream;
- the log a primary keeps for a replica whose link is paused (all it has
  not acknowledged) or cut (repl-backlog-size: past it, a full sync).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading

import hiredis
import pytest

from tests.replication.conftest import need
from tests.replication.support import (HOST, Group, Node, call, repl_offset, wait_for, wait_link_up,
                                       wait_offsets_match)
from tests.replication.test_interop import Writer, fill_every_type
from tests.replication.test_keel_replication import assert_same_data, continues, full_syncs
from tests.support import Err, KeelProcess, RedisProcess, RespClient

FAKE_ID = "f" * 40


# --- a fake primary ----------------------------------------------------------------

class FakePrimary:
    """Answers a replica's handshake (PING, AUTH, REPLCONF) and then, to PSYNC
    or SYNC, writes ``script`` and closes (``close_after``) or stays silent.
    ``greeting`` (if set) is written as soon as a connection opens and the
    connection closed: a server that is not Redis."""

    def __init__(self, script: bytes = b"", close_after: bool = True, greeting: bytes | None = None):
        self.script = script
        self.close_after = close_after
        self.greeting = greeting
        self.connections = 0
        self.commands: list[list[bytes]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self._run(asyncio.start_server(self._handle, HOST, 0))
        self.port = self.server.sockets[0].getsockname()[1]

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _handle(self, reader, writer):
        self.connections += 1
        try:
            if self.greeting is not None:
                writer.write(self.greeting)
                await writer.drain()
                return
            parser = hiredis.Reader()
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                parser.feed(data)
                while (cmd := parser.gets()) is not False:
                    self.commands.append(cmd)
                    name = cmd[0].upper()
                    if name == b"PING":
                        writer.write(b"+PONG\r\n")
                    elif name in (b"PSYNC", b"SYNC"):
                        writer.write(self.script)
                        await writer.drain()
                        if self.close_after:
                            return
                        await asyncio.sleep(3600)
                    else:
                        writer.write(b"+OK\r\n")
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()

    def close(self) -> None:
        async def go():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._run(go())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def fetch_rdb(port: int) -> tuple[bytes, bytes]:
    """A full sync asked with a raw ``PSYNC ? -1`` (no ``capa eof``: the
    ``$<length>`` form): the +FULLRESYNC line and the RDB's bytes."""
    c = RespClient(port)
    c.send_raw(b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
    buf = b""
    while True:
        while buf.startswith(b"\n"):
            buf = buf[1:]  # keepalive newlines while the RDB is made
        if b"\r\n" in buf and buf.count(b"\r\n") >= 2:
            break
        buf += c.sock.recv(65536)
    first, rest = buf.split(b"\r\n", 1)
    rest = rest.lstrip(b"\n")
    size_line, body = rest.split(b"\r\n", 1)
    assert first.startswith(b"+FULLRESYNC") and size_line.startswith(b"$"), (first, size_line)
    n = int(size_line[1:])
    while len(body) < n:
        body += c.sock.recv(65536)
    c.close()
    return first, body[:n]


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def source():
    """A Keel primary holding every type (the RDB the fakes send comes from it)."""
    n = Node("keel", "source", ["--repl-diskless-sync-delay", "0", "--repl-diskless-sync", "no"])
    n.start()
    c = n.client(direct=True)
    fill_every_type(c)
    c.close()
    yield n
    n.cleanup()


@pytest.fixture(scope="module")
def victim():
    """A standalone Keel server that the fakes are offered to as a primary."""
    k = KeelProcess().start()
    yield k
    k.cleanup()


@pytest.fixture
def replica(victim):
    """The victim holding its own data, a primary again after the test."""
    c = victim.client()
    assert c.call("REPLICAOF", "NO", "ONE") == b"OK"
    c.call("FLUSHALL")
    assert c.call("SET", "mine", "previous") == b"OK"
    c.close()
    yield victim
    call(victim.port, "REPLICAOF", "NO", "ONE")


def link_status(port: int) -> str:
    return call(port, "INFO", "replication").decode()


def log_since_replicaof(replica: KeelProcess) -> str:
    return replica.log().rsplit("REPLICAOF", 1)[-1]


def assert_refused(replica: KeelProcess, log_text: str) -> None:
    """The sync failed: one clear log line naming why, the link down, the
    server alive and not loading."""
    wait_for(lambda: log_text in log_since_replicaof(replica), timeout=8, what=f"the log to say {log_text!r}")
    assert "master_link_status:down" in link_status(replica.port)
    assert "Traceback" not in log_since_replicaof(replica)
    assert call(replica.port, "PING") == b"PONG"
    assert b"loading:0" in call(replica.port, "INFO", "persistence")


def assert_retries(fake: FakePrimary) -> None:
    wait_for(lambda: fake.connections >= 2, timeout=8, what="the replica to try again")


def previous_or_empty(port: int) -> None:
    """What a replica whose sync failed may serve: its old data, or nothing
    (in no database any key of the RDB it could not load)."""
    dbs = [line.split(b":")[0] for line in call(port, "INFO", "keyspace").split(b"\r\n")[1:] if line]
    assert dbs in ([b"db0"], []), dbs
    keys = call(port, "KEYS", "*")
    assert keys in ([b"mine"], []), keys
    if keys:
        assert call(port, "GET", "mine") == b"previous"


# --- authentication ------------------------------------------------------------------

def test_wrong_masterauth_keeps_the_link_down_until_fixed():
    primary = Node("keel", "auth-primary", ["--requirepass", "s3cret", "--repl-diskless-sync-delay", "0"])
    replica = Node("keel", "auth-replica", ["--masterauth", "wrong"])
    try:
        primary.start()  # ready once it answers -NOAUTH, maybe still loading
        wait_for(lambda: RespClient(primary.direct).pipeline([("AUTH", "s3cret"), ("SET", "k", "v")])[1] == b"OK",
                 what="the primary to take writes")
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_for(lambda: replica.log().count("AUTH refused by the primary") >= 2, timeout=8,
                 what="two refused attempts")
        assert "WRONGPASS" in replica.log()
        assert replica.info()["master_link_status"] == "down"
        assert call(replica.direct, "GET", "k") is None
        assert call(replica.direct, "CONFIG", "SET", "masterauth", "s3cret") == b"OK"
        wait_link_up(replica)
        wait_for(lambda: call(replica.direct, "GET", "k") == b"v", what="the data")
    finally:
        replica.cleanup()
        primary.cleanup()


def test_no_masterauth_against_a_primary_that_wants_one():
    primary = Node("keel", "auth-primary", ["--requirepass", "s3cret"])
    replica = Node("keel", "auth-replica", [])
    try:
        primary.start()
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_for(lambda: "set masterauth" in replica.log(), timeout=5, what="the refusal logged")
        assert replica.info()["master_link_status"] == "down"
    finally:
        replica.cleanup()
        primary.cleanup()


def test_masteruser_with_only_the_replication_commands_syncs():
    """An ACL user allowed PSYNC, REPLCONF and PING only: what a replica needs."""
    primary = Node("keel", "acl-primary", ["--repl-diskless-sync-delay", "0"])
    replica = Node("keel", "acl-replica", ["--masteruser", "repl", "--masterauth", "pw"])
    try:
        primary.start()
        c = primary.client(direct=True)
        assert c.call("ACL", "SETUSER", "repl", "on", ">pw", "+psync", "+replconf", "+ping") == b"OK"
        assert c.call("ACL", "SETUSER", "default", "off") == b"OK"
        assert c.call("SET", "k", "v") == b"OK"
        c.close()
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_link_up(replica)
        wait_for(lambda: call(replica.direct, "GET", "k") == b"v", what="the data")
    finally:
        replica.cleanup()
        primary.cleanup()


# --- primaries that are not, or that break --------------------------------------------

def test_a_primary_that_closes_at_once(replica):
    fake = FakePrimary(greeting=b"")
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        assert_refused(replica, f"replication link to {HOST}:{fake.port}")
        assert_retries(fake)
        assert call(replica.port, "GET", "mine") == b"previous"
    finally:
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


def test_a_primary_answering_garbage_is_named_in_one_clear_line(replica):
    fake = FakePrimary(greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n")
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        assert_refused(replica, "HTTP/1.1 400 Bad Request")
        assert call(replica.port, "GET", "mine") == b"previous"
    finally:
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


def test_handshake_is_the_one_redis_sends(replica):
    fake = FakePrimary(script=b"-ERR go away\r\n")
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        assert_refused(replica, "the primary refused PSYNC: -ERR go away")
        first = fake.commands[:[c[0].upper() for c in fake.commands].index(b"PSYNC") + 1]
        names = [c[0].upper() + (b" " + c[1].lower() if c[0].upper() == b"REPLCONF" else b"")
                 for c in first]
        assert names[0] == b"PING" and names[-1] == b"PSYNC", names
        assert b"REPLCONF listening-port" in names and b"REPLCONF capa" in names
        capa = next(c for c in fake.commands if c[:2] == [b"REPLCONF", b"capa"])
        assert b"eof" in capa and b"psync2" in capa
    finally:
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


def test_truncated_rdb_is_not_served_as_complete(replica):
    fake = FakePrimary(script=b"+FULLRESYNC %s 0\r\n$1000\r\n" % FAKE_ID.encode() + b"REDIS0010\xfa")
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        assert_refused(replica, "closed the connection during the RDB")
        assert_retries(fake)
        previous_or_empty(replica.port)
        assert FAKE_ID not in link_status(replica.port)  # not the fake's history
    finally:
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


def test_truncated_diskless_rdb_is_not_served_as_complete(replica, source):
    _, rdb = fetch_rdb(source.direct)
    mark = b"m" * 40
    fake = FakePrimary(script=b"+FULLRESYNC %s 0\r\n$EOF:%s\r\n%s" % (FAKE_ID.encode(), mark, rdb[:len(rdb) // 2]))
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        assert_refused(replica, "closed the connection during the RDB")
        previous_or_empty(replica.port)
    finally:
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


@pytest.mark.parametrize("where", ["header", "middle", "checksum"])
def test_damaged_rdb_is_refused(replica, source, where):
    first, rdb = fetch_rdb(source.direct)
    at = {"header": 2, "middle": len(rdb) // 2, "checksum": len(rdb) - 3}[where]
    bad = bytearray(rdb)
    bad[at] ^= 0xFF
    fake = FakePrimary(script=first + b"\r\n$%d\r\n" % len(bad) + bytes(bad))
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        assert_refused(replica, "does not load")
        previous_or_empty(replica.port)
        assert call(replica.port, "EXISTS", "s:big") == 0  # nothing of the damaged file
    finally:
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


def test_damaged_rdb_loaded_from_memory_is_refused(replica, source):
    """repl-diskless-load swapdb, the $EOF form: parsed from memory, refused
    the same way. (redis-server 7.0.15 exits here: 'Terminating server after
    rdb file reading failure'.)"""
    first, rdb = fetch_rdb(source.direct)
    bad = bytearray(rdb)
    bad[len(rdb) // 2] ^= 0xFF
    mark = b"k" * 40
    fake = FakePrimary(script=first + b"\r\n$EOF:" + mark + b"\r\n" + bytes(bad) + mark)
    assert call(replica.port, "CONFIG", "SET", "repl-diskless-load", "swapdb") == b"OK"
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        assert_refused(replica, "does not load")
        previous_or_empty(replica.port)
        assert call(replica.port, "EXISTS", "s:big") == 0
    finally:
        call(replica.port, "CONFIG", "SET", "repl-diskless-load", "disabled")
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


def test_damaged_stream_after_a_good_rdb_drops_the_link(replica, source):
    """The RDB loads whole (a dataset at the primary's offset); the stream
    after it breaks the protocol: the link drops and is tried again, the
    loaded data stays (it is complete at its offset)."""
    first, rdb = fetch_rdb(source.direct)
    stream = b"*2\r\n$3\r\nDEL\r\n:not-a-bulk\r\n!garbage\r\n"
    fake = FakePrimary(script=first + b"\r\n$%d\r\n" % len(rdb) + rdb + stream, close_after=False)
    try:
        assert call(replica.port, "REPLICAOF", HOST, fake.port) == b"OK"
        wait_for(lambda: fake.connections >= 2, timeout=8, what="the replica to retry")
        assert f"replication link to {HOST}:{fake.port}" in replica.log()  # (up between attempts: not checked)
        assert "Bad integer value" in replica.log()  # hiredis's complaint about the stream
        assert "Traceback" not in replica.log().rsplit("REPLICAOF", 1)[-1]
        assert call(replica.port, "EXISTS", "s:big") == 1
        assert call(replica.port, "DBSIZE") == call(source.direct, "DBSIZE")
    finally:
        call(replica.port, "REPLICAOF", "NO", "ONE")
        fake.close()


# --- PSYNC from a raw client ---------------------------------------------------------------

def _psync_first_line(port: int, replid: str, offset: int) -> bytes:
    c = RespClient(port, timeout=5)
    c.call("REPLCONF", "capa", "eof", "capa", "psync2")
    c.send_raw(b"*3\r\n$5\r\nPSYNC\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n"
               % (len(replid), replid.encode(), len(str(offset)), offset))
    buf = b""
    while b"\r\n" not in buf.lstrip(b"\n"):
        d = c.sock.recv(65536)
        if not d:
            break
        buf += d
    c.close()
    return buf.lstrip(b"\n").split(b"\r\n", 1)[0]


@pytest.fixture(scope="module")
def redis_primary():
    need("redis-server")
    r = RedisProcess("--repl-diskless-sync-delay", "0").start()
    c = r.client()
    c.call("SET", "k", "v")
    c.close()
    # redis-server makes its backlog (and a new replid) at its first replica,
    # and answers any PSYNC with +FULLRESYNC before that; Keel's log is its
    # backlog from the start. One full sync first, so the cases do not
    # depend on which of them runs first.
    assert _psync_first_line(r.port, "?", -1).startswith(b"+FULLRESYNC")
    yield r
    r.cleanup()


@pytest.mark.parametrize("case", ["unknown replid", "offset in the future", "offset zero", "known"])
def test_raw_psync_answers_as_redis(source, redis_primary, case):
    got = {}
    for kind, port in (("keel", source.direct), ("redis", redis_primary.port)):
        info = link_status(port)
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        replid, end = fields["master_replid"], int(fields["master_repl_offset"])
        replid, offset = {"unknown replid": ("0123456789" * 4, end + 1),
                          "offset in the future": (replid, end + 1000),
                          "offset zero": (replid, 0),
                          "known": (replid, end + 1)}[case]
        line = _psync_first_line(port, replid, offset)
        got[kind] = line.split()[0]
        if got[kind] == b"+FULLRESYNC" and kind == "keel":
            # (redis-server starts a new id when it makes its first backlog)
            assert line.split()[1].decode() == fields["master_replid"]
    assert got["keel"] == got["redis"], got
    assert got["keel"] == (b"+CONTINUE" if case == "known" else b"+FULLRESYNC")
    assert call(source.direct, "PING") == b"PONG"


# --- processes killed mid-way ---------------------------------------------------------------

def test_replica_killed_mid_sync_then_syncs_again():
    primary = Node("keel", "big-primary", ["--repl-diskless-sync-delay", "0"])
    replica = Node("keel", "mid-replica", [])
    try:
        primary.start()
        assert call(primary.direct, "DEBUG", "POPULATE", 20000, "key", 64, timeout=30) == b"OK"
        primary.proxy.delay(40)  # the RDB (~1.7 MB) takes seconds through the proxy
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_for(lambda: int(replica.info().get("master_sync_read_bytes", "0")) > 0, timeout=10,
                 interval=0.02, what="the RDB to start arriving")
        replica.kill()
        assert call(primary.direct, "SET", "after", "1") == b"OK"  # the primary goes on
        assert call(primary.direct, "DBSIZE") == 20001
        primary.proxy.heal()
        wait_for(lambda: primary.info()["connected_slaves"] == "0", what="the primary to drop it")
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_link_up(replica, 30)
        wait_offsets_match(primary, [replica])
        assert_same_data(primary.direct, replica.direct)
        assert int(primary.info("stats")["sync_full"]) == 2  # a full sync again, no +CONTINUE from half
        assert not [f for f in os.listdir(primary.proc.dir) if f.startswith("temp-")]
    finally:
        replica.cleanup()
        primary.cleanup()


def test_primary_killed_mid_stream_replica_keeps_data_and_reconnects():
    """Several writers, kill -9: the replica keeps what it has, which is never
    more than the primary recovers (replicas are fed only what the log made
    safe), and continues from it (+CONTINUE, same replid) when the primary
    is back."""
    primary = Node("keel", "dying-primary", ["--repl-diskless-sync-delay", "0"])
    replica = Node("keel", "patient-replica", [])
    try:
        primary.start()
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_link_up(replica)
        writers = [Writer(primary.direct, prefix=f"w{i}:") for i in range(4)]
        for w in writers:
            w.start()
        wait_for(lambda: sum(w.count for w in writers) > 200, what="writes")
        primary.kill()
        for w in writers:
            w.done.set()
            w.join(5)
        wait_for(lambda: replica.info()["master_link_status"] == "down", what="the link to drop")
        have = repl_offset(replica)
        assert have > 0
        assert int(call(replica.direct, "GET", "w0:ctr")) > 0  # the data stays, served
        assert call(replica.direct, "SET", "x", "1") == Err("READONLY You can't write against a read only replica.")
        wait_for(lambda: "replication link to" in replica.log(), what="the retries logged")
        replid = replica.info()["master_replid"]
        primary.proxy.cut()  # (so that the offsets are read before the replica reconnects)
        primary.start()
        assert primary.info()["master_replid"] == replid  # the history is kept across the crash
        assert repl_offset(primary) >= have  # it never had bytes the primary lost
        primary.proxy.heal()
        wait_link_up(replica, 20)
        assert call(primary.direct, "SET", "after-restart", "1") == b"OK"
        wait_offsets_match(primary, [replica])
        assert_same_data(primary.direct, replica.direct)
        stats = primary.info("stats")
        assert (stats["sync_partial_ok"], stats["sync_full"]) == ("1", "0")
    finally:
        replica.cleanup()
        primary.cleanup()


# --- the log kept for replicas ------------------------------------------------------------

@pytest.fixture(scope="module")
def small_segments():
    """8 kB segments, repl-backlog-size 16kb, a checkpoint every 16 kB: the log
    keeps little, so what it keeps for a replica shows."""
    g = Group("keel", 1, args=["--repl-backlog-size", "16kb", "--checkpoint-log-size", "16kb",
                               "--wal-segment-size", "8kb"])
    g.start()
    yield g
    g.cleanup()


def _write_100kb(node: Node, tag: str) -> int:
    """One command a turn (many records, many segments); the end offset after."""
    c = node.client(direct=True)
    for i in range(100):
        assert c.call("SET", f"{tag}:{i}", "v" * 1000) == b"OK"
    c.close()
    return repl_offset(node)


def _checkpointed_past(node: Node, offset: int) -> bool:
    return any(int(m) >= offset for m in re.findall(r"background checkpoint done at offset (\d+)", node.log()))


def test_a_paused_replica_keeps_the_log_it_has_not_acknowledged(small_segments):
    g = small_segments
    p, r = g.primary, g.replicas[0]
    call(p.direct, "SET", "a", "1")
    have = wait_offsets_match(p, [r])
    fulls, conts = full_syncs(p), continues(p)
    p.proxy.pause()  # connected, hears nothing, acks nothing
    try:
        end = _write_100kb(p, "paused")
        wait_for(lambda: _checkpointed_past(p, end - 16384), what="a checkpoint after the writes")
        p.proxy.cut()  # now the connection drops: it comes back asking for have + 1
    finally:
        p.proxy.heal()
    wait_link_up(r)
    wait_offsets_match(p, [r])
    assert repl_offset(r) > have
    assert (full_syncs(p), continues(p)) == (fulls, conts + 1)


def test_a_replica_gone_past_the_backlog_syncs_in_full(small_segments):
    g = small_segments
    p, r = g.primary, g.replicas[0]
    wait_link_up(r)
    wait_offsets_match(p, [r])
    fulls = full_syncs(p)
    p.proxy.cut()
    try:
        wait_for(lambda: r.info()["master_link_status"] == "down", what="the link to drop")
        behind = repl_offset(r)
        _write_100kb(p, "cut")
        wait_for(lambda: int(p.info()["repl_backlog_first_byte_offset"]) > behind + 1,
                 what="the log to drop what the gone replica needs")
    finally:
        p.proxy.heal()
    wait_link_up(r)
    wait_offsets_match(p, [r])
    assert full_syncs(p) == fulls + 1
    assert_same_data(p.direct, r.direct)


def test_a_silent_link_times_out_on_both_sides_then_continues(small_segments):
    """repl-timeout 2 and a ping a second: with the link paused (nothing
    flows, nothing resets) the replica gives the link up and the primary
    drops the replica, each within about repl-timeout; healed, +CONTINUE."""
    g = small_segments
    p, r = g.primary, g.replicas[0]
    wait_link_up(r)
    for n in (p, r):
        assert call(n.direct, "CONFIG", "SET", "repl-timeout", 2) == b"OK"
    assert call(p.direct, "CONFIG", "SET", "repl-ping-replica-period", 1) == b"OK"
    p.proxy.cut()  # a new link, which takes the new repl-timeout (a running link keeps the one it began with)
    p.proxy.heal()
    wait_link_up(r)
    wait_offsets_match(p, [r])
    conts, fulls = continues(p), full_syncs(p)
    before = len(p.log())
    try:
        p.proxy.pause()
        wait_for(lambda: r.info()["master_link_status"] == "down", timeout=5, what="the replica to time out")
        wait_for(lambda: p.info()["connected_slaves"] == "0", timeout=5, what="the primary to drop the replica")
        # Which side notices first is a race of two 2 s timers (the proxy
        # forwards the replica's close even while paused): the primary either
        # timed the replica out itself or saw it go.
        log_text = p.log()[before:]  # (the cut above logged a disconnect too)
        assert "no REPLCONF ACK for 2 s" in log_text or f"replica {HOST}:{r.port} disconnected" in log_text
        assert call(p.direct, "SET", "silent", "1") == b"OK"
    finally:
        p.proxy.heal()
        for n in (p, r):
            call(n.direct, "CONFIG", "SET", "repl-timeout", 60)
        call(p.direct, "CONFIG", "SET", "repl-ping-replica-period", 10)
    wait_link_up(r)
    wait_offsets_match(p, [r])
    assert (continues(p), full_syncs(p)) == (conts + 1, fulls)
    assert call(r.direct, "GET", "silent") == b"1"
