"""The replication id a server's data belongs to, kept across restarts.

``DIR/replication.json``: ``{"replid", "replid2", "second_offset"}``, written
atomically (temporary file, fsync, rename, fsync of the directory) whenever
the id changes: a full sync, a promotion, CHANGE-REPL-ID. With the log it
lets a restarted primary's replicas, and a restarted replica itself,
continue with ``+CONTINUE`` instead of a full sync: the log says how far the
data goes, this file says which history it is.

A full sync in progress writes ``replid: null`` first: a replica that dies
half-way through loading restarts with an id nobody accepts, so it syncs
in full again instead of continuing from data that is not its primary's.
"""

from __future__ import annotations

import json
import logging
import os

log = logging.getLogger("keel.replication")

NAME = "replication.json"


def load(directory: str) -> dict:
    path = os.path.join(directory, NAME)
    try:
        with open(path, "rb") as f:
            st = json.loads(f.read())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("ignoring %s (%s): this server starts a new replication id", path, e)
        return {}
    return st if isinstance(st, dict) else {}


def save(directory: str, st: dict) -> None:
    path = os.path.join(directory, NAME)
    tmp = path + ".tmp"
    try:
        os.makedirs(directory, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(json.dumps(st).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        log.warning("could not save %s: %s", path, e)
