"""Property: after a crash cuts the last segment anywhere, recovery keeps an
exact prefix of what was written, and never loses a record that was synced.
"""

from __future__ import annotations

import os
import struct
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from wal import Log, segment

batches_st = st.lists(
    st.lists(st.binary(min_size=1, max_size=60), min_size=1, max_size=6),
    min_size=1,
    max_size=10,
)


def record_ends(path: str) -> list[tuple[int, int]]:
    """(file position after the record, offset after the record) per record."""
    data = open(path, "rb").read()
    out = []
    pos = segment.HEADER_SIZE
    while pos < len(data):
        length, _, off, _ = struct.unpack_from("<IIQQ", data, pos)
        pos += 8 + length
        out.append((pos, off + length - 16))
    return out


@settings(max_examples=60, deadline=None)
@given(
    batches=batches_st,
    unsynced=st.lists(st.binary(min_size=1, max_size=60), max_size=6),
    segment_size=st.sampled_from([120, 300, 1 << 20]),
    after_sync=st.booleans(),
    where=st.integers(0, 10**9),
    zeros=st.sampled_from([0, 0, 7, 512, 4096]),
)
def test_crash_at_any_byte_recovers_an_exact_prefix_keeping_synced_records(
    batches, unsynced, segment_size, after_sync, where, zeros
):
    written: list[bytes] = []
    with tempfile.TemporaryDirectory() as d:
        log = Log.open(d, segment_size=segment_size, fsync="always")
        for batch in batches:
            for p in batch:
                log.append(p)
                written.append(p)
            log.commit()
        durable = log.durable_offset
        assert durable == log.end_offset
        # a last batch reaches the kernel but not the disk before the crash
        for p in unsynced:
            log.append(p)
            written.append(p)
        log.flush()
        last = log.segments()[-1]
        ends = record_ends(last.path)
        original = open(last.path, "rb").read()
        # the crash keeps the file up to a random byte: anywhere, or (what a
        # power loss can do) anywhere after the last synced byte; then maybe
        # zeros, as from a preallocated or partly written block
        low = segment.HEADER_SIZE
        if after_sync:
            low = max([pos for pos, off in ends if off <= durable], default=low)
        cut = low + where % (len(original) - low + 1)
        os.truncate(last.path, cut)
        if zeros:
            with open(last.path, "ab") as f:
                f.write(b"\0" * zeros)
        log.close()  # nothing is buffered: closing writes nothing more
        on_disk = open(last.path, "rb").read()

        # a record survives when all its bytes are still what was written
        # (zeros can happen to restore a record whose last bytes were zero)
        kept_in_last = 0
        for pos, _ in ends:
            if on_disk[:pos] != original[:pos]:
                break
            kept_in_last += 1
        good_end = ends[kept_in_last - 1][0] if kept_in_last else segment.HEADER_SIZE
        expected = written[: len(written) - len(ends) + kept_in_last]

        reopened = Log.open(d, segment_size=segment_size)
        got = [p for _, _, p in reopened.read_from(reopened.start_offset)]
        assert got == expected
        assert reopened.end_offset == sum(map(len, expected))
        if after_sync:
            assert reopened.end_offset >= durable
        torn = reopened.recovered.torn
        assert (torn is not None) == (len(on_disk) > good_end)
        assert torn is None or torn.dropped_bytes == len(on_disk) - good_end
        reopened.close()
