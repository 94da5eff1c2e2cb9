"""INFO: sections, the fields tools read, and the counters behind them."""

from __future__ import annotations

import time

import pytest

from server import info as info_mod
from tests.support import Err, KeelProcess


def _info(k, *sections) -> dict:
    return info_mod.parse(k.call("INFO", *sections).decode())


def _titles(text: bytes) -> list:
    return [line[2:] for line in text.decode().splitlines() if line.startswith("# ")]


def test_default_sections_in_redis_order(k):
    assert _titles(k.call("INFO")) == ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication",
                                        "CPU", "Modules", "Errorstats", "Cluster", "Keyspace"]


def test_all_and_everything_add_commandstats(k):
    for arg in ("all", "everything"):
        titles = _titles(k.call("INFO", arg))
        assert "Commandstats" in titles and titles.index("Commandstats") < titles.index("Keyspace")


def test_sections_named_explicitly_case_insensitive(k):
    assert _titles(k.call("INFO", "CLIENTS", "server")) == ["Server", "Clients"]


def test_unknown_section_is_empty_like_redis(pair):
    pair.check("INFO", "nosuchsection")


def test_lines_end_with_crlf_and_sections_are_separated_by_a_blank_line(k):
    text = k.call("INFO", "server", "clients")
    assert text.startswith(b"# Server\r\n")
    assert b"\r\n\r\n# Clients\r\n" in text
    assert b"\n" not in text.replace(b"\r\n", b"")


def test_server_fields(k, keel):
    f = _info(k, "server")
    assert f["redis_version"] == "7.2.0"
    assert f["keel_version"]
    assert f["redis_mode"] == "standalone"
    assert f["arch_bits"] in ("32", "64")
    assert f["os"]
    assert int(f["process_id"]) == keel.proc.pid
    assert len(f["run_id"]) == 40
    assert int(f["tcp_port"]) == keel.port
    assert int(f["uptime_in_seconds"]) >= 0


def test_clients_fields(k, keel):
    before = int(_info(k, "clients")["connected_clients"])
    other = keel.client()
    try:
        other.call("PING")
        assert int(_info(k, "clients")["connected_clients"]) == before + 1
    finally:
        other.close()
    assert int(_info(k, "clients")["maxclients"]) == int(k.call("CONFIG", "GET", "maxclients")[1])


def test_memory_fields(k):
    f = _info(k, "memory")
    # The nominal 1 MB start plus this client's buffers; the process's RSS apart.
    assert int(f["used_memory"]) >= int(f["used_memory_startup"]) == 1 << 20
    assert int(f["used_memory_rss"]) > int(f["used_memory"])
    assert f["used_memory_human"][-1] in "BKMGT"
    assert int(f["used_memory_peak"]) >= int(f["used_memory"])
    assert f["maxmemory"] == "0" and f["maxmemory_policy"] == "noeviction"


def test_persistence_fields_count_changes(k):
    before = int(_info(k, "persistence")["rdb_changes_since_last_save"])
    k.call("SET", "a", "1")
    k.call("SET", "b", "2")
    f = _info(k, "persistence")
    assert f["loading"] == "0"
    assert int(f["rdb_changes_since_last_save"]) >= before + 2
    assert f["aof_enabled"] in ("0", "1")


def test_stats_count_commands_and_connections(k, keel):
    f1 = _info(k, "stats")
    keel.client().close()
    k.call("PING")
    f2 = _info(k, "stats")
    assert int(f2["total_commands_processed"]) >= int(f1["total_commands_processed"]) + 2
    assert int(f2["total_connections_received"]) == int(f1["total_connections_received"]) + 1
    for field in ("instantaneous_ops_per_sec", "rejected_connections", "expired_keys", "evicted_keys",
                  "keyspace_hits", "keyspace_misses", "total_error_replies"):
        assert int(f2[field]) >= 0


def test_expired_keys_counts_lazy_expiry(k):
    before = int(_info(k, "stats")["expired_keys"])
    k.call("SET", "a", "1")
    k.call("PEXPIRE", "a", "1")
    time.sleep(0.05)
    assert k.call("GET", "a") is None
    assert int(_info(k, "stats")["expired_keys"]) == before + 1


def test_replication_fields(k):
    f = _info(k, "replication")
    assert f["role"] == "master"
    assert f["connected_slaves"] == "0"
    assert len(f["master_replid"]) == 40
    assert int(f["master_repl_offset"]) >= 0


def test_cpu_fields(k):
    f = _info(k, "cpu")
    assert float(f["used_cpu_sys"]) >= 0 and float(f["used_cpu_user"]) > 0


def test_keyspace_lists_non_empty_databases(pair):
    pair.check("INFO", "keyspace")
    pair.check("SET", "a", "1")
    pair.check("SET", "b", "1")
    pair.check("SELECT", "3")
    pair.check("SET", "c", "1")
    pair.check("INFO", "keyspace")


def test_keyspace_counts_expires_and_averages_ttls(k):
    k.call("SET", "a", "1")
    k.call("SET", "b", "1")
    k.call("EXPIRE", "b", "100")
    line = _info(k, "keyspace")["db0"]
    fields = dict(part.split("=") for part in line.split(","))
    assert fields["keys"] == "2" and fields["expires"] == "1"
    assert 90_000 < int(fields["avg_ttl"]) <= 100_000


def test_commandstats_counts_calls_and_failures(k):
    k.call("CONFIG", "RESETSTAT")
    k.call("ECHO", "x")
    k.call("ECHO", "y")
    k.call("ECHO")  # rejected: wrong arity
    stats = _info(k, "commandstats")
    echo = dict(part.split("=") for part in stats["cmdstat_echo"].split(","))
    assert echo["calls"] == "2" and echo["rejected_calls"] == "1" and echo["failed_calls"] == "0"
    assert float(echo["usec_per_call"]) >= 0 and int(echo["usec"]) >= 0


def test_errorstats_count_error_prefixes(k):
    k.call("CONFIG", "RESETSTAT")
    assert k.call("NOSUCHCOMMAND").startswith("ERR unknown command")
    assert k.call("SELECT", "x") == Err("ERR value is not an integer or out of range")
    f = _info(k, "errorstats")
    assert f["errorstat_ERR"] == "count=2"
    assert int(_info(k, "stats")["total_error_replies"]) == 2


def test_info_parses_with_redis_py(r):
    info = r.info("all")
    assert info["redis_version"] == "7.2.0"
    assert info["role"] == "master"
    assert isinstance(info["connected_clients"], int)


def test_info_is_a_verbatim_string_in_resp3(keel):
    c = keel.client()
    try:
        c.call("HELLO", "3")
        c.send_raw(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        c.sock.settimeout(2)
        assert c.sock.recv(16).startswith(b"=")
    finally:
        c.close()


@pytest.mark.parametrize("n,text", [(0, "0B"), (1023, "1023B"), (1024, "1.00K"), (1536, "1.50K"),
                                    (5 << 20, "5.00M"), (3 << 30, "3.00G")])
def test_human_bytes_as_redis_prints_them(n, text):
    assert info_mod.human_bytes(n) == text


def test_register_section_replaces_a_section():
    saved = info_mod.SECTIONS["cluster"]
    try:
        info_mod.register_section("cluster", "Cluster", lambda server: [("cluster_enabled", 1)])
        assert info_mod.generate(None, ["cluster"]) == "# Cluster\r\ncluster_enabled:1\r\n"
    finally:
        info_mod.SECTIONS["cluster"] = saved


def test_instantaneous_ops_per_sec_reflects_load():
    p = KeelProcess().start()
    try:
        c = p.client()
        c.call("INFO", "stats")  # starts the sampler
        for _ in range(20):
            c.pipeline([("PING",)] * 200)
        time.sleep(0.3)  # at least two 100 ms samples
        assert int(info_mod.parse(c.call("INFO", "stats").decode())["instantaneous_ops_per_sec"]) > 0
    finally:
        p.cleanup()


def test_total_commands_counts_executed_commands_as_redis_does(pair):
    # Rejected commands (unknown, wrong arity) are not counted; a command that
    # ran and failed is; so is the INFO that reports the figure.
    for c in (pair.keel, pair.ref):
        c.call("CONFIG", "RESETSTAT")
        c.call("NOSUCHCOMMAND")
        c.call("GET")
        c.call("SET", "x", "y")
        c.call("INCR", "x")
        c.call("MGET", "x", "y")
    got = [_info(c, "stats")["total_commands_processed"] for c in (pair.keel, pair.ref)]
    assert got == ["4", "4"]
