"""client-output-buffer-limit replica: a replica that falls too far behind is
disconnected, and resumes from the log (+CONTINUE) when it is back."""

from __future__ import annotations

from tests.replication.support import call, info, wait_for, wait_link_up, wait_offsets_match


def test_a_stopped_replica_past_the_hard_limit_is_dropped_and_resumes_from_the_log(make_group):
    g = make_group("keel", 1, primary_args=["--client-output-buffer-limit", "replica 1mb 0 0",
                                            "--repl-backlog-size", "64mb"])
    p, r = g.primary, g.replicas[0]
    assert call(p.direct, "SET", "before", "1") == b"OK"
    wait_offsets_match(p, [r])
    r.stop()  # SIGSTOP: it reads nothing; the primary's output to it piles up
    try:
        value = b"x" * 65536
        c = p.client(direct=True)
        for i in range(400):  # 26 MB: past the socket buffers and the 1 MB limit
            c.send_raw(b"*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$65536\r\n%s\r\n" % (len(b"k%d" % i), i, value))
        for _ in range(400):
            c.read()
        wait_for(lambda: info(p.direct)["connected_slaves"] == "0", 10, what="the replica dropped")
        assert "over the hard limit" in p.log()
    finally:
        r.cont()
    wait_link_up(r)
    wait_offsets_match(p, [r])
    stats = info(p.direct, "stats")
    assert stats["sync_partial_ok"] == "1" and stats["sync_full"] == "1", stats  # the first sync, then +CONTINUE
    assert call(r.direct, "GET", "k399") == value
    assert call(r.direct, "DBSIZE") == 401
