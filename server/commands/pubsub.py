"""Pub/sub commands: SUBSCRIBE & co., PUBLISH, SPUBLISH, PUBSUB.

The state and the delivery live in ``server.pubsub``; these handlers parse
and reply. A (un)subscribe command replies with one confirmation per name
(``subscribe``/``unsubscribe`` arrays in RESP2, push frames in RESP3), built
there. The subscribe family changes what the client may send next (a RESP2
subscriber is limited to the commands ``server.dispatch.SUBSCRIBED_OK``
names), so it never takes the hot path; PUBLISH and SPUBLISH do.
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.keyspecs import spec
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import INTS, help_lines
from server.commands.connection import RESET_HOOKS
from server.pubsub import CHANNEL, PATTERN, SHARD, confirm

_FLAGS = "pubsub noscript loading stale"
_ACL = "@pubsub @slow"


_SMALL = len(INTS)


@command("subscribe", -2, _FLAGS, acl=_ACL, group="pubsub", since="2.0.0", fast_path=False)
def subscribe(c, argv):
    """SUBSCRIBE channel [channel ...] -- listen for messages on the channels. O(N) in the channels."""
    return confirm(c, c.server.pubsub.subscribe(c, CHANNEL, argv[1:]))


@command("unsubscribe", -1, _FLAGS, acl=_ACL, group="pubsub", since="2.0.0", fast_path=False)
def unsubscribe(c, argv):
    """UNSUBSCRIBE [channel ...] -- stop listening on the channels (on all, without arguments). O(N)."""
    return confirm(c, c.server.pubsub.unsubscribe(c, CHANNEL, argv[1:]))


@command("psubscribe", -2, _FLAGS, acl=_ACL, group="pubsub", since="2.0.0", fast_path=False)
def psubscribe(c, argv):
    """PSUBSCRIBE pattern [pattern ...] -- listen on every channel matching the glob patterns. O(N)."""
    return confirm(c, c.server.pubsub.subscribe(c, PATTERN, argv[1:]))


@command("punsubscribe", -1, _FLAGS, acl=_ACL, group="pubsub", since="2.0.0", fast_path=False)
def punsubscribe(c, argv):
    """PUNSUBSCRIBE [pattern ...] -- stop listening on the patterns (on all, without arguments). O(N)."""
    return confirm(c, c.server.pubsub.unsubscribe(c, PATTERN, argv[1:]))


@command("ssubscribe", -2, _FLAGS, keys=(1, -1, 1), acl=_ACL, group="pubsub", since="7.0.0",
         fast_path=False,
         key_specs=(spec("not_key", 1, -1),))
def ssubscribe(c, argv):
    """SSUBSCRIBE shardchannel [shardchannel ...] -- listen on the shard channels. O(N)."""
    return confirm(c, c.server.pubsub.subscribe(c, SHARD, argv[1:]))


@command("sunsubscribe", -1, _FLAGS, keys=(1, -1, 1), acl=_ACL, group="pubsub", since="7.0.0",
         fast_path=False,
         key_specs=(spec("not_key", 1, -1),))
def sunsubscribe(c, argv):
    """SUNSUBSCRIBE [shardchannel ...] -- stop listening on the shard channels (on all, without arguments). O(N)."""
    return confirm(c, c.server.pubsub.unsubscribe(c, SHARD, argv[1:]))


@command("publish", 3, "pubsub loading stale fast may_replicate", acl="@pubsub @fast", group="pubsub", since="2.0.0")
def publish(c, argv):
    """PUBLISH channel message -- send the message; the number of clients that received it.
    O(N+M): N subscribers of the channel, M patterns (only while some exist)."""
    channel, message = argv[1], argv[2]
    if type(channel) is not bytes or type(message) is not bytes:
        raise TypeError("PUBLISH takes bulk strings")  # the hot path names the protocol error
    n = c.server.pubsub.publish(channel, message)
    return INTS[n] if n < _SMALL else n


@command("spublish", 3, "pubsub loading stale fast may_replicate", keys=(1, 1, 1), acl="@pubsub @fast", group="pubsub",
         since="7.0.0",
         key_specs=(spec("not_key"),))
def spublish(c, argv):
    """SPUBLISH shardchannel message -- send the message on the shard channel; how many received it. O(N)."""
    channel, message = argv[1], argv[2]
    if type(channel) is not bytes or type(message) is not bytes:
        raise TypeError("SPUBLISH takes bulk strings")
    n = c.server.pubsub.spublish(channel, message)
    return INTS[n] if n < _SMALL else n


def _reset(c) -> None:
    """RESET leaves every channel, pattern and shard channel, with no confirmation."""
    c.server.pubsub.remove(c)


RESET_HOOKS.append(_reset)


# --- PUBSUB -------------------------------------------------------------------

_SUB = "pubsub loading stale"


@command("pubsub", -2, "", acl="@slow", group="pubsub", since="2.8.0", fast_path=False)
def pubsub(c, argv):
    """PUBSUB subcommand [arg ...] -- what the server's pub/sub holds."""
    return dispatch_subcommand(pubsub.command, c, argv)


def _optional_pattern(argv: list):
    if len(argv) > 3:
        raise CommandError(errors.SUBCOMMAND_SYNTAX.format(argv[1].decode("utf-8", "replace"), "PUBSUB"))
    return argv[2] if len(argv) == 3 else None


@subcommand("pubsub", "channels", -2, _SUB, acl=_ACL, since="2.8.0")
def pubsub_channels(c, argv):
    """PUBSUB CHANNELS [pattern] -- the channels someone listens on (matching the pattern). O(N)."""
    return c.server.pubsub.names(CHANNEL, _optional_pattern(argv))


@subcommand("pubsub", "numsub", -2, _SUB, acl=_ACL, since="2.8.0")
def pubsub_numsub(c, argv):
    """PUBSUB NUMSUB [channel ...] -- each channel and its number of subscribers (patterns aside). O(N)."""
    return c.server.pubsub.numsub(CHANNEL, argv[2:])


@subcommand("pubsub", "numpat", 2, _SUB, acl=_ACL, since="2.8.0")
def pubsub_numpat(c, argv):
    """PUBSUB NUMPAT -- the number of distinct patterns someone listens on. O(1)."""
    return len(c.server.pubsub.patterns)


@subcommand("pubsub", "shardchannels", -2, _SUB, acl=_ACL, since="7.0.0")
def pubsub_shardchannels(c, argv):
    """PUBSUB SHARDCHANNELS [pattern] -- the shard channels someone listens on (matching the pattern). O(N)."""
    return c.server.pubsub.names(SHARD, _optional_pattern(argv))


@subcommand("pubsub", "shardnumsub", -2, _SUB, acl=_ACL, since="7.0.0")
def pubsub_shardnumsub(c, argv):
    """PUBSUB SHARDNUMSUB [shardchannel ...] -- each shard channel and its number of subscribers. O(N)."""
    return c.server.pubsub.numsub(SHARD, argv[2:])


_HELP = (
    "CHANNELS [<pattern>]",
    "    The channels at least one client listens on, those matching the glob <pattern> if given.",
    "NUMPAT",
    "    How many distinct patterns clients listen on.",
    "NUMSUB [<channel> ...]",
    "    Each channel named, followed by how many clients listen on it (pattern subscribers not counted).",
    "SHARDCHANNELS [<pattern>]",
    "    The shard channels at least one client listens on, those matching the glob <pattern> if given.",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Each shard channel named, followed by how many clients listen on it.",
)


@subcommand("pubsub", "help", 2, "loading stale", acl="@slow", since="6.2.0")
def pubsub_help(c, argv):
    """PUBSUB HELP -- the subcommands of PUBSUB. O(1)."""
    return help_lines("PUBSUB", _HELP)
