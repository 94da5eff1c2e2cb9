"""FAILOVER: hand the primary role to a replica with no acknowledged write lost."""

from __future__ import annotations

from engine.errors import CommandError


def parse_and_start(c, argv):
    raise CommandError("ERR FAILOVER is not available yet")
