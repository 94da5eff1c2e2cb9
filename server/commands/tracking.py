"""CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO: client-side caching.

The grammar and every refusal live here, in Redis's order and words; what
tracking does lives in ``server.tracking``. Options are all parsed (and a
REDIRECT target looked up) before ON or OFF is looked at, so ``CLIENT
TRACKING off REDIRECT 99`` fails as in Redis when client 99 does not exist.
RESET turns tracking off (``RESET_HOOKS``).
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import subcommand
from engine.reply import OK, Set
from engine.util import to_int_or_none
from server.commands.connection import RESET_HOOKS

_SUB = "noscript loading stale"


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


@subcommand("client", "tracking", -3, _SUB, acl="@slow @connection", since="6.0.0")
def client_tracking(c, argv):
    """CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX prefix ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP] --
    turn server-assisted client-side caching on or off. O(1), O(N) in the prefixes."""
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        more = i + 1 < n
        if opt == b"redirect" and more:
            i += 1
            if redirect:
                raise CommandError(errors.TRACKING_REDIRECT_TWICE)
            target = to_int_or_none(argv[i])
            if target is None:
                raise CommandError(errors.NOT_INTEGER)
            if target not in c.server.clients:
                raise CommandError(errors.TRACKING_REDIRECT_MISSING)
            redirect = target
        elif opt == b"bcast":
            bcast = True
        elif opt == b"optin":
            optin = True
        elif opt == b"optout":
            optout = True
        elif opt == b"noloop":
            noloop = True
        elif opt == b"prefix" and more:
            i += 1
            prefixes.append(argv[i])
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    mode = argv[2].lower()
    tracking = c.server.tracking
    if mode == b"off":
        tracking.disable(c)
        return OK
    if mode != b"on":
        raise CommandError(errors.SYNTAX)
    if prefixes and not bcast:
        raise CommandError(errors.TRACKING_PREFIX_NEEDS_BCAST)
    st = c.tracking
    if st is not None and st.bcast != bcast:
        raise CommandError(errors.TRACKING_BCAST_SWITCH)
    if bcast and (optin or optout):
        raise CommandError(errors.TRACKING_BCAST_OPTS)
    if optin and optout:
        raise CommandError(errors.TRACKING_OPTIN_OPTOUT)
    if st is not None and ((optin and st.optout) or (optout and st.optin)):
        raise CommandError(errors.TRACKING_OPT_SWITCH)
    if bcast:
        overlap = tracking.check_prefixes(c, prefixes)
        if overlap is not None:
            given, other, existing = overlap
            text = errors.TRACKING_PREFIX_OVERLAPS_EXISTING if existing else errors.TRACKING_PREFIX_OVERLAPS_GIVEN
            raise CommandError(text.format(_text(given), _text(other)))
    tracking.enable(c, redirect, bcast, optin, optout, noloop, prefixes)
    return OK


@subcommand("client", "caching", 3, _SUB, acl="@slow @connection", since="6.0.0")
def client_caching(c, argv):
    """CLIENT CACHING YES|NO -- remember (OPTIN) or skip (OPTOUT) the keys of the next command. O(1)."""
    st = c.tracking
    if st is None:
        raise CommandError(errors.CACHING_NOT_TRACKING)
    opt = argv[2].lower()
    if opt == b"yes":
        if not st.optin:
            raise CommandError(errors.CACHING_YES_NOT_OPTIN)
    elif opt == b"no":
        if not st.optout:
            raise CommandError(errors.CACHING_NO_NOT_OPTOUT)
    else:
        raise CommandError(errors.SYNTAX)
    st.caching = True
    return OK


@subcommand("client", "getredir", 2, _SUB, acl="@slow @connection", since="6.0.0")
def client_getredir(c, argv):
    """CLIENT GETREDIR -- the id invalidations are redirected to: 0 for none, -1 when not tracking. O(1)."""
    st = c.tracking
    return -1 if st is None else st.redirect


@subcommand("client", "trackinginfo", 2, _SUB, acl="@slow @connection", since="6.2.0")
def client_trackinginfo(c, argv):
    """CLIENT TRACKINGINFO -- this connection's tracking flags, redirect and prefixes. O(N) in the prefixes."""
    st = c.tracking
    if st is None:
        return {b"flags": Set([b"off"]), b"redirect": -1, b"prefixes": []}
    return {b"flags": Set(st.info_flags()), b"redirect": st.redirect, b"prefixes": sorted(st.prefixes)}


def _reset(c) -> None:
    c.server.tracking.disable(c)


RESET_HOOKS.append(_reset)
