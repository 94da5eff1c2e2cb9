"""``keel-wal`` / ``python -m wal``: inspect, verify and repair a log directory.

    keel-wal verify DIR   exit 0 and a summary when the log is intact;
                          exit 3 for a torn tail (the server truncates it on
                          start), exit 1 for corruption (the server refuses to
                          start), naming the file and byte
    keel-wal dump DIR     one line per command: record offset, ISO time (UTC),
                          database (tracked through SELECT), the command
    keel-wal repair DIR   keep the records before the first damage: back up and
                          truncate the damaged segment, move later ones aside
Exit 2: bad usage or no such directory.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys

import hiredis

from wal import recovery, segment

EXIT_OK = 0
EXIT_CORRUPT = 1
EXIT_USAGE = 2
EXIT_TORN = 3

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


def _verify(directory: str, out) -> int:
    s = recovery.scan(directory)
    size = sum(os.path.getsize(p.path) for p in s.segments)
    if s.damage is None:
        if not s.segments:
            print(f"OK: {directory} holds no segments", file=out)
        else:
            print(f"OK: {len(s.segments)} segments, {s.records} records, offsets "
                  f"{s.start_offset}..{s.end_offset}, {size} bytes", file=out)
        return EXIT_OK
    if s.damage.torn:
        print(f"TORN TAIL: {_describe(s.damage)}\n"
              f"{s.records} records (offsets {s.start_offset}..{s.end_offset}) are intact; "
              f"the server truncates the tail on start (after a backup)", file=out)
        return EXIT_TORN
    print(f"CORRUPT: {_describe(s.damage)}\n"
          f"{s.records} records before it are intact; the server will refuse to start. "
          f"Run `keel-wal repair {directory}` to keep them.", file=out)
    return EXIT_CORRUPT


def _dump(directory: str, out) -> int:
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


def _repair(directory: str, out) -> int:
    r = recovery.repair(directory)
    if r.damage is None:
        print(f"OK: the log is intact ({r.records_kept} records), nothing to repair", file=out)
        return EXIT_OK
    print(f"damage: {_describe(r.damage)}", file=out)
    print(f"kept {r.records_kept} records (log now ends at offset {r.end_offset})", file=out)
    print(f"dropped {r.dropped_bytes} bytes ({r.dropped_records} intact-looking "
          f"records after the damage)", file=out)
    if r.truncated is not None:
        print(f"truncated {r.truncated.path} at byte {r.truncated.position}; "
              f"original saved as {r.truncated.backup}", file=out)
    for src, dest in r.moved:
        print(f"moved {src} -> {dest}", file=out)
    return EXIT_OK


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="keel-wal", description="Inspect, verify and "
                                     "repair a Keel write-ahead log directory.")
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("verify", "check every header, CRC and offset"),
                       ("dump", "print every command with offset, time and database"),
                       ("repair", "keep the records before the first damage")):
        sub.add_parser(name, help=text).add_argument("dir")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dir):
        print(f"keel-wal: {args.dir}: no such directory", file=sys.stderr)
        return EXIT_USAGE
    action = {"verify": _verify, "dump": _dump, "repair": _repair}[args.action]
    return action(args.dir, out)


if __name__ == "__main__":
    sys.exit(main())
