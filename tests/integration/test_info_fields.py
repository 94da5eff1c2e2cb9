"""INFO, field by field against a real redis-server 7.0.15.

For each section Keel owns here (server, persistence, stats, cpu, modules,
errorstats, commandstats, keyspace) every field name redis-server prints must
be in Keel's output, except the few in ``MISSING_OK`` (none today: the
allow-list is where a field that makes no sense for Keel would go, with its
reason), and each common field's value must parse, with redis-py's own INFO
parser, to the same Python type as Redis's (an int stays an int, a
``x=1,y=2`` line a dict), since that is what exporters and clients read.
Section selection (default, all, everything, several names, an unknown one)
must give Redis's sections in Redis's order.
"""

from __future__ import annotations

import pytest
from redis._parsers.helpers import parse_info

from tests.support import KeelProcess, RedisProcess

SECTIONS = ("server", "persistence", "stats", "cpu", "modules", "errorstats", "commandstats", "keyspace")

# field -> why Keel does not print it (fields of the sections tested here).
MISSING_OK: dict[str, str] = {}

# Fields whose value is text on one server and a number on the other by
# nature, not by mistake.
TYPE_EXEMPT = {
    # Redis prints "12.2.0"-style; Keel the compiler Python was built with,
    # which may be two parts ("12.2") and then reads as a float.
    "gcc_version": "the compiler's version string varies in shape",
}


@pytest.fixture(scope="module")
def servers():
    keel = KeelProcess("--appendonly", "yes").start()
    ref = RedisProcess().start()
    try:
        for p in (keel, ref):
            c = p.client()
            c.call("SET", "a", "1")
            c.call("SET", "b", "2", "EX", "1000")
            c.call("GET", "a")
            c.call("GET", "nokey")
            c.call("INCR", "b", "extra")  # an error: errorstats and failed/rejected counts
            c.call("LPUSH", "a", "x")  # WRONGTYPE
            c.call("SELECT", "3")
            c.call("HSET", "h", "f", "v")
            c.call("CONFIG", "GET", "maxmemory")  # a subcommand in commandstats
            c.close()
        yield keel, ref
    finally:
        keel.cleanup()
        ref.cleanup()


def info(proc, *sections) -> dict:
    c = proc.client()
    try:
        return parse_info(c.call("INFO", *sections))
    finally:
        c.close()


def headers(proc, *sections) -> list:
    c = proc.client()
    try:
        text = c.call("INFO", *sections).decode()
    finally:
        c.close()
    return [line[2:].lower() for line in text.splitlines() if line.startswith("# ")]


@pytest.mark.parametrize("section", SECTIONS)
def test_every_field_redis_prints_is_there_with_the_same_type(servers, section):
    keel, ref = servers
    mine, theirs = info(keel, section), info(ref, section)
    missing = sorted(set(theirs) - set(mine) - set(MISSING_OK))
    assert not missing, f"INFO {section}: Keel lacks {missing}"
    for field, value in theirs.items():
        if field in mine and field not in TYPE_EXEMPT:
            assert type(mine[field]) is type(value), (
                f"INFO {section} {field}: keel {mine[field]!r} vs redis {value!r}")


def test_commandstats_and_errorstats_lines_have_redis_fields(servers):
    keel, ref = servers
    mine, theirs = info(keel, "commandstats"), info(ref, "commandstats")
    for name in ("cmdstat_set", "cmdstat_get", "cmdstat_config|get", "cmdstat_incr", "cmdstat_lpush"):
        assert set(mine[name]) == set(theirs[name]), name
    assert mine["cmdstat_lpush"]["failed_calls"] == theirs["cmdstat_lpush"]["failed_calls"] == 1
    assert mine["cmdstat_set"]["calls"] == theirs["cmdstat_set"]["calls"] == 2
    assert info(keel, "errorstats")["errorstat_WRONGTYPE"] == {"count": 1}
    # (Keel may also count the -LOADING its start-up probe got.)
    assert set(info(ref, "errorstats")) <= set(info(keel, "errorstats"))


def test_keyspace_lines_match(servers):
    keel, ref = servers
    mine, theirs = info(keel, "keyspace"), info(ref, "keyspace")
    assert set(mine) == set(theirs) == {"db0", "db3"}
    for db in ("db0", "db3"):
        assert {k: v for k, v in mine[db].items() if k != "avg_ttl"} == \
            {k: v for k, v in theirs[db].items() if k != "avg_ttl"}
    assert 0 < mine["db0"]["avg_ttl"] <= 1_000_000


def test_values_are_sane(servers):
    keel, _ = servers
    s = info(keel, "server", "stats", "cpu", "persistence")
    assert s["uptime_in_seconds"] >= 0 and s["process_id"] > 0 and len(s["run_id"]) == 40
    assert s["tcp_port"] == keel.port
    assert s["listener0"]["port"] == keel.port and s["listener0"]["name"] == "tcp"
    assert s["total_commands_processed"] >= 10 and s["total_connections_received"] >= 2
    assert s["keyspace_hits"] >= 1 and s["keyspace_misses"] >= 1
    assert s["total_error_replies"] >= 2
    assert s["used_cpu_user"] > 0 and s["used_cpu_user_main_thread"] <= s["used_cpu_user"] + 0.01
    assert s["aof_enabled"] == 1 and s["aof_current_size"] > 0
    assert s["acl_access_denied_auth"] == 0


def test_acl_refusals_are_counted(servers):
    keel, _ = servers
    c = keel.client()
    try:
        before = info(keel, "stats")
        c.call("AUTH", "nobody", "wrong")
        c.call("ACL", "SETUSER", "limited", "on", "nopass", "+get", "~a*")
        c.call("AUTH", "limited", "x")
        c.call("SET", "a", "1")  # no +set
        c.call("GET", "zzz")  # key outside ~a*
        after = info(keel, "stats")
    finally:
        c.close()
    for reason in ("auth", "cmd", "key"):
        assert after[f"acl_access_denied_{reason}"] == before[f"acl_access_denied_{reason}"] + 1, reason
    assert after["acl_access_denied_channel"] == before["acl_access_denied_channel"]


@pytest.mark.parametrize("args", [(), ("default",), ("all",), ("everything",), ("server", "cpu"),
                                  ("SERVER", "cpu", "server"), ("keyspace", "server"), ("default", "commandstats"),
                                  ("nosuch",), ("modules",)])
def test_sections_chosen_and_ordered_as_redis(servers, args):
    keel, ref = servers
    assert headers(keel, *args) == headers(ref, *args)


@pytest.mark.parametrize("selector, sections", [
    ("everything", SECTIONS), ("all", SECTIONS), ("default", tuple(s for s in SECTIONS if s != "commandstats")),
])
def test_combined_selectors_hold_every_field_of_their_sections(servers, selector, sections):
    keel, ref = servers
    for p in (keel, ref):  # an error and a command counted on both, whatever ran before
        c = p.client()
        c.call("LPUSH", "a", "x")
        c.call("INCR", "b", "extra")
        c.close()
    mine = info(keel, selector)
    for section in sections:
        expected = set(info(ref, section)) - set(MISSING_OK) - {"cmdstat_info"}
        missing = sorted(expected - set(mine))
        assert not missing, f"INFO {selector}: Keel lacks {missing} of {section}"
    if selector == "default":
        assert not any(k.startswith("cmdstat_") for k in mine)
