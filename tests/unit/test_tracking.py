"""CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO: replies and refusals as redis-server's.

Every case is sent to Keel and to a real redis-server on fresh connections
(``pair``) and the replies compared; the invalidation messages themselves
are tested over sockets in ``tests/integration/test_tracking*.py``.
"""

from __future__ import annotations

import pytest

from tests.support import Err, encode


@pytest.mark.parametrize("args", [
    (),  # arity
    ("maybe",),
    ("maybe", "BCAST"),
    ("on", "FOO"),
    ("off", "FOO"),
    ("on", "REDIRECT"),  # REDIRECT without its id
    ("on", "PREFIX"),
    ("on", "REDIRECT", "abc"),
    ("on", "REDIRECT", "99999"),
    ("on", "REDIRECT", "0"),
    ("on", "REDIRECT", "-1"),
    ("off", "REDIRECT", "99999"),  # options are checked even to turn it off
    ("on", "PREFIX", "a"),
    ("on", "BCAST", "PREFIX", "a", "PREFIX", "ab"),
    ("on", "BCAST", "PREFIX", "ab", "PREFIX", "a"),
    ("on", "BCAST", "PREFIX", "a", "PREFIX", "a"),
    ("on", "BCAST", "PREFIX", "x", "PREFIX", ""),
    ("on", "OPTIN", "OPTOUT"),
    ("on", "BCAST", "OPTIN"),
    ("on", "BCAST", "OPTOUT"),
    ("on", "bcast", "optin", "optout"),
    ("maybe", "PREFIX", "a"),
])
def test_tracking_refusals_match_redis(pair, args):
    r = pair.check("CLIENT", "TRACKING", *args)
    assert isinstance(r, Err)
    pair.check("CLIENT", "TRACKINGINFO")  # and nothing changed


@pytest.mark.parametrize("args", [
    ("on",),
    ("ON", "optin", "optin"),
    ("on", "OPTOUT", "NOLOOP"),
    ("on", "BCAST"),
    ("on", "BCAST", "PREFIX", "a", "PREFIX", "b", "NOLOOP"),
    ("on", "BCAST", "PREFIX", "b:", "PREFIX", "a:"),
    ("off",),
    ("Off", "NOLOOP", "BCAST"),
])
def test_tracking_modes_as_trackinginfo_and_getredir_show_them(pair, args):
    pair.check("CLIENT", "TRACKING", *args)
    pair.check("CLIENT", "TRACKINGINFO")
    pair.check("CLIENT", "GETREDIR")


def _raw(client, *args) -> bytes:
    """The bytes of the reply to ``args`` (one small reply: one read and a check)."""
    import hiredis

    client.send_raw(encode(args))
    probe, buf = hiredis.Reader(), b""
    while True:
        chunk = client.sock.recv(65536)
        buf += chunk
        probe.feed(chunk)
        if probe.gets() is not False:
            return buf


def test_trackinginfo_in_resp3_is_a_map_with_a_set_of_flags(pair):
    pair.both("HELLO", "3")
    pair.check("CLIENT", "TRACKING", "on", "BCAST", "NOLOOP", "PREFIX", "z")
    k, r = _raw(pair.keel, "CLIENT", "TRACKINGINFO"), _raw(pair.ref, "CLIENT", "TRACKINGINFO")
    assert k == r == (b"%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n"
                      b"$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*1\r\n$1\r\nz\r\n")


def test_switching_modes_while_tracking_is_refused(pair):
    pair.check("CLIENT", "TRACKING", "on")
    pair.check("CLIENT", "TRACKING", "on", "BCAST")
    pair.check("CLIENT", "TRACKING", "on", "OPTIN")
    pair.check("CLIENT", "TRACKING", "on", "OPTOUT")
    pair.check("CLIENT", "TRACKING", "on", "NOLOOP")  # the same mode again takes the new options
    pair.check("CLIENT", "TRACKINGINFO")
    pair.check("CLIENT", "TRACKING", "on", "OPTIN")  # NOLOOP dropped: not repeated
    pair.check("CLIENT", "TRACKINGINFO")
    pair.check("CLIENT", "TRACKING", "off")
    pair.check("CLIENT", "TRACKING", "on", "OPTOUT")
    pair.check("CLIENT", "TRACKINGINFO")


def test_prefixes_add_up_and_may_not_overlap_existing_ones(pair):
    pair.check("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a")
    pair.check("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a")
    pair.check("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab")
    pair.check("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b")
    pair.check("CLIENT", "TRACKING", "on", "BCAST")  # adds the empty prefix
    pair.check("CLIENT", "TRACKINGINFO")
    pair.check("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "c")  # overlaps '' first: they are met in order
    pair.check("CLIENT", "TRACKING", "off")
    pair.check("CLIENT", "TRACKINGINFO")
    pair.check("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "c")
    pair.check("CLIENT", "TRACKINGINFO")


def test_caching_refusals_and_replies(pair):
    pair.check("CLIENT", "CACHING")
    pair.check("CLIENT", "CACHING", "yes", "no")
    pair.check("CLIENT", "CACHING", "yes")  # not tracking
    pair.check("CLIENT", "TRACKING", "on")
    pair.check("CLIENT", "CACHING", "yes")
    pair.check("CLIENT", "CACHING", "no")
    pair.check("CLIENT", "CACHING", "maybe")
    pair.check("CLIENT", "TRACKING", "off")
    pair.check("CLIENT", "TRACKING", "on", "OPTIN")
    pair.check("CLIENT", "CACHING", "no")
    pair.check("CLIENT", "CACHING", "YES")
    pair.check("CLIENT", "TRACKINGINFO")
    pair.check("SET", "x", "1")  # any command but CLIENT's spends the flag
    pair.check("CLIENT", "TRACKINGINFO")
    pair.check("CLIENT", "TRACKING", "off")
    pair.check("CLIENT", "TRACKING", "on", "OPTOUT")
    pair.check("CLIENT", "CACHING", "yes")
    pair.check("CLIENT", "CACHING", "no")
    pair.check("CLIENT", "TRACKINGINFO")


def test_getredir_and_trackinginfo_arity(pair):
    pair.check("CLIENT", "GETREDIR", "x")
    pair.check("CLIENT", "TRACKINGINFO", "x")
    pair.check("CLIENT", "GETREDIR")


def test_client_help_names_the_tracking_subcommands(k):
    lines = k.call("CLIENT", "HELP")
    names = {line.split(b" ")[0] for line in lines if not line.startswith(b" ")}
    assert {b"TRACKING", b"CACHING", b"GETREDIR", b"TRACKINGINFO"} <= names
