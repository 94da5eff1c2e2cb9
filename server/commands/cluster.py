"""CLUSTER, READONLY, READWRITE and ASKING on a server without cluster
support, as a redis-server started without ``cluster-enabled`` answers
them; and LOLWUT.

Keel runs standalone. The cluster commands are in the command table all the
same, with Redis's arities, flags and ACL categories, so that COMMAND INFO,
ACL CAT and ACL rules naming them (``+cluster|info``, ``-cluster``,
``+@connection`` taking READONLY) resolve as on Redis; each answers
``-ERR This instance has cluster support disabled`` once its name and
arity pass (an unknown subcommand, or a wrong argument count, is refused
first, in dispatch, as Redis refuses it). CLUSTER HELP too: Redis refuses it
when cluster support is off.

LOLWUT [VERSION n [arg ...]] draws something and signs it with the server's
version, the way clients expect it (a verbatim string whose last line ends
``Redis ver. x.y.z``). Versions 5 and 6 take Redis's numeric arguments
(validated and clamped alike) and draw Keel's own pictures; any other
version, or none, gives the signature alone, as Redis 7.2 does for version 7.
"""

from __future__ import annotations

import random

from engine.errors import CommandError
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import Verbatim
from engine.util import parse_int

CLUSTER_DISABLED = "ERR This instance has cluster support disabled"

_ADMIN = "admin stale no_async_loading"
_ADMIN_ACL = "@admin @slow @dangerous"
_NONDET = "nondeterministic_output"


def _disabled():
    """A handler of its own for each subcommand (each carries its ``command``)."""
    def refuse(c, argv):
        raise CommandError(CLUSTER_DISABLED)
    return refuse


@command("cluster", -2, "", acl="@slow", group="cluster", since="3.0.0", fast_path=False)
def cluster(c, argv):
    """CLUSTER subcommand [arg ...] -- cluster state and administration (disabled here)."""
    return dispatch_subcommand(cluster.command, c, argv)


# name, arity, flags, ACL categories, since, tips: as redis-server 7.2 declares them.
_SUBCOMMANDS = (
    ("addslots", -3, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("addslotsrange", -4, _ADMIN, _ADMIN_ACL, "7.0.0", ""),
    ("bumpepoch", 2, _ADMIN, _ADMIN_ACL, "3.0.0", _NONDET),
    ("count-failure-reports", 3, "admin stale", _ADMIN_ACL, "3.0.0", _NONDET),
    ("countkeysinslot", 3, "stale", "@slow", "3.0.0", ""),
    ("delslots", -3, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("delslotsrange", -4, _ADMIN, _ADMIN_ACL, "7.0.0", ""),
    ("failover", -2, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("flushslots", 2, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("forget", 3, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("getkeysinslot", 4, "stale", "@slow", "3.0.0", _NONDET),
    ("help", 2, "loading stale", "@slow", "5.0.0", ""),
    ("info", 2, "stale", "@slow", "3.0.0", _NONDET),
    ("keyslot", 3, "stale", "@slow", "3.0.0", ""),
    ("links", 2, "stale", "@slow", "7.0.0", _NONDET),
    ("meet", -4, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("myid", 2, "stale", "@slow", "3.0.0", ""),
    ("myshardid", 2, "stale", "@slow", "7.2.0", _NONDET),
    ("nodes", 2, "stale", "@slow", "3.0.0", _NONDET),
    ("replicas", 3, "admin stale", _ADMIN_ACL, "5.0.0", _NONDET),
    ("replicate", 3, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("reset", -2, "admin noscript stale", _ADMIN_ACL, "3.0.0", ""),
    ("saveconfig", 2, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("set-config-epoch", 3, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("setslot", -4, _ADMIN, _ADMIN_ACL, "3.0.0", ""),
    ("shards", 2, "stale", "@slow", "7.0.0", _NONDET),
    ("slaves", 3, "admin stale", _ADMIN_ACL, "3.0.0", _NONDET),
    ("slots", 2, "stale", "@slow", "3.0.0", _NONDET),
)

for _name, _arity, _flags, _acl, _since, _tips in _SUBCOMMANDS:
    subcommand("cluster", _name, _arity, _flags, acl=_acl, since=_since, tips=_tips,
               summary=f"CLUSTER {_name.upper()} -- refused: this server has no cluster support.")(_disabled())


@command("readonly", 1, "loading stale fast", acl="@fast @connection", group="cluster", since="3.0.0",
         fast_path=False)
def readonly(c, argv):
    """READONLY -- let a cluster replica serve reads (refused: no cluster support)."""
    raise CommandError(CLUSTER_DISABLED)


@command("readwrite", 1, "loading stale fast", acl="@fast @connection", group="cluster", since="3.0.0",
         fast_path=False)
def readwrite(c, argv):
    """READWRITE -- end READONLY (refused: no cluster support)."""
    raise CommandError(CLUSTER_DISABLED)


@command("asking", 1, "fast", acl="@fast @connection", group="cluster", since="3.0.0", fast_path=False)
def asking(c, argv):
    """ASKING -- follow an ASK redirection (refused: no cluster support)."""
    raise CommandError(CLUSTER_DISABLED)


# === LOLWUT ==================================================================

def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def _tiles(cols: int, per_row: int, per_col: int) -> str:
    """Version 5: rows of tiles that come loose, more with every row down."""
    rnd = random.Random()
    width = max(1, cols // max(1, per_row))
    tidy, loose = "\u2588", "\u2596\u2597\u2598\u259d\u259a\u259e\u2591\u2592 "
    lines = []
    for row in range(per_col):
        disorder = row / max(1, per_col - 1) if per_col > 1 else 0.0
        line = []
        for _ in range(per_row):
            ch = rnd.choice(loose) if rnd.random() < disorder else tidy
            line.append(ch * width)
        lines.append("".join(line)[:cols])
    return "\n".join(lines) + "\n\nTiles that will not stay put. "


def _skyline(cols: int, rows: int) -> str:
    """Version 6: a skyline of lit and dark windows. Drawn a column at a
    time and turned into lines by ``zip``: the largest (1000 x 1000) costs
    a few milliseconds, not a million calls."""
    rnd = random.Random()
    columns = []
    for _ in range(cols):
        h = rnd.randint(0, rows)
        lit = "".join(rnd.choice(".:") for _ in range(4))
        windows = (lit * (h // 4 + 1))[:max(0, h - 1)]
        columns.append(" " * (rows - h) + ("^" + windows if h else ""))
    lines = ["".join(line).rstrip() or " " for line in zip(*columns)]
    lines.append("_" * cols)
    return "\n".join(lines) + "\nA city that never sleeps, drawn for whoever asks. "


@command("lolwut", -1, "readonly fast", acl="@read @fast", group="server", since="5.0.0", fast_path=False)
def lolwut(c, argv):
    """LOLWUT [VERSION version] -- a picture and the server's version. O(N) in the picture's size."""
    from server.app import REDIS_VERSION
    version = int(REDIS_VERSION.split(".")[0])
    args = []
    if len(argv) >= 3 and argv[1].lower() == b"version":
        version = parse_int(argv[2])
        args = [parse_int(a) for a in argv[3:]]
    if version == 5:
        cols, per_row, per_col = (args + [66, 8, 12][len(args):])[:3]
        art = _tiles(_clamp(cols, 1, 1000), _clamp(per_row, 1, 200), _clamp(per_col, 1, 200))
    elif version == 6:
        cols, rows = (args + [80, 20][len(args):])[:2]
        art = _skyline(_clamp(cols, 1, 1000), _clamp(rows, 1, 1000))
    else:
        art = ""
    return Verbatim(f"{art}Redis ver. {REDIS_VERSION}\n".encode())
