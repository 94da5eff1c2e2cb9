"""CLUSTER, READONLY, READWRITE, ASKING and LOLWUT side by side with a
redis-server started without cluster support: the same refusals, the same
command table entries, ACL rules naming them; LOLWUT's shape as clients read
it (a verbatim string signed ``Redis ver. x.y.z``).

Keel declares Redis 7.2's table, so CLUSTER MYSHARDID (new in 7.2) is left
out of the comparison with the installed 7.0: on 7.0 it is an unknown
subcommand.
"""

from __future__ import annotations

import socket

import hiredis
import pytest

from server.app import REDIS_VERSION
from tests.support import encode

SUBCOMMANDS = [
    ("INFO",), ("NODES",), ("SLOTS",), ("SHARDS",), ("MYID",), ("KEYSLOT", "foo"), ("COUNTKEYSINSLOT", "1"),
    ("GETKEYSINSLOT", "1", "1"), ("RESET",), ("RESET", "HARD"), ("LINKS",), ("REPLICAS", "x"), ("SLAVES", "x"),
    ("COUNT-FAILURE-REPORTS", "x"), ("FAILOVER",), ("FAILOVER", "FORCE"), ("MEET", "1.1.1.1", "1"),
    ("ADDSLOTS", "1"), ("ADDSLOTSRANGE", "1", "2"), ("DELSLOTS", "1"), ("DELSLOTSRANGE", "1", "2"),
    ("FORGET", "x"), ("SAVECONFIG",), ("SETSLOT", "1", "STABLE"), ("BUMPEPOCH",), ("FLUSHSLOTS",),
    ("REPLICATE", "x"), ("SET-CONFIG-EPOCH", "1"), ("HELP",), ("info",),
]
REFUSED_FIRST = [
    ("BOGUS",), ("KEYSLOT",), ("KEYSLOT", "a", "b"), ("INFO", "x"), ("MEET", "1.1.1.1"), ("ADDSLOTS",),
    ("GETKEYSINSLOT", "1"), ("HELP", "x"),
]


@pytest.mark.parametrize("args", SUBCOMMANDS + REFUSED_FIRST, ids=lambda a: " ".join(a))
def test_cluster_subcommands_refused_as_redis(pair, args):
    pair.check("CLUSTER", *args)


def test_cluster_commands_refused_as_redis(pair):
    for cmd in (("CLUSTER",), ("READONLY",), ("READWRITE",), ("ASKING",), ("READONLY", "x"), ("ASKING", "x")):
        pair.check(*cmd)
    pair.check("EVAL", "return redis.pcall('cluster', 'info')", "0")
    pair.check("EVAL", "return redis.pcall('cluster', 'reset')", "0")  # noscript
    pair.check("EVAL", "return redis.pcall('readonly')", "0")
    pair.check("MULTI")
    pair.check("CLUSTER", "INFO")
    pair.check("CLUSTER", "NOPE")
    pair.check("EXEC")
    pair.check("MULTI")
    pair.check("CLUSTER", "KEYSLOT", "k")
    pair.check("ASKING")
    pair.check("EXEC")


def _without_myshardid(entry):
    entry = list(entry)
    entry[9] = sorted((s for s in entry[9] if s[0] != b"cluster|myshardid"), key=lambda s: s[0])
    return entry


def test_command_info_as_redis(pair):
    k, r = pair.both("COMMAND", "INFO", "cluster")
    assert _without_myshardid(k[0]) == _without_myshardid(r[0])
    assert b"cluster|myshardid" in [s[0] for s in k[0][9]]
    pair.check("COMMAND", "INFO", "readonly", "readwrite", "asking", "lolwut")
    pair.check("COMMAND", "GETKEYS", "CLUSTER", "INFO")


def _dryrun(pair, *cmd) -> None:
    """ACL DRYRUN on both: allowed alike; a refusal in each version's words
    (7.2: "User cl_u has …", 7.0: "This user has …")."""
    k, r = pair.both("ACL", "DRYRUN", "cl_u", *cmd)
    if r == b"OK":
        assert k == b"OK", cmd
    else:
        assert r.startswith(b"This user has no permissions to run the '"), r
        assert k == b"User cl_u" + r[len(b"This user"):], cmd


def test_acl_rules_naming_cluster_commands_resolve_as_redis(pair):
    try:
        pair.check("ACL", "SETUSER", "cl_u", "on", "nopass", "+cluster|info", "-cluster|nodes", "+readonly",
                   "+asking", "+lolwut")
        pair.check("ACL", "SETUSER", "cl_u", "+cluster|bogus")
        # (ACL GETUSER lists rules as 7.2 keeps them, in order, where 7.0 rebuilt them: Keel's alone)
        k, _ = pair.both("ACL", "GETUSER", "cl_u")
        assert k[5] == b"-@all +cluster|info -cluster|nodes +readonly +asking +lolwut"
        _dryrun(pair, "CLUSTER", "INFO")
        _dryrun(pair, "CLUSTER", "NODES")
        _dryrun(pair, "READONLY")
        _dryrun(pair, "READWRITE")
        _dryrun(pair, "LOLWUT")
        pair.check("ACL", "SETUSER", "cl_u", "reset", "+@connection", "-cluster")
        _dryrun(pair, "READONLY")
        _dryrun(pair, "CLUSTER", "INFO")
        pair.check("ACL", "SETUSER", "cl_u", "+cluster", "-cluster|info")
        _dryrun(pair, "CLUSTER", "INFO")
        _dryrun(pair, "CLUSTER", "NODES")
        for cat in ("connection", "admin", "slow", "dangerous", "fast", "read"):
            k, r = pair.both("ACL", "CAT", cat)
            names = {b"readonly", b"readwrite", b"asking", b"lolwut", b"cluster|info", b"cluster|reset"}
            assert set(k) & names == set(r) & names, cat
    finally:
        pair.both("ACL", "DELUSER", "cl_u")


def _raw(port: int, *cmds) -> list:
    """Each reply as the bytes the server sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        out = []
        for cmd in cmds:
            s.sendall(encode(cmd))
            reader, data = hiredis.Reader(), b""
            while True:
                chunk = s.recv(65536)
                data += chunk
                reader.feed(chunk)
                if reader.gets() is not False:
                    break
            out.append(data)
        return out


def test_lolwut_as_clients_read_it(keel, redis_ref, pair):
    for port, version in ((keel.port, REDIS_VERSION), (redis_ref.port, None)):
        plain, v5, v6, other = _raw(port, ("LOLWUT",), ("LOLWUT", "VERSION", "5", "10", "3", "2"),
                                    ("LOLWUT", "VERSION", "6", "12", "4"), ("LOLWUT", "VERSION", "99"))
        version = version or plain.split(b"Redis ver. ")[1].split(b"\n")[0].decode()
        sign = f"Redis ver. {version}\n".encode()
        assert plain == b"$%d\r\n%s\r\n" % (len(sign), sign)  # RESP2: a bulk string
        assert other == plain
        for art in (v5, v6):
            assert art.startswith(b"$") and art.endswith(sign + b"\r\n") and len(art) > len(plain) + 20
        (resp3_plain,) = _raw(port, ("HELLO", "3"), ("LOLWUT",))[1:]
        assert resp3_plain == b"=%d\r\ntxt:%s\r\n" % (len(sign) + 4, sign)
    for args in (("VERSION",), ("foo",), ("VERSION", "x"), ("VERSION", "5", "x"), ("VERSION", "6", "1", "y"),
                 ("VERSION", "0"), ("VERSION", "-1")):
        k, r = pair.both("LOLWUT", *args)
        if isinstance(r, bytes):
            assert isinstance(k, bytes) and k.endswith(b"Redis ver. %s\n" % REDIS_VERSION.encode())
            assert r.split(b"Redis ver.")[0] == b"" and k.split(b"Redis ver.")[0] == b""
        else:
            assert k == r


def test_lolwut_arguments_clamped_as_redis(k):
    """Redis clamps the sizes (v5: 1..1000 columns, 1..200 squares; v6: 1..1000 each)."""
    small = k.call("LOLWUT", "VERSION", "5", "-5", "0", "-1")
    assert small.endswith(b"Redis ver. %s\n" % REDIS_VERSION.encode())
    big = k.call("LOLWUT", "VERSION", "6", "5000", "3")
    rows = big.split(b"\n")
    assert max(len(row.decode()) for row in rows[:-2]) == 1000


def test_redis_py_lolwut(r):
    assert "Redis ver." in r.lolwut().decode()
    assert "Redis ver." in r.lolwut(5, 6, 7, 8).decode()
