"""A read whose requests are their own effects is journaled byte for byte.

``Persistence.journal`` appends the read's raw bytes as the record when every
request in it recorded itself as its effect (a pipeline of plain SETs), and
encodes the effects otherwise. Both must replay to the same state: these
tests write through each path, kill the server, and read back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.support import ROOT, KeelProcess, encode


@pytest.fixture
def keel():
    d = tempfile.mkdtemp(prefix="keel-journal-")
    k = KeelProcess(dir=d).start()
    yield k
    k.cleanup()
    shutil.rmtree(d, ignore_errors=True)


def restart(keel):
    keel.kill()
    keel.start()
    return keel.client()


def test_a_pipeline_of_plain_sets_in_another_database_survives_a_kill(keel):
    c = keel.client()
    assert c.call("SELECT", "3") == b"OK"
    c.send_raw(b"".join(encode(("SET", f"k{i}", f"v{i}")) for i in range(5)))
    assert [c.read() for _ in range(5)] == [b"OK"] * 5
    c.close()
    c = restart(keel)
    assert c.call("DBSIZE") == 0
    c.call("SELECT", "3")
    assert [c.call("GET", f"k{i}") for i in range(5)] == [b"v%d" % i for i in range(5)]
    c.close()
    dump = subprocess.run([sys.executable, "-m", "wal", "dump", os.path.join(keel.dir, "appendonlydir")],
                          cwd=ROOT, capture_output=True, text=True).stdout
    assert "db=3\tSET k4 v4" in dump


def test_a_mixed_pipeline_is_encoded_and_survives_a_kill(keel):
    c = keel.client()
    cmds = [("SET", "a", "1"), ("GET", "a"), ("INCR", "n"), ("SET", "b", "2", "KEEPTTL"), ("SET", "c", "3")]
    c.send_raw(b"".join(encode(x) for x in cmds))
    assert [c.read() for _ in cmds] == [b"OK", b"1", 1, b"OK", b"OK"]
    c.close()
    c = restart(keel)
    assert [c.call("GET", k) for k in ("a", "n", "b", "c")] == [b"1", b"1", b"2", b"3"]
    c.close()
