"""CONFIG GET/SET/RESETSTAT/REWRITE/HELP, and the directive parsers behind them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import server.commands  # noqa: F401
from engine.registry import COMMANDS
from server.config import Config, ConfigError, SetError, parse_memory
from tests.support import ROOT, Err, KeelProcess, RespClient, free_port, help_subcommands, wait_ready


def _as_dict(reply):
    return dict(zip(reply[0::2], reply[1::2]))


# --- parsers (no server) -------------------------------------------------------------

@pytest.mark.parametrize("text,value", [("0", 0), ("100", 100), ("1k", 1000), ("1kb", 1024), ("2MB", 2 << 20),
                                        ("1g", 10**9), ("1gb", 1 << 30)])
def test_memory_units(text, value):
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["", "k", "1x", "1.5mb", "--1"])
def test_memory_rejects_bad_values(text):
    with pytest.raises(ConfigError):
        parse_memory(text)


def test_set_many_applies_nothing_when_one_value_is_bad():
    cfg = Config()
    with pytest.raises(SetError) as e:
        cfg.set_many([("hz", "20"), ("maxclients", "lots")])
    assert e.value.name == "maxclients"
    assert cfg["hz"] == 10


def test_set_many_checks_names_before_values():
    cfg = Config()
    with pytest.raises(SetError) as e:
        cfg.set_many([("hz", "bad"), ("nosuch", "1")])
    assert e.value.name == "nosuch" and e.value.reason is None


def test_set_many_refuses_an_alias_and_its_name_together():
    with pytest.raises(SetError) as e:
        Config().set_many([("replica-read-only", "yes"), ("slave-read-only", "no")])
    assert e.value.reason == "duplicate parameter"


def test_listeners_hear_every_change():
    cfg = Config()
    heard = []
    cfg.listeners.append(lambda name, value: heard.append((name, value)))
    cfg.set_many([("appendfsync", "everysec"), ("hz", "50")])
    assert heard == [("appendfsync", "everysec"), ("hz", 50)]


def test_rewrite_keeps_comments_and_updates_values(tmp_path):
    path = tmp_path / "keel.conf"
    path.write_text("# my settings\nport 7000\nhz 20\nhz 30\n")
    cfg = Config()
    cfg.load_args([str(path)])
    cfg.set_many([("hz", "40"), ("maxmemory", "1mb")])
    cfg.rewrite()
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# my settings", "port 7000", "hz 40"]
    assert "maxmemory 1048576" in lines and lines.count("hz 40") == 1
    again = Config()
    again.load_args([str(path)])
    assert again["hz"] == 40 and again["maxmemory"] == 1 << 20 and again["port"] == 7000


# --- CONFIG GET ---------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["timeout", "maxmemory-policy", "databases", "tcp-keepalive", "hz",
                                     "slowlog-max-len", "nosuch-directive"])
def test_config_get_matches_redis(pair, pattern):
    pair.check("CONFIG", "GET", pattern)


def test_config_get_several_patterns(pair):
    pair.check("CONFIG", "GET", "timeout", "hz", "databases", sort=True)


def test_config_get_glob_includes_aliases(k):
    got = _as_dict(k.call("CONFIG", "GET", "hash-max-*"))
    assert set(got) == {b"hash-max-listpack-entries", b"hash-max-listpack-value",
                        b"hash-max-ziplist-entries", b"hash-max-ziplist-value"}


def test_config_get_is_a_map_in_resp3(keel):
    c = keel.client()
    try:
        c.call("HELLO", "3")
        assert c.call("CONFIG", "GET", "timeout", "hz") == {b"timeout": b"0", b"hz": b"10"}
    finally:
        c.close()


def test_config_get_arity(pair):
    pair.check("CONFIG", "GET")
    pair.check("CONFIG")


# --- CONFIG SET ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("foo", "1"), ("maxclients", "x"), ("hz", "5", "hz", "6"), ("hz", "5", "foo", "6"), ("hz", "1", "maxclients"),
    ("appendonly", "maybe"), ("maxmemory", "1x"), ("timeout", "-1"),
])
def test_config_set_errors_match_redis(pair, args):
    pair.check("CONFIG", "SET", *args)


def test_config_set_enum_names_the_choices(k):
    # Redis 7.2's list (7.0, the reference, lacks "nothing").
    assert k.call("CONFIG", "SET", "loglevel", "loud") == Err(
        "ERR CONFIG SET failed (possibly related to argument 'loglevel') - "
        "argument(s) must be one of the following: debug, verbose, notice, warning, nothing")


def test_config_set_immutable(k):
    assert k.call("CONFIG", "SET", "databases", "4") == Err(
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config")


def test_config_set_several_pairs(pair):
    try:
        pair.check("CONFIG", "SET", "slowlog-max-len", "64", "maxmemory-policy", "allkeys-lru")
        pair.check("CONFIG", "GET", "slowlog-max-len")
        pair.check("CONFIG", "GET", "maxmemory-policy")
    finally:
        pair.both("CONFIG", "SET", "slowlog-max-len", "128", "maxmemory-policy", "noeviction")


def test_config_set_is_all_or_nothing(k):
    assert k.call("CONFIG", "SET", "slowlog-max-len", "7", "hz", "bad").startswith("ERR CONFIG SET failed")
    assert k.call("CONFIG", "GET", "slowlog-max-len") == [b"slowlog-max-len", b"128"]


def test_config_set_memory_units_read_back_in_bytes(pair):
    try:
        pair.check("CONFIG", "SET", "maxmemory", "10mb")
        pair.check("CONFIG", "GET", "maxmemory")
    finally:
        pair.both("CONFIG", "SET", "maxmemory", "0")


def test_config_set_maxclients_applies_to_the_next_connection():
    p = KeelProcess().start()
    try:
        a = p.client()
        assert a.call("CONFIG", "SET", "maxclients", "1") == b"OK"
        b = p.client()
        assert b.read() == Err("ERR max number of clients reached")
        b.close()
        assert a.call("CONFIG", "SET", "maxclients", "10") == b"OK"
        assert p.client().call("PING") == b"PONG"
    finally:
        p.cleanup()


def test_config_set_timeout_closes_idle_clients():
    p = KeelProcess().start()
    try:
        a = p.client()
        idle = p.client()
        idle_id = idle.call("CLIENT", "ID")
        assert a.call("CONFIG", "SET", "timeout", "1") == b"OK"
        deadline = time.time() + 6
        while time.time() < deadline and b"id=%d " % idle_id in a.call("CLIENT", "LIST"):
            time.sleep(0.2)
        with pytest.raises(ConnectionError):
            idle.call("PING")
    finally:
        p.cleanup()


def test_config_set_proto_max_bulk_len_applies_to_the_next_request(keel):
    admin, c = keel.client(), keel.client()
    try:
        assert admin.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"OK"
        c.send_raw(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n")
        assert c.read() == Err("ERR Protocol error: invalid bulk length")
    finally:
        admin.call("CONFIG", "SET", "proto-max-bulk-len", "512mb")
        admin.close()
        c.close()


# --- CONFIG RESETSTAT, REWRITE, HELP ----------------------------------------------------

def test_config_resetstat_zeroes_counters(k):
    k.call("PING")
    k.call("NOSUCHCOMMAND")
    assert k.call("CONFIG", "RESETSTAT") == b"OK"
    info = k.call("INFO", "stats", "commandstats", "errorstats").decode()
    assert "total_error_replies:0" in info
    assert "cmdstat_ping" not in info and "errorstat_ERR" not in info


def test_config_rewrite_without_file(pair):
    pair.check("CONFIG", "REWRITE")


def test_config_rewrite_writes_the_running_values(tmp_path):
    conf = tmp_path / "keel.conf"
    conf.write_text("# test\nhz 10\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server", str(conf), "--port", str(port), "--dir", str(tmp_path),
                             "--logfile", str(tmp_path / "keel.log")], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        c = RespClient(port)
        assert c.call("CONFIG", "SET", "hz", "25") == b"OK"
        assert c.call("CONFIG", "REWRITE") == b"OK"
        assert conf.read_text().splitlines()[:2] == ["# test", "hz 25"]
        assert not os.path.exists(str(conf) + ".tmp")
        c.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_config_help_and_unknown_subcommand(pair):
    assert help_subcommands(pair.keel, "CONFIG") == set(COMMANDS["config"].subcommands)
    pair.check("CONFIG", "HELP", "extra")
    pair.check("CONFIG", "NOSUCH")
