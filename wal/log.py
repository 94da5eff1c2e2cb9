"""The log: append records, group commit, fsync policies, segments, reads.

Positions, all replication offsets (payload bytes since the stream began)::

    start_offset <= durable_offset <= written_offset <= end_offset

- ``end_offset``: after the last appended record (appends are buffered);
- ``written_offset``: handed to the kernel with write(2) (survives a crash
  of the process, not of the machine): under ``everysec`` and ``no`` the
  server's replies wait for it;
- ``durable_offset``: covered by a completed fsync (survives power loss):
  under ``always`` the server's replies wait for it.

Group commit: ``append`` only frames the record into a buffer; ``commit``
(once per event-loop batch) writes the whole buffer with one write and, under
``always``, one fsync, however many clients' records it holds.

Policies (``appendfsync``): ``always`` fsyncs in every ``commit``;
``everysec`` writes in every ``commit`` and fsyncs a second or more after
the last fsync (``start_background_sync`` hands that fsync to a worker
thread; ``maybe_sync_everysec`` does it at once);
``no`` writes and leaves flushing to the kernel. Whatever the policy, a
segment is fsynced before the next one is created (so only the last segment
can have a torn tail).

Failure: any OSError while writing, syncing or creating a segment becomes a
``WALWriteError``, and the log stays failed: every later call raises the same
error. Nothing here catches and continues.

Not thread-safe: one owner (the event loop thread) calls every method.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from typing import Iterator

from crc32c import crc32c

from wal import recovery, segment
from wal.record import HEADER, HEADER_SIZE, CorruptionError, WALWriteError
from wal.segment import SegmentFile

ALWAYS = "always"
EVERYSEC = "everysec"
NO = "no"
POLICIES = (ALWAYS, EVERYSEC, NO)
DEFAULT_SEGMENT_SIZE = 64 << 20

_LEN_CRC = struct.Struct("<II").pack
_OFF_TS = struct.Struct("<QQ").pack
_fdatasync = getattr(os, "fdatasync", os.fsync)


class Log:
    """An open write-ahead log directory. Build it with ``Log.open``."""

    def __init__(self, directory: str, segments: list[SegmentFile], fd: int,
                 segment_bytes: int, end_offset: int, segment_size: int,
                 fsync: str, recovered: recovery.Recovery | None):
        self.directory = directory
        self.segment_size = segment_size
        self.recovered = recovered
        self._segments = segments
        self._fd = fd
        self._seg_bytes = segment_bytes  # current segment: on disk + buffered
        self._buf = bytearray()
        self._end = end_offset
        self._written = end_offset
        self._durable = end_offset
        self._policy = fsync
        self._last_sync_ms = time.time_ns() // 1_000_000
        self._failed: WALWriteError | None = None
        # Set by a caller that runs ``start_background_sync`` once a second
        # (the server). Under ``everysec`` a full segment is then cut right
        # after the next background fsync, when the synchronous fsync that
        # rotation needs has little left to write, instead of at once, when
        # it wrote up to a second of records with every client waiting
        # (20-40 ms per 64 MB segment under a write load). The segment grows
        # past ``segment_size`` meanwhile, up to twice it.
        self.defer_rotation = False
        self._rotate_wanted = False

    @classmethod
    def open(cls, directory: str, *, segment_size: int = DEFAULT_SEGMENT_SIZE,
             fsync: str = EVERYSEC, start_offset: int = 0,
             progress: recovery.Progress | None = None,
             on_record: recovery.Visitor | None = None,
             replay_from: int = 0) -> "Log":
        """Recover the directory (created if missing) and open it for appending.

        ``start_offset`` is where an empty log starts (the offset of the
        checkpoint it follows). ``progress(done, total)`` reports bytes
        verified; ``on_record``/``replay_from`` replay during the same pass
        (see ``recovery.scan``). Raises CorruptionError (refuse to start) or
        WALWriteError (cannot create the first segment).
        """
        _check_policy(fsync)
        if segment_size < segment.HEADER_SIZE + HEADER_SIZE + 1:
            raise ValueError("segment_size too small")
        os.makedirs(directory, exist_ok=True)
        segment.remove_stale_tmp(directory)
        rec = recovery.recover(directory, progress, on_record, replay_from)
        segs = list(rec.segments)
        try:
            if not segs:
                fd = segment.create(directory, start_offset)
                path = os.path.join(directory, segment.name_for(start_offset))
                segs = [SegmentFile(start_offset, path)]
                return cls(directory, segs, fd, segment.HEADER_SIZE, start_offset,
                           segment_size, fsync, rec)
            fd = os.open(segs[-1].path, os.O_WRONLY | os.O_APPEND)
            # what recovery read may sit only in the page cache (a process
            # crash): make it durable before calling it durable
            os.fsync(fd)
        except OSError as e:
            raise WALWriteError(f"cannot open the write-ahead log in {directory}: {e}") from e
        return cls(directory, segs, fd, os.fstat(fd).st_size, rec.end_offset,
                   segment_size, fsync, rec)

    # ------------------------------------------------------------------
    # Positions and configuration
    # ------------------------------------------------------------------

    @property
    def start_offset(self) -> int:
        return self._segments[0].first_offset

    @property
    def end_offset(self) -> int:
        return self._end

    @property
    def written_offset(self) -> int:
        return self._written

    @property
    def durable_offset(self) -> int:
        return self._durable

    @property
    def last_sync_ms(self) -> int:
        """Wall-clock ms of the last sync (or of opening): everysec's reference."""
        return self._last_sync_ms

    @property
    def fsync_policy(self) -> str:
        return self._policy

    def set_fsync(self, policy: str) -> None:
        """Change the policy live (CONFIG SET appendfsync); ``always`` syncs now."""
        _check_policy(policy)
        self._policy = policy
        if policy == ALWAYS:
            self.sync()

    def segments(self) -> list[SegmentFile]:
        return list(self._segments)

    # ------------------------------------------------------------------
    # Writing
    # ------------------------------------------------------------------

    def append(self, payload: bytes, timestamp_ms: int | None = None) -> int:
        """Frame ``payload`` as the next record; return the new end offset.

        Memory only, except when the record would overflow the current
        segment: then the segment is synced and the next one created.
        """
        if self._failed is not None:
            raise self._failed
        n = len(payload)
        if not n:
            raise ValueError("empty record payload")
        if (self._seg_bytes + HEADER_SIZE + n > self.segment_size
                and self._seg_bytes > segment.HEADER_SIZE):
            if (self.defer_rotation and self._policy == EVERYSEC
                    and self._seg_bytes + HEADER_SIZE + n <= 2 * self.segment_size):
                self._rotate_wanted = True
            else:
                self._rotate()
        off = self._end
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        tail = _OFF_TS(off, timestamp_ms)
        buf = self._buf
        buf += _LEN_CRC(16 + n, crc32c(payload, crc32c(tail)))
        buf += tail
        buf += payload
        self._seg_bytes += HEADER_SIZE + n
        self._end = off + n
        return self._end

    def flush(self) -> None:
        """Write everything buffered with one write(2); no fsync."""
        if self._failed is not None:
            raise self._failed
        if self._buf:
            buf = self._buf
            self._buf = bytearray()
            try:
                segment.write_all(self._fd, buf)
            except OSError as e:
                self._fail("write", e)
            self._written = self._end

    def sync(self) -> int:
        """Group commit: one write of the buffer, one fsync. Returns durable_offset."""
        self.flush()
        if self._durable < self._written:
            try:
                _fdatasync(self._fd)
            except OSError as e:
                self._fail("fsync", e)
            self._durable = self._written
        self._last_sync_ms = time.time_ns() // 1_000_000
        return self._durable

    def commit(self) -> int:
        """End of an event-loop batch: sync under ``always``, else write only.

        Returns durable_offset: replies that depend on a position up to it
        may be released.
        """
        if self._policy == ALWAYS:
            return self.sync()
        self.flush()
        return self._durable

    def start_background_sync(self, now_ms: int):
        """Under ``everysec``, once a second: write the buffer out and return
        ``(fd, offset)`` — a duplicate descriptor of the current segment for a
        worker thread to fdatasync and close, and the offset that makes
        durable (report it with ``background_synced``) — else None. The
        duplicate keeps the fsync valid if the segment is rotated meanwhile
        (rotation fsyncs the old segment itself)."""
        if not self._everysec_due(now_ms):
            return None
        self.flush()
        self._last_sync_ms = now_ms
        if self._durable >= self._written:
            return None
        try:
            fd = os.dup(self._fd)
        except OSError as e:
            self._fail("fsync", e)
        return fd, self._written

    def background_synced(self, offset: int) -> None:
        """A background fsync made the log durable up to ``offset``; a full
        segment waiting for it is cut now (see ``defer_rotation``)."""
        if offset > self._durable:
            self._durable = offset
        if self._rotate_wanted:
            self._rotate()

    def maybe_sync_everysec(self, now_ms: int) -> bool:
        """Under ``everysec``, sync if a second has passed since the last sync."""
        if not self._everysec_due(now_ms):
            return False
        self.sync()
        return True

    def _everysec_due(self, now_ms: int) -> bool:
        return self._policy == EVERYSEC and now_ms - self._last_sync_ms >= 1000

    def _rotate(self) -> None:
        self._rotate_wanted = False
        self.sync()
        try:
            fd = segment.create(self.directory, self._end)
        except OSError as e:
            self._fail("segment creation", e)
        os.close(self._fd)
        self._fd = fd
        self._segments.append(SegmentFile(
            self._end, os.path.join(self.directory, segment.name_for(self._end))))
        self._seg_bytes = segment.HEADER_SIZE

    def _fail(self, what: str, err: OSError):
        self._failed = WALWriteError(
            f"write-ahead log {what} failed in {self._segments[-1].path}: {err}")
        raise self._failed from err

    # ------------------------------------------------------------------
    # Segments and reading
    # ------------------------------------------------------------------

    def delete_before(self, offset: int) -> list[str]:
        """Delete the segments whose records all end at or before ``offset``.

        Called after a checkpoint covering ``offset`` (and once replicas no
        longer need them). The current segment is never deleted.
        """
        removed = []
        while len(self._segments) > 1 and self._segments[1].first_offset <= offset:
            path = self._segments[0].path
            os.unlink(path)
            self._segments.pop(0)
            removed.append(path)
        if removed:
            segment.fsync_dir(self.directory)
        return removed

    def read_from(self, offset: int) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(offset, timestamp_ms, payload)`` from ``offset`` to end_offset.

        Buffered records are written first, so everything appended before the
        call is included. When ``offset`` falls inside a record, the first
        payload is trimmed to start there (a replica resumes at a byte, not a
        record). Raises ValueError if ``offset`` is outside
        [start_offset, end_offset]; CorruptionError if a record read back is
        damaged. Segments are opened as the iteration reaches them: do not
        ``delete_before`` past a position a reader still needs.
        """
        if not self.start_offset <= offset <= self._end:
            raise ValueError(f"offset {offset} is outside the log "
                             f"[{self.start_offset}, {self._end}]")
        self.flush()
        return _read(self.directory, list(self._segments), offset, self._written)

    def close(self) -> None:
        """Sync what is buffered (unless failed) and close the file."""
        if self._fd < 0:
            return
        try:
            if self._failed is None:
                self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"fsync policy must be one of {', '.join(POLICIES)}, not {policy!r}")


def _read(directory: str, segs: list[SegmentFile], offset: int, limit: int):
    i = max(0, bisect.bisect_right([s.first_offset for s in segs], offset) - 1)
    unpack = HEADER.unpack_from
    crc = crc32c
    for seg in segs[i:]:
        if seg.first_offset >= limit:
            return
        with open(seg.path, "rb") as f:
            buf = f.read()
        view = memoryview(buf)
        end = len(buf)
        pos = segment.HEADER_SIZE
        off = seg.first_offset
        while pos < end and off < limit:
            if pos + HEADER_SIZE > end:
                raise CorruptionError(directory, seg.path, pos, "record header cut short")
            length, c, roff, ts = unpack(buf, pos)
            stop = pos + 8 + length
            if length < 16 or stop > end or roff != off or crc(view[pos + 8:stop]) != c:
                raise CorruptionError(directory, seg.path, pos, "record does not verify")
            nxt = off + length - 16
            if nxt > offset:
                skip = offset - off if off < offset else 0
                yield off + skip, ts, buf[pos + HEADER_SIZE + skip:stop]
            off = nxt
            pos = stop
