"""The ACL file (``aclfile``, ACL LOAD/SAVE) and ``user`` lines in the config,
each on a Keel process of its own; errors compared with redis-server's words.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT, Err, KeelProcess, free_port, wait_ready

NOT_CONFIGURED = Err(
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the "
    "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) "
    "in order to store users in the Redis configuration.")
UNCHANGED = "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"


@pytest.fixture
def aclpath(tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user alice on >pw ~k* +get\n\n# a comment\nuser default on nopass ~* &* +@all\n")
    return str(path)


@pytest.fixture
def server(aclpath):
    proc = KeelProcess("--aclfile", aclpath).start()
    yield proc
    proc.cleanup()


def test_users_come_from_the_aclfile(server):
    c = server.client()
    assert c.call("ACL", "LIST") == [
        b"user alice on sanitize-payload #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 "
        b"~k* resetchannels -@all +get",
        b"user default on nopass sanitize-payload ~* &* +@all",
    ]
    a = server.client()
    assert a.call("AUTH", "alice", "pw") == b"OK"
    assert a.call("GET", "k1") is None
    assert a.call("SET", "k1", "v") == Err("NOPERM User alice has no permissions to run the 'set' command")


def test_save_then_load_round_trips(server, aclpath):
    c = server.client()
    assert c.call("ACL", "SETUSER", "bob", "on", ">x", "%R~r*", "&ch", "+@read", "(+set ~s*)") == b"OK"
    before = c.call("ACL", "LIST")
    assert c.call("ACL", "SAVE") == b"OK"
    with open(aclpath) as f:
        assert f.read().splitlines() == [line.decode() for line in before]
    assert c.call("ACL", "DELUSER", "bob") == 1
    assert c.call("ACL", "LOAD") == b"OK"
    assert c.call("ACL", "LIST") == before


def test_load_disconnects_users_other_than_default(server, aclpath):
    c = server.client()
    a = server.client()
    assert a.call("AUTH", "alice", "pw") == b"OK"
    assert c.call("ACL", "LOAD") == b"OK"
    with pytest.raises((ConnectionError, OSError)):
        a.call("GET", "k")
    assert c.call("PING") == b"PONG"  # the default user's clients stay


@pytest.mark.parametrize("text,error", [
    ("user a on >x +get ~k*\nuser b on +nosuch\n",
     "ERR {path}:2: Error in applying operation '+nosuch': Unknown command or category name in ACL. " + UNCHANGED),
    ("user a on >x +get ~k*\nuser a on\n", "ERR WARNING: Duplicate user 'a' found on line 2. " + UNCHANGED),
    ("foo a on\n", "ERR {path}:1 should start with user keyword followed by the username. " + UNCHANGED),
])
def test_a_bad_file_changes_nothing(server, aclpath, text, error):
    c = server.client()
    before = c.call("ACL", "LIST")
    with open(aclpath, "w") as f:
        f.write(text)
    assert c.call("ACL", "LOAD") == Err(error.format(path=aclpath))
    assert c.call("ACL", "LIST") == before


def test_the_default_user_keeps_its_rules_when_the_file_omits_it(server, aclpath):
    c = server.client()
    assert c.call("ACL", "SETUSER", "default", "resetpass", ">secret") == b"OK"
    with open(aclpath, "w") as f:
        f.write("user alice on >pw +get\n")
    assert c.call("ACL", "LOAD") == b"OK"
    assert c.call("ACL", "LIST")[1] == b"user default on nopass sanitize-payload ~* &* +@all"


def test_load_and_save_without_an_aclfile(k):
    assert k.call("ACL", "LOAD") == NOT_CONFIGURED
    assert k.call("ACL", "SAVE") == NOT_CONFIGURED


def test_load_and_save_without_an_aclfile_match_redis(pair):
    pair.check("ACL", "LOAD")
    pair.check("ACL", "SAVE")


def _start_fails(*args) -> str:
    port = free_port()
    p = subprocess.run([sys.executable, "-m", "server", "--port", str(port), "--dir", os.path.join("/tmp", f"keel-acl-{port}"),
                        *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    return p.stderr


def test_a_bad_aclfile_stops_the_start(tmp_path):
    bad = tmp_path / "bad.acl"
    bad.write_text("user a on +nosuch\n")
    err = _start_fails("--aclfile", str(bad))
    assert "Aborting Keel startup because of ACL errors" in err and "'+nosuch'" in err
    err = _start_fails("--aclfile", str(tmp_path / "missing.acl"))
    assert "Error loading ACLs, opening file" in err


def test_user_lines_in_the_config():
    proc = KeelProcess("--user", "carol", "on", ">pw", "~c*", "+@all", "--acllog-max-len", "2").start()
    try:
        c = proc.client()
        assert c.call("ACL", "GETUSER", "carol")[5] == b"+@all"
        a = proc.client()
        assert a.call("AUTH", "carol", "pw") == b"OK"
        for key in ("x1", "x2", "x3"):
            assert a.call("GET", key) == Err("NOPERM No permissions to access a key")
        assert [e[7] for e in c.call("ACL", "LOG")] == [b"x3", b"x2"]  # acllog-max-len entries kept
    finally:
        proc.cleanup()


def test_user_lines_and_aclfile_together_stop_the_start(aclpath):
    err = _start_fails("--aclfile", aclpath, "--user", "x", "on")
    assert "Aborting Keel startup because of ACL errors" in err


def test_config_file_user_lines(tmp_path):
    from server.config import Config

    conf = tmp_path / "keel.conf"
    conf.write_text('port 7000\nuser dave on ">p w" ~d* +get\n')
    cfg = Config()
    cfg.load_file(str(conf))
    assert cfg.user_lines == ["user dave on '>p w' '~d*' +get"]


def test_acl_directives(pair):
    k, r = pair.both("CONFIG", "GET", "acl*")
    assert dict(zip(k[::2], k[1::2])) == dict(zip(r[::2], r[1::2]))
    pair.check("CONFIG", "SET", "acllog-max-len", "-1")
    pair.check("CONFIG", "SET", "acl-pubsub-default", "x")
    pair.check("CONFIG", "SET", "aclfile", "/tmp/x")


def test_acl_pubsub_default_gives_new_users_their_channels(pair):
    try:
        pair.check("CONFIG", "SET", "acl-pubsub-default", "allchannels")
        k, r = pair.both("ACL", "SETUSER", "pubber")
        assert k == r == b"OK"
        assert pair.keel.call("ACL", "GETUSER", "pubber")[9] == pair.ref.call("ACL", "GETUSER", "pubber")[9] == b"&*"
    finally:
        for c in (pair.keel, pair.ref):
            c.call("CONFIG", "SET", "acl-pubsub-default", "resetchannels")
            c.call("ACL", "DELUSER", "pubber")


def _start_with_config(conf) -> KeelProcess:
    """A Keel process whose first argument is a config file (KeelProcess puts its own flags first)."""
    proc = KeelProcess()
    proc.proc = subprocess.Popen([sys.executable, "-m", "server", str(conf), "--port", str(proc.port), "--dir",
                                  proc.dir, "--logfile", proc.log_path], cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
    wait_ready(proc.port, proc.proc)
    return proc


def test_config_rewrite_writes_the_users(tmp_path):
    """As redis-server: every user, sorted by name, the first in the first user line's place."""
    conf = tmp_path / "keel.conf"
    conf.write_text("# users\nuser old on >x +get\n")
    proc = _start_with_config(conf)
    try:
        c = proc.client()
        assert c.call("ACL", "SETUSER", "newu", "on", "~k", "+set") == b"OK"
        assert c.call("CONFIG", "REWRITE") == b"OK"
        lines = conf.read_text().splitlines()
        assert lines[:2] == ["# users", "user default on nopass sanitize-payload ~* &* +@all"]
        assert lines[-2:] == [
            "user newu on sanitize-payload ~k resetchannels -@all +set",
            "user old on sanitize-payload #2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 "
            "resetchannels -@all +get",
        ]
    finally:
        proc.cleanup()
