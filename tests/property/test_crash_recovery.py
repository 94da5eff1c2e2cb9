"""A crash at any record boundary recovers exactly the state at that boundary.

Hypothesis generates command sequences over a few keys and databases. Each
command runs through the engine's handlers; its effects are journaled the way
the server journals them (``server.persistence.encode_effects``) into a real
log directory, optionally with a real LMDB checkpoint taken part-way. Then
the log is cut at a random record boundary — or a few bytes past it, a torn
record — and recovered into a fresh keyspace (checkpoint load + log replay,
the server's own ``Replayer``). The recovered keyspace must equal the one
that existed right after the last complete record: not one write more, not
one less.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.commands  # noqa: F401  (registers the handlers)
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.registry import TABLE
from engine.session import Session
from server.persistence import Replayer, encode_effects
from wal import record, segment
from wal.checkpoint import Checkpointer
from wal.log import Log

KEYS = [b"a", b"b", b"c", b"n"]
DBS = [b"0", b"1", b"2"]
key = st.sampled_from(KEYS)
val = st.sampled_from([b"x", b"yy", b"10", b"-3", b""])
ttl = st.integers(1000, 100000).map(lambda n: b"%d" % n)

command = st.one_of(
    st.tuples(st.just(b"SET"), key, val),
    st.tuples(st.just(b"SET"), key, val, st.just(b"EX"), ttl),
    st.tuples(st.just(b"SET"), key, val, st.just(b"KEEPTTL")),
    st.tuples(st.just(b"DEL"), key),
    st.tuples(st.just(b"INCR"), key),
    st.tuples(st.just(b"INCRBYFLOAT"), key, st.sampled_from([b"1.5", b"-0.25"])),
    st.tuples(st.just(b"APPEND"), key, val),
    st.tuples(st.just(b"EXPIRE"), key, ttl),
    st.tuples(st.just(b"PERSIST"), key),
    st.tuples(st.just(b"RENAME"), key, key),
    st.tuples(st.just(b"SELECT"), st.sampled_from(DBS)),
    st.tuples(st.just(b"MOVE"), key, st.sampled_from(DBS)),
    st.tuples(st.just(b"SWAPDB"), st.sampled_from(DBS), st.sampled_from(DBS)),
    st.tuples(st.just(b"FLUSHDB")),
    st.tuples(st.just(b"GETDEL"), key),
    st.tuples(st.just(b"SETRANGE"), key, st.sampled_from([b"0", b"3"]), val),
)


def run(session: Session, argv: list) -> None:
    cmd = TABLE.get(argv[0].lower())
    assert cmd is not None, argv
    if not cmd.arity_ok(len(argv)):
        return
    try:
        cmd.handler(session, argv)
    except CommandError:
        pass


def state(ks: Keyspace) -> dict:
    """The keyspace as of now: strings written in place (bytearrays, which
    later commands go on changing) are copied."""
    return {db.index: ({k: bytes(v) if type(v) is bytearray else v for k, v in db.data.items()},
                       dict(db.expires)) for db in ks.dbs if db.data}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmds=st.lists(command, min_size=1, max_size=30), data=st.data())
def test_recovery_at_any_boundary_equals_the_state_there(cmds, data):
    base = tempfile.mkdtemp(prefix="keel-prop-")
    try:
        logdir = os.path.join(base, "log")
        cpdir = os.path.join(base, "checkpoint")
        ks = Keyspace()
        session = Session(ks)
        cp = Checkpointer(cpdir)
        cp.start_tracking(ks)
        lg = Log.open(logdir, fsync="no")
        checkpoint_at = data.draw(st.integers(-1, len(cmds) - 1), label="checkpoint after command")
        pos = segment.HEADER_SIZE
        boundaries = [(pos, state(ks), 0)]  # (file position, state, log offset)
        stream_db = -1
        checkpoint_offset = None
        for i, c in enumerate(cmds):
            run(session, list(c))
            if ks.effects:
                payload, stream_db = encode_effects(ks.effects, stream_db)
                ks.effects.clear()
                end = lg.append(payload)
                lg.flush()
                pos += record.HEADER_SIZE + len(payload)
                boundaries.append((pos, state(ks), end))
            if i == checkpoint_at:
                # As Persistence._prepare_checkpoint: the next record names its db.
                stream_db = -1
                checkpoint_offset = lg.end_offset
                cp.write(cp.capture(ks), checkpoint_offset)
        lg.close()
        cp.close()

        # Only boundaries at or after the checkpoint can be crash points: the
        # log up to the checkpoint was durable before the checkpoint was taken.
        usable = [b for b in boundaries if checkpoint_offset is None or b[2] >= checkpoint_offset]
        cut_pos, expected, _ = data.draw(st.sampled_from(usable), label="crash boundary")
        seg_path = segment.list_segments(logdir)[0].path
        size = os.path.getsize(seg_path)
        torn = data.draw(st.integers(0, max(0, min(size - cut_pos - 1, 40))), label="torn bytes")
        with open(seg_path, "r+b") as f:
            f.truncate(cut_pos + torn)

        ks2 = Keyspace()
        cp2 = Checkpointer(cpdir)
        offset = cp2.load(ks2) or 0
        cp2.close()
        ks2.loading = True
        replay = Replayer(Session(ks2))
        lg2 = Log.open(logdir, fsync="no", start_offset=offset, on_record=replay, replay_from=offset)
        lg2.close()
        ks2.loading = False
        assert state(ks2) == expected
    finally:
        shutil.rmtree(base, ignore_errors=True)
