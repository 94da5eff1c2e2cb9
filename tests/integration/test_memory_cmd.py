"""MEMORY and INFO memory side by side with redis-server: the replies' shapes,
the errors in Redis's words, the fields; and Keel's figures following its data.

The figures themselves differ (Keel counts what CPython spends, Redis what
jemalloc does), so the side-by-side checks compare types, field names and
errors; the figures are checked on Keel alone: they rise with data and fall
back when it goes.
"""

from __future__ import annotations

import pytest

from tests.support import Err, encode


def info_fields(client) -> dict:
    text = client.call("INFO", "memory").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if line and not line.startswith("#"))


def stats_map(reply: list) -> dict:
    return dict(zip(reply[::2], reply[1::2]))


# --- MEMORY USAGE ----------------------------------------------------------------

def test_usage_of_a_missing_key_is_nil(pair):
    assert pair.check("MEMORY", "USAGE", "nokey") is None
    assert pair.check("MEMORY", "USAGE", "nokey", "SAMPLES", "0") is None


def test_usage_of_each_type_is_an_integer_beyond_its_content(pair):
    pair.both("SET", "s", "x" * 100)
    pair.both("HSET", "h", *[f"f{i}" for i in range(400)])
    pair.both("RPUSH", "l", *range(200))
    pair.both("SADD", "set", *range(1000))
    pair.both("ZADD", "z", "1", "a", "2", "b")
    pair.both("XADD", "x", "*", "f", "v")
    for key in ("s", "h", "l", "set", "z", "x"):
        k, r = pair.both("MEMORY", "USAGE", key)
        assert isinstance(k, int) and isinstance(r, int), key
        assert k > 16 and r > 16, key
    assert pair.keel.call("MEMORY", "USAGE", "s") > 100
    assert pair.keel.call("MEMORY", "USAGE", "set", "SAMPLES", "0") > 1000 * 8


@pytest.mark.parametrize("args", [
    ("SAMPLES",), ("SAMPLES", "-1"), ("SAMPLES", "x"), ("FOO", "1"), ("SAMPLES", "1", "2"),
])
def test_usage_option_errors_are_redis_words(pair, args):
    pair.both("SET", "a", "b")
    k = pair.check("MEMORY", "USAGE", "a", *args)
    assert isinstance(k, Err)
    assert isinstance(pair.check("MEMORY", "USAGE", "nokey", *args), Err)


@pytest.mark.parametrize("args", [
    ("USAGE",), ("STATS", "x"), ("DOCTOR", "x"), ("PURGE", "x"), ("MALLOC-STATS", "x"), ("HELP", "x"), ("FOO",),
])
def test_arity_and_unknown_subcommand_errors_are_redis_words(pair, args):
    assert isinstance(pair.check("MEMORY", *args), Err)


def test_memory_without_subcommand_is_an_arity_error(pair):
    assert isinstance(pair.check("MEMORY"), Err)


def test_usage_follows_the_value_and_counts_the_ttl(k):
    k.call("SET", "s", "x")
    small = k.call("MEMORY", "USAGE", "s")
    k.call("SET", "s", "x" * 1000)
    assert k.call("MEMORY", "USAGE", "s") > small + 900
    before = k.call("MEMORY", "USAGE", "s")
    k.call("EXPIRE", "s", "100")
    assert k.call("MEMORY", "USAGE", "s") > before


# --- MEMORY STATS / DOCTOR / MALLOC-STATS / PURGE / HELP ------------------------

def test_stats_has_redis_fields_in_redis_order(pair):
    pair.both("SET", "a", "b")
    k, r = pair.both("MEMORY", "STATS")
    assert k[::2] == r[::2]
    ks, rs = stats_map(k), stats_map(r)
    assert stats_map(ks[b"db.0"]).keys() == stats_map(rs[b"db.0"]).keys()
    assert ks[b"keys.count"] == rs[b"keys.count"] == 1
    for name in (b"peak.allocated", b"total.allocated", b"startup.allocated", b"dataset.bytes"):
        assert isinstance(ks[name], int) and isinstance(rs[name], int), name
    for name in (b"dataset.percentage", b"peak.percentage", b"fragmentation"):
        assert float(ks[name]) >= 0 and float(rs[name]) >= 0, name


def test_stats_lists_only_databases_with_keys(k):
    k.call("SELECT", "5")
    k.call("SET", "a", "b")
    names = k.call("MEMORY", "STATS")[::2]
    assert b"db.5" in names and b"db.0" not in names
    k.call("SELECT", "0")


def test_doctor_malloc_stats_and_purge_reply_as_redis(pair):
    k, r = pair.both("MEMORY", "DOCTOR")
    assert isinstance(k, bytes) and isinstance(r, bytes)
    assert k.startswith(b"Keel here") and b"no data" in k  # an empty instance, in Keel's words
    k, r = pair.both("MEMORY", "MALLOC-STATS")
    assert isinstance(k, bytes) and isinstance(r, bytes)
    assert k.startswith(b"___ Keel memory statistics") and b"resident" in k
    assert pair.check("MEMORY", "PURGE") == b"OK"


def raw_reply(c, *args) -> bytes:
    """One bulk-like reply read off the socket: its type byte, then its payload."""
    c.send_raw(encode(args))
    buf = b""
    while b"\r\n" not in buf:
        buf += c.sock.recv(65536)
    head, rest = buf.split(b"\r\n", 1)
    n = int(head[1:])
    while len(rest) < n + 2:
        rest += c.sock.recv(65536)
    return head[:1] + rest[:n]


def test_doctor_and_malloc_stats_are_verbatim_text_in_resp3(keel):
    c = keel.client()
    try:
        c.call("HELLO", "3")
        assert raw_reply(c, "MEMORY", "DOCTOR").startswith(b"=txt:Keel here")
        assert raw_reply(c, "MEMORY", "MALLOC-STATS").startswith(b"=txt:___ Keel memory statistics")
    finally:
        c.close()


def test_help_lists_every_subcommand(k):
    text = b"\n".join(x if isinstance(x, bytes) else x.encode() for x in k.call("MEMORY", "HELP"))
    for sub in (b"DOCTOR", b"MALLOC-STATS", b"PURGE", b"STATS", b"USAGE <key> [SAMPLES <count>]", b"HELP"):
        assert sub in text


def test_command_info_of_the_subcommands_is_redis(pair):
    for sub in ("usage", "stats", "doctor", "malloc-stats", "purge", "help"):
        pair.check("COMMAND", "INFO", f"memory|{sub}")


def test_the_doctor_reports_a_peak_far_above_the_present(keel):
    c = keel.client(timeout=60)
    try:
        c.call("FLUSHALL")
        c.call("DEBUG", "POPULATE", "60000", "key", "100")
        c.call("FLUSHALL")
        c.call("DEBUG", "POPULATE", "30000", "key", "100")
        assert b"Peak memory" in c.call("MEMORY", "DOCTOR")
    finally:
        c.call("FLUSHALL")
        c.close()


# --- INFO memory ----------------------------------------------------------------------

def test_info_memory_has_redis_fields_in_redis_order(pair):
    k, r = info_fields(pair.keel), info_fields(pair.ref)
    assert list(k) == list(r)
    assert k["mem_allocator"] == "pymalloc"
    assert k["maxmemory_policy"] == r["maxmemory_policy"] == "noeviction"
    assert k["used_memory_peak_perc"].endswith("%") and k["used_memory_dataset_perc"].endswith("%")


def test_used_memory_rises_with_data_and_falls_when_it_goes(keel):
    c = keel.client(timeout=60)
    try:
        c.call("FLUSHALL")
        start = int(info_fields(c)["used_memory"])
        c.call("DEBUG", "POPULATE", "20000", "key", "50")
        full = info_fields(c)
        grown = int(full["used_memory"]) - start
        assert grown > 20000 * 100  # a key and a 50-byte value cost more than 100 bytes
        assert int(full["used_memory_dataset"]) > 20000 * 50
        assert int(full["used_memory_rss"]) > int(full["used_memory"])
        for i in range(0, 20000, 2):
            c.send_raw(b"*2\r\n$3\r\nDEL\r\n$%d\r\nkey:%d\r\n" % (len(b"key:%d" % i), i))
        for _ in range(0, 20000, 2):
            c.read()
        half = int(info_fields(c)["used_memory"]) - start
        assert abs(half - grown / 2) < grown * 0.05
        c.call("FLUSHALL")
        end = info_fields(c)
        assert abs(int(end["used_memory"]) - start) < grown * 0.02
        assert int(end["used_memory_peak"]) >= start + grown
    finally:
        c.call("FLUSHALL")
        c.close()
