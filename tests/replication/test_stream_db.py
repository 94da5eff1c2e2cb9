"""The stream's database across checkpoints, full syncs and restarts.

A replica journals its primary's stream as it came, and that stream names
its database (SELECT) only when it changes. So whatever starts reading at an
offset inside it — a sub-replica synced from a snapshot at that offset, or
the replica's own replay after a restart — must know which database the
stream is in there. These tests move the stream to another database, then
take a checkpoint or a snapshot, then write without a SELECT, and look for
the write in the right database.
"""

from __future__ import annotations

import time

from tests.replication.support import HOST, Group, Node, call, wait_for, wait_link_up, wait_offsets_match

# A full sync reuses a checkpoint with at most checkpoint-log-size/64 of log
# after it (here 256 bytes) and takes a fresh capture otherwise; the writes
# here are far below 16kb, so no checkpoint happens but the ones asked for.
ARGS = ["--checkpoint-log-size", "16kb"]
BIG = "b" * 1000  # past the 256 bytes: the sub-replica's sync takes a fresh capture


def _bgsave(node: Node) -> None:
    before = int(node.info("persistence")["rdb_saves"])
    # (A replica's own checkpoint after its full sync may still be running.)
    wait_for(lambda: call(node.direct, "BGSAVE") == b"Background saving started", what="BGSAVE to start")
    wait_for(lambda: int(node.info("persistence")["rdb_saves"]) > before, what=f"{node.name}'s checkpoint")


def _write(node: Node, db: int, *args):
    c = node.client(direct=True)
    try:
        assert c.call("SELECT", db) == b"OK"
        return c.call(*args)
    finally:
        c.close()


def _get(node: Node, db: int, key: str):
    c = node.client(direct=True)
    try:
        c.call("SELECT", db)
        return c.call("GET", key)
    finally:
        c.close()


def test_a_sub_replica_synced_after_the_stream_changed_database(make_group):
    """The replica's last checkpoint is in db 3, its stream has moved to db 0
    since: a sub-replica's RDB must say db 0, so the next write (no SELECT
    in the stream) lands in db 0 there too."""
    g = make_group("keel", 1, args=ARGS)
    p, mid = g.primary, g.replicas[0]
    assert _write(p, 3, "SET", "in3", "a") == b"OK"
    wait_offsets_match(p, [mid])
    _bgsave(mid)  # its checkpoint: the stream in db 3
    assert _write(p, 0, "SET", "in0", BIG) == b"OK"  # the stream says SELECT 0
    wait_offsets_match(p, [mid])
    sub = Node("keel", "sub", ["--repl-diskless-sync-delay", "0"] + ARGS)
    try:
        sub.start(["--replicaof", HOST, str(mid.port)])
        wait_link_up(sub)
        assert _write(p, 0, "SET", "after", "c") == b"OK"  # no SELECT: still db 0
        wait_offsets_match(p, [mid, sub])
        assert _get(sub, 0, "after") == b"c"
        assert _get(sub, 3, "after") is None
        assert _get(sub, 0, "in0") == BIG.encode() and _get(sub, 3, "in3") == b"a"
    finally:
        sub.cleanup()


def test_a_replica_restarted_after_two_checkpoints_replays_in_the_right_database(make_group):
    """Two checkpoints with nothing journaled between them: the second keeps
    the first's database (db 3), so after kill -9 and a restart the stream
    (no SELECT) goes on in db 3."""
    g = make_group("keel", 1, args=ARGS)
    p, r = g.primary, g.replicas[0]
    assert _write(p, 3, "SET", "k1", "a") == b"OK"
    wait_offsets_match(p, [r])
    _bgsave(r)
    _bgsave(r)  # nothing new: the stream is still in db 3 at this offset
    r.kill()
    r.start(["--replicaof", HOST, str(p.port)])
    wait_link_up(r)
    assert _write(p, 3, "SET", "k2", "b") == b"OK"  # the primary's stream is still in db 3: no SELECT
    wait_offsets_match(p, [r])
    assert _get(r, 3, "k2") == b"b"
    assert _get(r, 0, "k2") is None
    assert int(p.info("stats")["sync_full"]) == 1  # it continued from its log, no second full sync


def test_a_sub_replica_synced_from_a_fresh_capture_after_a_restart(make_group):
    """After a restart with a log to replay (the stream in db 5 at its end),
    a checkpoint with nothing new and a sub-replica's full sync both keep db 5."""
    g = make_group("keel", 1, args=ARGS)
    p, mid = g.primary, g.replicas[0]
    _bgsave(mid)
    assert _write(p, 5, "SET", "k1", "a") == b"OK"
    wait_offsets_match(p, [mid])
    mid.kill()  # its log holds SELECT 5, SET after its checkpoint
    mid.start(["--replicaof", HOST, str(p.port)])
    wait_link_up(mid)
    wait_offsets_match(p, [mid])
    _bgsave(mid)
    assert _write(p, 5, "SET", "big", BIG) == b"OK"  # (a fresh capture for the sub-replica)
    wait_offsets_match(p, [mid])
    sub = Node("keel", "sub", ["--repl-diskless-sync-delay", "0"] + ARGS)
    try:
        sub.start(["--replicaof", HOST, str(mid.port)])
        wait_link_up(sub)
        assert _write(p, 5, "SET", "k2", "b") == b"OK"
        wait_offsets_match(p, [mid, sub])
        time.sleep(0.05)
        assert _get(sub, 5, "k2") == b"b" and _get(mid, 5, "k2") == b"b"
        assert _get(sub, 0, "k2") is None
    finally:
        sub.cleanup()


def test_random_database_switches_checkpoints_restarts_and_syncs_keep_a_chain_equal(make_group):
    """Writes in random databases through a chain primary -> replica ->
    sub-replica, with checkpoints, kill -9 restarts of the middle one and
    fresh sub-replica syncs in between: in the end all three hold the same
    data, and so does each sub-replica before the next replaces it (the seed
    and the steps are printed on failure).
    """
    import random

    from tests.replication.test_keel_replication import assert_same_data

    seed = random.randrange(1 << 30)
    print("seed", seed)
    rnd = random.Random(seed)
    g = make_group("keel", 1, args=ARGS)
    p, mid = g.primary, g.replicas[0]
    sub = None
    steps: list[str] = []
    db = 0

    def pick_db():  # mostly the same database as the write before: no SELECT in the stream
        nonlocal db
        if rnd.random() < 0.3:
            db = rnd.randrange(4)
        return db
    try:
        for i in range(40):
            step = rnd.choice(["write", "write", "write", "big", "big", "bgsave-mid", "bgsave-mid",
                               "bgsave-primary", "restart-mid", "new-sub", "new-sub"])
            steps.append(step)
            print(i, step)
            if step == "write":
                _write(p, pick_db(), "INCR", f"n{rnd.randrange(6)}")
            elif step == "big":
                _write(p, pick_db(), "SET", f"b{i}", BIG)
            elif step == "bgsave-mid":
                wait_offsets_match(p, [mid])
                _bgsave(mid)
            elif step == "bgsave-primary":
                _bgsave(p)
            elif step == "restart-mid":
                wait_offsets_match(p, [mid])
                mid.kill()
                mid.start(["--replicaof", HOST, str(p.port)])
                wait_link_up(mid)
            elif step == "new-sub":
                if sub is not None:  # the one it replaces followed every write so far
                    wait_offsets_match(p, [mid, sub])
                    assert_same_data(p.direct, sub.direct)
                    sub.cleanup()
                wait_offsets_match(p, [mid])
                sub = Node("keel", "sub", ["--repl-diskless-sync-delay", "0"] + ARGS)
                sub.start(["--replicaof", HOST, str(mid.port)])
                wait_link_up(sub)
        if sub is None:
            sub = Node("keel", "sub", ["--repl-diskless-sync-delay", "0"] + ARGS)
            sub.start(["--replicaof", HOST, str(mid.port)])
            wait_link_up(sub)
        for _ in range(3):  # after the last sync, in the stream's database
            _write(p, db, "INCR", "last")
        wait_offsets_match(p, [mid, sub])
        assert_same_data(p.direct, mid.direct)
        assert_same_data(p.direct, sub.direct)
    finally:
        if sub is not None:
            sub.cleanup()
