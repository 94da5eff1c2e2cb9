"""A demoted primary that wrote after its successor's promotion: its divergent
tail is discarded, by a rollback and PSYNC when its log reaches back to the
switch, by a full sync when a checkpoint came after it."""

from __future__ import annotations

from tests.replication.support import HOST, call, info, wait_link_up, wait_offsets_match


def _promote_and_diverge(make_group):
    g = make_group("keel", 1, args=["--enable-debug-command", "yes"])
    old, new = g.primary, g.replicas[0]
    for i in range(50):
        call(old.direct, "RPUSH", "list", i)
    call(old.direct, "SET", "b", "1")
    wait_offsets_match(old, [new])
    assert call(new.direct, "REPLICAOF", "NO", "ONE") == b"OK"
    # Written on the old side after the switch: nobody's history.
    call(old.direct, "SET", "divergent", "1")
    call(old.direct, "SET", "b", "2")
    call(old.direct, "LPOP", "list")
    call(new.direct, "SET", "after", "1")
    return g, old, new


def _rejoin(old, new):
    assert call(old.direct, "REPLICAOF", HOST, str(new.direct)) == b"OK"
    wait_link_up(old)
    wait_offsets_match(new, [old])
    assert call(old.direct, "GET", "divergent") is None
    assert call(old.direct, "GET", "b") == b"1"
    assert call(old.direct, "LLEN", "list") == 50
    assert call(old.direct, "GET", "after") == b"1"
    assert call(old.direct, "DEBUG", "DIGEST") == call(new.direct, "DEBUG", "DIGEST")


def test_the_divergent_tail_is_rolled_back_and_the_rest_continues(make_group):
    g, old, new = _promote_and_diverge(make_group)
    before = info(new.direct, "stats")
    _rejoin(old, new)
    after = info(new.direct, "stats")
    assert after["sync_full"] == before["sync_full"]
    assert int(after["sync_partial_ok"]) == int(before["sync_partial_ok"]) + 1
    assert "rolled back" in old.log()
    # It stays so across a restart (the log itself was cut).
    old.kill()
    old.start(["--replicaof", HOST, str(new.direct)])
    wait_link_up(old)
    assert call(old.direct, "GET", "divergent") is None and call(old.direct, "GET", "b") == b"1"


def test_a_checkpoint_after_the_switch_makes_it_sync_in_full(make_group):
    g, old, new = _promote_and_diverge(make_group)
    call(old.direct, "SAVE")  # the old side's checkpoint now covers its divergent writes
    before = info(new.direct, "stats")
    _rejoin(old, new)
    assert int(info(new.direct, "stats")["sync_full"]) == int(before["sync_full"]) + 1
    assert "cannot roll back" in old.log()
