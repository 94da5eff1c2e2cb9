"""Pub/sub: who listens to what, and delivering messages to them.

Three name spaces, each a map from a name to the subscribers listening on it
(a dict used as an insertion-ordered set): ``channels`` (SUBSCRIBE, PUBLISH),
``patterns`` (PSUBSCRIBE: Redis's glob rules, ``engine.glob``) and ``shard``
(SSUBSCRIBE, SPUBLISH; one shard in a standalone server). Each subscribed
client has one ``Subscriber`` (``client.pubsub``) holding its own three sets,
so that UNSUBSCRIBE without arguments, CLIENT LIST and a disconnect cost what
that client holds, not what the server holds.

Invariants:
* a name is in a map only while someone listens on it (PUBSUB CHANNELS and
  INFO count the maps' sizes);
* ``client.pubsub`` is a ``Subscriber`` exactly while the client holds at
  least one subscription of any kind, else None; ``client.regate()`` runs
  whenever it changes, so that a subscribed client takes the full dispatch
  (which refuses a RESP2 subscriber's other commands);
* the count a (un)subscribe confirmation carries is the client's channels
  plus patterns, or its shard channels for SSUBSCRIBE/SUNSUBSCRIBE, as Redis
  counts them.

Delivery (``publish``, also called by keyspace notifications and tracking):
a channel nobody listens on costs one dict lookup while no pattern exists;
patterns are matched only when there are some. A message is encoded once per
publish (and per protocol: RESP2 arrays, RESP3 push frames) and handed to
``Connection.push``, which writes it behind every reply already produced for
that connection (the messages of one loop turn in one write).
A message for the client whose command is running (its own PUBLISH in RESP3,
a notification of its own write) waits for that command's reply, or for the
whole EXEC's, as in Redis 7.2: ``after_command`` appends it.

Slow subscribers: a subscriber's pending output (what its transport has not
sent, plus replies held for the log) is checked against
``client-output-buffer-limit pubsub`` every ``check_bytes`` bytes pushed to
it. Past the hard limit, or above the soft limit for longer than the soft
seconds (a timer looks again when those seconds are up, traffic or not), the
connection is aborted: its unsent output is dropped and the server's memory
stays bounded. Messages are fire-and-forget: never journaled, and they wait
only behind the replies produced before them.
"""

from __future__ import annotations

import logging
import time

from engine import glob
from engine.reply import Raw
from server.dispatch import NO_REPLY

log = logging.getLogger("keel.pubsub")

# Name spaces: the index of each in ``PubSub.spaces`` and ``Subscriber.sets``.
CHANNEL, PATTERN, SHARD = 0, 1, 2

# (subscribe, unsubscribe) confirmation kinds of each space, as bulk strings.
_KINDS = tuple(tuple(b"$%d\r\n%s\r\n" % (len(k), k) for k in pair) for pair in (
    (b"subscribe", b"unsubscribe"), (b"psubscribe", b"punsubscribe"), (b"ssubscribe", b"sunsubscribe")))

# A subscriber's output is measured each time an eighth of its smallest limit
# has been pushed to it, and at least every CHECK_MAX bytes: it passes a limit
# by at most that much (and one message) before it is cut off.
CHECK_MAX = 64 * 1024
_NEVER = 1 << 62


class Subscriber:
    """One client's subscriptions: ``sets[space]`` is an ordered set of names."""

    __slots__ = ("client", "conn", "sets", "unchecked", "soft_since", "timer")

    def __init__(self, client):
        self.client = client
        self.conn = client.conn
        self.sets = ({}, {}, {})
        self.unchecked = 0  # bytes pushed since the output was last measured
        self.soft_since = None  # monotonic time the output went past the soft limit
        self.timer = None  # looks again when the soft seconds are up

    def count(self, space: int) -> int:
        """The count a confirmation carries (see the module's invariants)."""
        sets = self.sets
        return len(sets[SHARD]) if space == SHARD else len(sets[CHANNEL]) + len(sets[PATTERN])


def _confirmation(resp3: bool, kind: bytes, name, count: int) -> bytes:
    if name is None:  # UNSUBSCRIBE with nothing to leave
        target = b"_\r\n" if resp3 else b"$-1\r\n"
    else:
        target = b"$%d\r\n%s\r\n" % (len(name), name)
    return (b">3\r\n" if resp3 else b"*3\r\n") + kind + target + b":%d\r\n" % count


class PubSub:
    """The server's subscriptions (``server.pubsub``)."""

    def __init__(self, server):
        self.server = server
        self.channels: dict[bytes, dict] = {}
        self.patterns: dict[bytes, dict] = {}
        self.shard: dict[bytes, dict] = {}
        self.spaces = (self.channels, self.patterns, self.shard)
        self.matchers: dict[bytes, object] = {}  # pattern -> compiled predicate
        # (connection, frame) of messages for the client whose command is
        # running, sent after its reply (``after_command``).
        self.later: list = []
        self.hard = self.soft = self.soft_seconds = 0
        self.check_bytes = _NEVER
        self._set_limits(server.config["client-output-buffer-limit"])
        server.config.listeners.append(self._config_changed)

    # -- publishing ------------------------------------------------------------
    def publish(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to ``channel``'s subscribers and to every matching
        pattern's; the number of receivers (a client counted once per match)."""
        subs = self.channels.get(channel)
        matchers = self.matchers
        if subs is None and not matchers:
            return 0
        n = 0
        if subs is not None:
            n = len(subs)
            self._deliver(subs, b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(channel), channel, len(message), message))
        if matchers:
            for pattern, match in matchers.items():
                if match(channel):
                    psubs = self.patterns[pattern]
                    n += len(psubs)
                    self._deliver(psubs, b"*4\r\n$8\r\npmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                        len(pattern), pattern, len(channel), channel, len(message), message))
        return n

    def spublish(self, channel: bytes, message: bytes) -> int:
        """SPUBLISH: ``message`` to the shard channel's subscribers; how many."""
        subs = self.shard.get(channel)
        if subs is None:
            return 0
        self._deliver(subs, b"*3\r\n$8\r\nsmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(channel), channel, len(message), message))
        return len(subs)

    def _deliver(self, subs: dict, frame2: bytes) -> None:
        """``frame2`` (the RESP2 array) to each of ``subs``; RESP3 subscribers
        get the same frame as a push (``>`` for ``*``), built once if needed."""
        frame3 = None
        size = len(frame2)
        check_bytes = self.check_bytes
        for s in subs:
            if s.client.protocol == 3:
                if frame3 is None:
                    frame3 = b">" + frame2[1:]
                frame = frame3
            else:
                frame = frame2
            conn = s.conn
            if conn.outbox is None:
                conn.push(frame)
            else:  # the client running this command: after its reply
                self.later.append((conn, frame))
            s.unchecked += size
            if s.unchecked >= check_bytes:
                self.check(s)

    def after_command(self, client, reply):
        """``reply`` (the encoded reply of the command ``client`` just ran, or
        None when it sends none) followed by the messages the command sent the
        client itself."""
        later = self.later
        self.later = []
        mine = client.conn
        out = [reply] if reply else []
        for conn, frame in later:
            if conn is mine:
                out.append(frame)
            else:  # not the running client's (cannot happen from dispatch): as usual
                conn.push(frame)
        return b"".join(out)

    # -- subscribing -----------------------------------------------------------
    def subscribe(self, client, space: int, names: list) -> bytes:
        """Add ``names`` to ``client``'s subscriptions in ``space``; the confirmations."""
        s = client.pubsub
        fresh = s is None
        if fresh:
            s = Subscriber(client)
        mine = s.sets[space]
        where = self.spaces[space]
        resp3 = client.protocol == 3
        kind = _KINDS[space][0]
        out = []
        for name in names:
            if name not in mine:
                mine[name] = None
                subs = where.get(name)
                if subs is None:
                    subs = where[name] = {}
                    if space == PATTERN:
                        self.matchers[name] = glob.compile(name)
                subs[s] = None
            out.append(_confirmation(resp3, kind, name, s.count(space)))
        if fresh:
            client.pubsub = s
            client.regate()
        return b"".join(out)

    def unsubscribe(self, client, space: int, names: list) -> bytes:
        """Remove ``names`` (every name of ``space`` when empty); the confirmations."""
        s = client.pubsub
        resp3 = client.protocol == 3
        kind = _KINDS[space][1]
        if s is None:
            return b"".join(_confirmation(resp3, kind, name, 0) for name in names or [None])
        mine = s.sets[space]
        if not names:
            names = list(mine)
            if not names:
                return _confirmation(resp3, kind, None, s.count(space))
        out = []
        for name in names:
            if name in mine:
                del mine[name]
                self._leave(s, space, name)
            out.append(_confirmation(resp3, kind, name, s.count(space)))
        if not any(s.sets):
            self._forget(s)
        return b"".join(out)

    def remove(self, client) -> None:
        """Drop every subscription of ``client`` silently (RESET, disconnect)."""
        s = client.pubsub
        if s is None:
            return
        for space, mine in enumerate(s.sets):
            for name in mine:
                self._leave(s, space, name)
            mine.clear()
        self._forget(s)

    def _leave(self, s: Subscriber, space: int, name: bytes) -> None:
        where = self.spaces[space]
        subs = where[name]
        del subs[s]
        if not subs:
            del where[name]
            if space == PATTERN:
                del self.matchers[name]

    def _forget(self, s: Subscriber) -> None:
        if s.timer is not None:
            s.timer.cancel()
            s.timer = None
        client = s.client
        client.pubsub = None
        client.regate()

    # -- introspection -----------------------------------------------------------
    def names(self, space: int, pattern: bytes | None = None) -> list:
        """PUBSUB CHANNELS / SHARDCHANNELS: the active names matching ``pattern``."""
        names = list(self.spaces[space])
        if pattern is None:
            return names
        match = glob.compile(pattern)
        return [n for n in names if match(n)]

    def numsub(self, space: int, names: list) -> list:
        """PUBSUB NUMSUB / SHARDNUMSUB: each name followed by its subscriber count."""
        where = self.spaces[space]
        out = []
        for name in names:
            out.append(name)
            out.append(len(where.get(name, ())))
        return out

    # -- slow subscribers ------------------------------------------------------
    def _config_changed(self, name: str, value) -> None:
        if name == "client-output-buffer-limit":
            self._set_limits(value)

    def _set_limits(self, limits: dict) -> None:
        self.hard, self.soft, self.soft_seconds = limits["pubsub"]
        set_ = [v for v in (self.hard, self.soft) if v]
        self.check_bytes = max(1, min(CHECK_MAX, min(set_) // 8)) if set_ else _NEVER

    def pending_output(self, conn) -> int:
        """What ``conn`` has produced and not yet sent: the transport's buffer
        plus the replies held for the log (messages pushed this turn are first
        handed to the transport, in order)."""
        conn.flush_pushed()
        return conn.output_len() + sum(map(len, conn.held))

    def check(self, s: Subscriber) -> None:
        """Disconnect ``s`` if its pending output is past the pubsub limits."""
        s.unchecked = 0
        conn = s.conn
        if conn.closed:
            return
        pending = self.pending_output(conn)
        hard, soft = self.hard, self.soft
        if hard and pending >= hard:
            self._cut(s, pending)
        elif soft and pending >= soft:
            now = time.monotonic()
            if s.soft_since is None:
                s.soft_since = now
                self._recheck_in(s, self.soft_seconds)
            elif now - s.soft_since > self.soft_seconds:
                self._cut(s, pending)
        elif s.soft_since is not None:
            s.soft_since = None
            if s.timer is not None:
                s.timer.cancel()
                s.timer = None

    def _recheck_in(self, s: Subscriber, seconds: float) -> None:
        if s.timer is not None:
            s.timer.cancel()
        # Just past the soft seconds: the limit is "stays above for longer than".
        s.timer = self.server.loop.call_later(seconds + 0.01, self._recheck, s)

    def _recheck(self, s: Subscriber) -> None:
        s.timer = None
        if s.client.pubsub is not s or s.soft_since is None:
            return
        self.check(s)
        if s.soft_since is not None and not s.conn.closed and s.timer is None:
            # Over, but not yet for long enough (the timer came early): look again.
            self._recheck_in(s, max(0.0, self.soft_seconds - (time.monotonic() - s.soft_since)))

    def _cut(self, s: Subscriber, pending: int) -> None:
        client = s.client
        log.warning("Client id=%d addr=%s closed: %d bytes of output pending, past "
                    "client-output-buffer-limit pubsub", client.id, client.addr, pending)
        s.conn.abort()


def confirm(client, frames: bytes):
    """The reply of a (un)subscribe command: its confirmations. They reach the
    client even under CLIENT REPLY OFF or SKIP, as Redis 7.2 sends them."""
    if client.reply_mode == "on":
        return Raw(frames)
    client.conn.push(frames)
    return NO_REPLY
