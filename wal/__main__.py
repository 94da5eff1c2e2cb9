"""``keel-wal`` / ``python -m wal``: inspect, verify and repair a log directory.

    keel-wal verify DIR   exit 0 and a summary when the log is intact;
                          exit 3 for a torn tail (the server truncates it on
                          start), exit 1 for corruption (the server refuses to
                          start), naming the file and byte, and for a log that
                          starts after the checkpoint's offset (a gap)
    keel-wal dump DIR     one line per command: record offset, ISO time (UTC),
                          database (tracked through SELECT), the command
    keel-wal repair DIR   keep the records before the first damage: back up and
                          truncate the damaged segment, move later ones aside
Exit 2: bad usage, no such directory, or no log in it.

DIR is the server's data directory (``--dir``) or the log directory in it
(``appendonlydir``): the log is the directory itself when it holds segment
files, else its ``appendonlydir``; the checkpoint is ``checkpoint.lmdb``
beside the log directory. A directory with no segment in either place is an
error, never an empty log that verifies: the server always has a segment.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys

import hiredis

from wal import recovery, segment
from wal.checkpoint import Checkpointer, CheckpointError

EXIT_OK = 0
EXIT_CORRUPT = 1
EXIT_USAGE = 2
EXIT_TORN = 3

LOG_DIRNAME = "appendonlydir"  # the server's default appenddirname
CHECKPOINT_NAME = "checkpoint.lmdb"


class NoLog(Exception):
    """DIR holds no log; the message says where keel-wal looked."""


class Place:
    """Where the log and the checkpoint of what the user named are."""

    __slots__ = ("given", "log_dir", "checkpoint")

    def __init__(self, given: str, log_dir: str, checkpoint: str | None):
        self.given = given
        self.log_dir = log_dir
        self.checkpoint = checkpoint  # the LMDB directory, None when there is none


def locate(directory: str) -> Place:
    """The log in ``directory`` (a log directory or a data directory)."""
    inner = os.path.join(directory, LOG_DIRNAME)
    for log_dir in (directory, inner):
        if os.path.isdir(log_dir) and segment.list_segments(log_dir):
            parent = os.path.dirname(os.path.abspath(log_dir))
            cp = os.path.join(parent, CHECKPOINT_NAME)
            has_cp = os.path.isfile(os.path.join(cp, "data.mdb"))
            return Place(directory, log_dir, cp if has_cp else None)
    raise NoLog(f"no write-ahead log in {directory}: no segment file "
                f"(<20 digits>{segment.SUFFIX}) in {directory} nor in {inner}")


def _checkpoint_offset(place: Place) -> tuple[int | None, str]:
    """``(offset the checkpoint covers or None, a line describing it)``.

    Raises CheckpointError when it cannot be read.
    """
    if place.checkpoint is None:
        return None, ""
    cp = Checkpointer(place.checkpoint)
    try:
        meta = cp.info()
    finally:
        cp.close()
    if meta is None:
        return None, f"checkpoint: {place.checkpoint} is empty"
    return meta["offset"], (f"checkpoint: {place.checkpoint} covers offsets up to "
                            f"{meta['offset']} ({meta['keys']} keys)")


def _against_checkpoint(place: Place, start: int | None, end: int | None,
                        offset: int | None) -> tuple[str, bool]:
    """How the log fits the checkpoint: ``(what to say, whether it is damage)``.

    The server replays the log after the checkpoint's offset, so the log must
    start at or before it; a log that ends before it (cut short by a repair)
    is fine: the server sets it aside and starts a new log at the offset.
    """
    if offset is None or start is None:
        return "", False
    if start > offset:
        return (f"GAP: the log in {place.log_dir} starts at offset {start} but the checkpoint "
                f"{place.checkpoint} covers only up to {offset}: the records between are "
                f"missing and the server will refuse to start"), True
    if end is not None and end < offset:
        return (f"note: the log ends at offset {end}, before the checkpoint's {offset}: "
                f"on start the server sets it aside and begins a new log at {offset}"), False
    return "", False


_PLAIN = re.compile(rb"^[!#-\[\]-~]+$")  # printable, no quote or backslash


def _quote(arg) -> str:
    if not isinstance(arg, bytes):
        return str(arg)
    if _PLAIN.match(arg):
        return arg.decode("ascii")
    out = []
    for b in arg:
        if b == 0x22:
            out.append('\\"')
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(b, "\\x%02x" % b))
    return '"' + "".join(out) + '"'


def _iso(ts_ms: int) -> str:
    t = datetime.datetime.fromtimestamp(ts_ms / 1000, datetime.timezone.utc)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(d: recovery.Damage) -> str:
    return f"{d.path} at byte {d.position}: {d.reason}"


def _verify(place: Place, out) -> int:
    directory = place.given
    try:
        offset, cp_line = _checkpoint_offset(place)
    except CheckpointError as e:
        print(f"CORRUPT CHECKPOINT: {e}; the server will refuse to start", file=out)
        return EXIT_CORRUPT
    s = recovery.scan(place.log_dir)
    fit, gap = _against_checkpoint(place, s.start_offset, s.end_offset, offset)
    lines = []
    if s.damage is None:
        size = sum(os.path.getsize(p.path) for p in s.segments)
        if not gap:
            lines.append(f"OK: {len(s.segments)} segments, {s.records} records, offsets "
                         f"{s.start_offset}..{s.end_offset}, {size} bytes")
        code = EXIT_OK
    elif s.damage.torn:
        lines.append(f"TORN TAIL: {_describe(s.damage)}\n"
                     f"{s.records} records (offsets {s.start_offset}..{s.end_offset}) are intact; "
                     f"the server truncates the tail on start (after a backup)")
        code = EXIT_TORN
    else:
        lines.append(f"CORRUPT: {_describe(s.damage)}\n"
                     f"{s.records} records before it are intact; the server will refuse to start. "
                     f"Run `keel-wal repair {directory}` to keep them.")
        code = EXIT_CORRUPT
    if gap:
        code = EXIT_CORRUPT
    for line in (fit, cp_line):
        if line:
            lines.append(line)
    print("\n".join(lines), file=out)
    return code


def _dump(place: Place, out) -> int:
    directory = place.log_dir
    segs = segment.list_segments(directory)
    db = [0 if segs and segs[0].first_offset == 0 else None]

    def show(offset: int, ts: int, payload: bytes) -> None:
        reader = hiredis.Reader()
        reader.feed(payload)
        when = _iso(ts)

        def line(text: str) -> None:
            print(f"{offset}\t{when}\tdb={_db()}\t{text}", file=out)

        try:
            while (cmd := reader.gets()) is not False:
                if not isinstance(cmd, list) or not cmd:
                    line(f"<not a command: {cmd!r}>")
                    continue
                if cmd[0].lower() == b"select" and len(cmd) == 2:
                    db[0] = int(cmd[1])
                    continue
                line(" ".join(map(_quote, cmd)))
            if reader.has_data():
                line("<incomplete RESP at the end of the payload>")
        except (hiredis.ProtocolError, ValueError) as e:
            line(f"<undecodable payload of {len(payload)} bytes: {e}>")

    def _db() -> str:
        return "?" if db[0] is None else str(db[0])

    s = recovery.scan(directory, on_record=show)
    if s.damage is not None:
        print(f"{'torn tail' if s.damage.torn else 'corruption'}: {_describe(s.damage)}",
              file=sys.stderr)
        return EXIT_TORN if s.damage.torn else EXIT_CORRUPT
    return EXIT_OK


def _repair(place: Place, out) -> int:
    try:
        offset, _ = _checkpoint_offset(place)
    except CheckpointError as e:
        print(f"CORRUPT CHECKPOINT: {e}; repair keeps log records only, the "
              f"checkpoint is left as it is", file=out)
        return EXIT_CORRUPT
    r = recovery.repair(place.log_dir)
    if r.damage is None:
        print(f"OK: the log is intact ({r.records_kept} records), nothing to repair", file=out)
    else:
        print(f"damage: {_describe(r.damage)}", file=out)
        print(f"kept {r.records_kept} records (log now ends at offset {r.end_offset})", file=out)
        print(f"dropped {r.dropped_bytes} bytes ({r.dropped_records} intact-looking "
              f"records after the damage)", file=out)
        if r.truncated is not None:
            print(f"truncated {r.truncated.path} at byte {r.truncated.position}; "
                  f"original saved as {r.truncated.backup}", file=out)
        for src, dest in r.moved:
            print(f"moved {src} -> {dest}", file=out)
    segs = segment.list_segments(place.log_dir)
    start = segs[0].first_offset if segs else None
    fit, gap = _against_checkpoint(place, start, r.end_offset, offset)
    if fit:
        # A gap is records that are gone: no repair brings them back.
        print(fit, file=out)
    return EXIT_CORRUPT if gap else EXIT_OK


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="keel-wal", description="Inspect, verify and "
                                     "repair a Keel write-ahead log directory.")
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("verify", "check every header, CRC and offset"),
                       ("dump", "print every command with offset, time and database"),
                       ("repair", "keep the records before the first damage")):
        sub.add_parser(name, help=text).add_argument(
            "dir", help="the server's data directory (--dir) or its appendonlydir")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dir):
        print(f"keel-wal: {args.dir}: no such directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        place = locate(args.dir)
    except NoLog as e:
        print(f"keel-wal: {e}", file=sys.stderr)
        return EXIT_USAGE
    action = {"verify": _verify, "dump": _dump, "repair": _repair}[args.action]
    return action(place, out)


if __name__ == "__main__":
    sys.exit(main())
