"""wal.truncate: a closed log cut back to an offset, inside a record or between segments."""

from __future__ import annotations

import pytest

from wal.log import Log
from wal.truncate import truncate


def _payloads(n: int) -> list[bytes]:
    return [b"*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n" % (len(b"k%d" % i), b"k%d" % i) for i in range(n)]


def _make(tmp_path, segment_size: int = 4096) -> tuple[str, bytes]:
    d = str(tmp_path / "log")
    lg = Log.open(d, segment_size=segment_size, fsync="always")
    stream = b""
    for i, p in enumerate(_payloads(300)):
        lg.append(p + p if i % 3 == 0 else p)  # some records hold two commands
        stream += p + p if i % 3 == 0 else p
        if i % 7 == 0:
            lg.commit()
    lg.commit()
    lg.close()
    return d, stream


def _read(d: str) -> bytes:
    lg = Log.open(d, segment_size=4096, fsync="always")
    try:
        return b"".join(p for _o, _t, p in lg.read_from(lg.start_offset)), lg.end_offset
    finally:
        lg.close()


@pytest.mark.parametrize("where", ["start", "record", "inside", "late", "end"])
def test_the_log_ends_where_it_was_cut(tmp_path, where):
    d, stream = _make(tmp_path)
    total = len(stream)
    offset = {"start": 0, "record": 23, "inside": total // 2 + 11, "late": total - 5, "end": total}[where]
    removed = truncate(d, offset)
    assert removed == total - offset
    data, end = _read(d)
    assert end == offset and data == stream[:offset]
    # The log goes on from there.
    lg = Log.open(d, segment_size=4096, fsync="always")
    lg.append(b"*1\r\n$4\r\nPING\r\n")
    lg.commit()
    lg.close()
    data, end = _read(d)
    assert data == stream[:offset] + b"*1\r\n$4\r\nPING\r\n"


def test_a_cut_at_a_segment_boundary_drops_the_later_segments(tmp_path):
    d, stream = _make(tmp_path, segment_size=1024)
    from wal.segment import list_segments

    segs = list_segments(d)
    assert len(segs) > 3
    at = segs[2].first_offset
    truncate(d, at)
    assert [s.first_offset for s in list_segments(d)] == [s.first_offset for s in segs[:2]]
    assert _read(d) == (stream[:at], at)


def test_an_offset_outside_the_log_is_refused(tmp_path):
    d, stream = _make(tmp_path)
    with pytest.raises(ValueError):
        truncate(d, len(stream) + 1)
    assert _read(d) == (stream, len(stream))
