"""The write-ahead log: effects journaled as checksummed records in segments.

The log *is* the replication stream: a record's payload is the RESP bytes of
one batch of effects (an array per command, a SELECT when the database
changes; a MULTI/EXEC or script is one record), and a record's offset is the
replication offset of its first payload byte. This package knows nothing of
command semantics: payloads are opaque bytes from the caller.

On disk (details in wal.record and wal.segment; little-endian)::

    DIR/00000000000000000000.wal        segments, named by first offset
    DIR/00000000000067108880.wal        (20 digits), cut at segment_size

    segment = header record*
    header  = "KEELWAL\\0"  u32 version  u64 first_offset  u32 crc32c(previous 20 bytes)
    record  = u32 length  u32 crc32c(rest)  u64 offset  u64 timestamp_ms  payload
              length = 16 + len(payload); offset(N+1) = offset(N) + len(payload N)

Interface for the server::

    log = Log.open(dir, segment_size=64 << 20, fsync="always"|"everysec"|"no",
                   start_offset=checkpoint_offset,          # where an empty log starts
                   progress=lambda done, total: ...,        # bytes verified
                   on_record=apply, replay_from=checkpoint_offset)  # one-pass replay
    log.recovered                 # what recovery found (torn tail repaired, if any)
    end = log.append(payload)     # per batch of effects; memory only; -> end offset
    durable = log.commit()        # once per event-loop iteration: one write,
                                  # + one fsync under "always" (group commit)
    job = log.start_background_sync(now_ms)  # from the cron, under "everysec":
    log.background_synced(offset)             # (fd, offset) to fdatasync in a thread, then this
    log.defer_rotation = True     # cut full segments after a background fsync (everysec)
    log.sync()                    # write + fsync now (shutdown, SAVE-like points)
    log.start_offset <= log.durable_offset <= log.written_offset <= log.end_offset
    log.set_fsync("always")       # CONFIG SET appendfsync
    log.segments()                # [SegmentFile(first_offset, path)]
    log.delete_before(offset)     # after a checkpoint at offset
    for off, ts, payload in log.read_from(offset): ...   # replay, replica catch-up
    log.close()

Errors: ``WALWriteError`` (a write/fsync/create failed; the log refuses all
further work and the server must stop), ``CorruptionError`` (damage other
than a torn tail; the server must refuse to start; the message names the file
and byte and the repair command ``keel-wal repair DIR``).

Modules: record.py (framing, errors), segment.py (files, headers, atomic
creation), log.py (Log), recovery.py (scan, recover, repair), __main__.py
(``keel-wal verify|dump|repair DIR``), checkpoint/ (LMDB checkpoints, one
module per seam: layout.py the on-disk codecs, tracker.py the dirty sets,
capture.py taking keys on the loop, writer.py the writer thread, loader.py
loading at startup; the package's ``Checkpointer`` joins them).
"""

from wal.log import POLICIES, Log
from wal.record import CorruptionError, WALWriteError
from wal.recovery import Recovery, Repair, TornTail, recover, repair, scan
from wal.segment import SegmentFile

__all__ = [
    "POLICIES",
    "CorruptionError",
    "Log",
    "Recovery",
    "Repair",
    "SegmentFile",
    "TornTail",
    "WALWriteError",
    "recover",
    "repair",
    "scan",
]
