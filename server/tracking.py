"""Client-side caching: who may hold which keys, and the invalidation messages.

A client that turns CLIENT TRACKING on gets a ``State`` in ``client.tracking``
(None otherwise, which keeps it on the hot path); the server's ``Tracking``
keeps what all of them need:

* default mode: the keys of each read-only command such a client runs are
  remembered in ``table`` (key -> the id, or set of ids, of the clients that
  read it). The key alone is remembered, whatever its database, as Redis
  does. A change to a remembered key sends each of its clients one
  invalidation and forgets the key: a client is told again only after it
  read the key again.
* OPTIN / OPTOUT: only the command after CLIENT CACHING YES is remembered
  (OPTIN), or every command but the one after CLIENT CACHING NO (OPTOUT).
  The flag lasts one command, or the whole of a MULTI ... EXEC; CLIENT's
  own subcommands leave it set.
* BCAST: nothing is remembered. A change to a key under one of the client's
  prefixes (the empty prefix: every key) is collected per prefix, and once
  the loop turn's commands are done each prefix sends its keys, sorted and
  each once, to its clients (as Redis does before it sleeps).
* NOLOOP: no invalidation for a change the client made itself.
* REDIRECT id: the messages go to that connection instead.

Messages: to a RESP3 connection the push ``>2 invalidate [keys]``; to a
RESP2 redirect target in pub/sub mode (subscribed to anything) the array
``message __redis__:invalidate [keys]``. That is no PUBLISH: the payload is
an array, and only the redirect target gets it, whatever it subscribed to,
exactly as Redis sends it; anyone else gets nothing (RESP2 has no push).
FLUSHDB and FLUSHALL send a null in place of the keys to every tracking
client (one for a FLUSHALL, however many databases it empties; the null of
the tracker's protocol, as Redis sends it, unless the target speaks RESP2)
and forget every remembered key. When the redirect target is gone the
tracker is sent the push ``>2 tracking-redir-broken id`` instead (RESP3
only), each time, and CLIENT LIST shows it flagged ``R``. Messages leave
through ``Connection.push``, so a message never overtakes a reply already
produced for that connection; to a subscriber they count against
``client-output-buffer-limit pubsub`` as its other messages do.

Order against the client's own reply (Redis 7 defers these): while a
connection runs a batch of commands its ``outbox`` is set, and a message
for it is kept in ``State.pending`` and appended after the running
command's reply by ``after_command`` (pushed instead under CLIENT REPLY
OFF|SKIP, which drops the reply but not the message). NOLOOP holds back
only a change made by that command itself, not one made while the blocked
clients it woke are served (``Blocking.serve`` runs once it is done).

Entry points: dispatch calls ``after_command(client, stat, argv, out)`` after
every command of a tracking client; EXEC calls ``remember(client, stat,
argv)`` for each queued command it runs (the keys of a read are recorded,
no reply is touched; the flags and the pending messages are dealt with by
EXEC's own ``after_command``). The keyspace calls ``_changed`` (in
``ks.watchers``) for every change and ``_flushed`` (``ks.flush_watchers``)
for a database emptied whole, only while some client tracks: with nobody
tracking, writes pay nothing.

``tracking-table-max-keys`` (0: no limit) bounds ``table``: past it, keys
chosen at random are invalidated (their clients told, as for a change) and
forgotten, as Redis does.

A client that turns tracking off or disconnects is forgotten lazily in
``table``: its id stays under the keys it read until they change (ids are
never reused), as in Redis. With no tracking client left the table is
dropped whole.
"""

from __future__ import annotations

import random

import hiredis

from engine.dictscan import layout, pick

_INVALIDATE = b">2\r\n$10\r\ninvalidate\r\n"
_MESSAGE = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
_BROKEN = b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n"
_NULL2 = b"$-1\r\n"
_NULL3 = b"_\r\n"

# Read-only scripts: the commands they run are remembered, not the script's keys.
_NOT_REMEMBERED = frozenset(("eval_ro", "evalsha_ro", "fcall_ro"))

# Keys invalidated for tracking-table-max-keys per call; the rest a loop turn later.
EVICT_BATCH = 1000

_pack = hiredis.pack_command


def _keys(keys) -> bytes:
    """The array of key names that an invalidation carries."""
    return _pack(tuple(keys))


class State:
    """One client's tracking options (``client.tracking``)."""

    __slots__ = ("redirect", "bcast", "optin", "optout", "noloop", "caching", "broken", "prefixes",
                 "pending")

    def __init__(self):
        self.redirect = 0  # the id messages go to; 0: this connection
        self.bcast = self.optin = self.optout = self.noloop = False
        self.caching = False  # CLIENT CACHING YES|NO given for the next command
        self.broken = False  # the redirect target was found gone
        self.prefixes: list[bytes] = []  # BCAST's, in the order given
        # Messages for this client while its own command runs: keys, None for
        # a flush; sent after the reply (``after_command``).
        self.pending: list = []

    def info_flags(self) -> list[bytes]:
        """CLIENT TRACKINGINFO's flags, in Redis's order."""
        out = [b"on"]
        if self.bcast:
            out.append(b"bcast")
        if self.optin:
            out.append(b"optin")
            if self.caching:
                out.append(b"caching-yes")
        if self.optout:
            out.append(b"optout")
            if self.caching:
                out.append(b"caching-no")
        if self.noloop:
            out.append(b"noloop")
        if self.broken:
            out.append(b"broken_redirect")
        return out

    def list_flags(self) -> str:
        """CLIENT LIST's flag letters: t, then R (redirect broken), B (BCAST)."""
        return "t" + ("R" if self.broken else "") + ("B" if self.bcast else "")


class _Prefix:
    """The BCAST clients of one prefix and the keys under it changed this turn."""

    __slots__ = ("clients", "keys")

    def __init__(self):
        self.clients: dict = {}  # id -> client
        # changed key -> the NOLOOP client whose command changed it, or None
        self.keys: dict[bytes, object] = {}


class Tracking:
    def __init__(self, server):
        self.server = server
        self.ks = server.ks
        self.table: dict[bytes, object] = {}  # key -> client id, or a set of them
        self.items = 0  # (key, client) pairs in table: INFO tracking_total_items
        self.prefixes: dict[bytes, _Prefix] = {}
        self._starts: tuple = ()  # the prefixes, for one str.startswith per change
        self.clients: dict = {}  # id -> every client with tracking on
        self.noloop_bcast: dict = {}  # id -> the BCAST clients with NOLOOP
        self.max_keys = server.config["tracking-table-max-keys"]
        self._hook = self._changed  # one bound method: ks.watchers finds it by identity
        self._broadcast_due = False
        self._evict_due = False
        server.config.listeners.append(self._config_changed)

    # -- turning it on and off -------------------------------------------------
    def enable(self, client, redirect: int, bcast: bool, optin: bool, optout: bool, noloop: bool,
               prefixes: list) -> None:
        """CLIENT TRACKING ON with options already checked: a client tracking
        already takes the new options (its BCAST prefixes add up)."""
        st = client.tracking
        if st is None:
            if not self.clients:
                self.ks.watchers.append(self._hook)
                self.ks.flush_watchers[self._hook] = self._flushed
            st = client.tracking = State()
            self.clients[client.id] = client
            client.regate()
        st.redirect = redirect
        st.broken = False
        st.bcast, st.optin, st.optout, st.noloop = bcast, optin, optout, noloop
        if bcast:
            for p in prefixes or (b"",):
                if p not in st.prefixes:
                    st.prefixes.append(p)
                    pr = self.prefixes.get(p)
                    if pr is None:
                        pr = self.prefixes[p] = _Prefix()
                    pr.clients[client.id] = client
            self._starts = tuple(self.prefixes)
        if bcast and noloop:
            self.noloop_bcast[client.id] = client
        else:
            self.noloop_bcast.pop(client.id, None)

    def disable(self, client) -> None:
        """CLIENT TRACKING OFF, RESET, a disconnection."""
        st = client.tracking
        if st is None:
            return
        for p in st.prefixes:
            pr = self.prefixes[p]
            del pr.clients[client.id]
            if not pr.clients:
                del self.prefixes[p]
        self._starts = tuple(self.prefixes)
        self.noloop_bcast.pop(client.id, None)
        del self.clients[client.id]
        client.tracking = None
        client.regate()
        if not self.clients:
            self.ks.watchers.remove(self._hook)
            del self.ks.flush_watchers[self._hook]
            self.table = {}
            self.items = 0

    def check_prefixes(self, client, prefixes: list) -> tuple | None:
        """The first overlap among ``prefixes`` and the client's own, as
        (given, other, True when other is one the client has already)."""
        st = client.tracking
        have = sorted(st.prefixes) if st is not None else ()  # Redis meets them in order
        for i, p in enumerate(prefixes):
            for q in have:
                if p.startswith(q) or q.startswith(p):
                    return p, q, True
            for q in prefixes[i + 1:]:
                if p.startswith(q) or q.startswith(p):
                    return p, q, False
        return None

    # -- remembering what a client read -------------------------------------------
    def after_command(self, client, stat, argv: list, out: bytes) -> bytes:
        """After each command of a tracking client: remember a read's keys,
        spend CLIENT CACHING's flag, append the messages its own command
        caused to its reply ``out``."""
        st = client.tracking
        if not st.bcast and "readonly" in stat.flags:
            self._remember(client, st, stat, argv)
        if st.caching and client.multi is None and (stat.parent or stat).name != "client":
            st.caching = False
        if self.max_keys and len(self.table) > self.max_keys:
            self._evict()
        if st.pending:
            out = self._flush_pending(client, st, out)
        return out

    def remember(self, client, stat, argv: list) -> None:
        """One command run inside EXEC: remember its keys if it is a read."""
        st = client.tracking
        if st is not None and not st.bcast and "readonly" in stat.flags:
            self._remember(client, st, stat, argv)

    def _remember(self, client, st: State, stat, argv: list) -> None:
        if (st.optin and not st.caching) or (st.optout and st.caching) or stat.fullname in _NOT_REMEMBERED:
            return
        cid = client.id
        table = self.table
        for i in stat.key_positions(argv):
            key = argv[i]
            ids = table.get(key)
            if ids is None:
                table[key] = cid
            elif type(ids) is int:
                if ids == cid:
                    continue
                table[key] = {ids, cid}
            elif cid in ids:
                continue
            else:
                ids.add(cid)
            self.items += 1

    # -- changes -------------------------------------------------------------------------
    def _changed(self, db, key: bytes) -> None:
        """ks.watchers hook: ``key`` changed (written, deleted, expired).
        Not while the dataset loads (in a worker thread): nobody could read
        anything yet, so nothing is cached."""
        if self.ks.loading:
            return
        if key in self.table:
            self._invalidate(key, True)
        if self._starts and key.startswith(self._starts):
            self._collect(key)

    @staticmethod
    def _mid_batch(client) -> bool:
        """Whether ``client``'s connection is running a batch of its
        commands: a message for it then waits for the current reply."""
        conn = client.conn
        return conn is not None and conn.outbox is not None

    def _own(self, client) -> bool:
        """Whether the change being made is ``client``'s own: its command
        runs now, and no blocked client is being served after it
        (``Blocking.serve`` runs once the command is done)."""
        return self._mid_batch(client) and not self.server.blocking._serving

    def _invalidate(self, key: bytes, by_write: bool) -> None:
        """Tell the clients that remembered ``key`` and forget it. An
        eviction (``by_write`` False) is no change of anyone's: NOLOOP does
        not hold it back."""
        ids = self.table.pop(key)
        if type(ids) is int:
            self.items -= 1
            ids = (ids,)
        else:
            self.items -= len(ids)
        clients = self.server.clients
        payload = None
        for cid in ids:
            c = clients.get(cid)
            if c is None:
                continue
            st = c.tracking
            if st is None or st.bcast:  # turned off (or to BCAST) since it read the key
                continue
            if self._mid_batch(c):
                if not (st.noloop and by_write and self._own(c)):
                    st.pending.append(key)
                continue
            if payload is None:
                payload = _keys((key,))
            self._deliver(c, st, payload)

    def _collect(self, key: bytes) -> None:
        """A change under some BCAST prefix: kept for the end of the loop turn."""
        writer = self._noloop_writer() if self.noloop_bcast else None
        for p, pr in self.prefixes.items():
            if key.startswith(p):
                pr.keys[key] = writer
        if not self._broadcast_due:
            self._broadcast_due = True
            self.server.loop.call_soon(self._broadcast)

    def _noloop_writer(self):
        """The BCAST NOLOOP client whose command runs now, if any (their
        number bounds the cost of every change under a prefix)."""
        for c in self.noloop_bcast.values():
            if self._own(c):
                return c
        return None

    def _broadcast(self) -> None:
        self._broadcast_due = False
        for p in sorted(self.prefixes):
            pr = self.prefixes[p]
            changed = pr.keys
            if not changed:
                continue
            pr.keys = {}
            keys = sorted(changed)
            common = _keys(keys)
            for c in list(pr.clients.values()):
                st = c.tracking
                payload = common
                if st.noloop:
                    theirs = [k for k in keys if changed[k] is not c]
                    if not theirs:
                        continue
                    if len(theirs) < len(keys):
                        payload = _keys(theirs)
                self._deliver(c, st, payload)

    def _flushed(self, db) -> None:
        """ks.flush_watchers hook: a database emptied whole (FLUSHDB), or all
        of them (FLUSHALL, ``db`` None)."""
        if self.ks.loading:
            return
        for c in self.clients.values():
            st = c.tracking
            if self._mid_batch(c):
                st.pending.append(None)
            else:
                self._deliver(c, st, None)
        self.table = {}
        self.items = 0

    # -- tracking-table-max-keys ------------------------------------------------------
    def _config_changed(self, name: str, value) -> None:
        if name == "tracking-table-max-keys":
            self.max_keys = value
            if value and len(self.table) > value:
                self._evict()

    def _evict(self) -> None:
        """Invalidate random keys until the table is within its limit, at
        most EVICT_BATCH now and the rest in later loop turns."""
        table = self.table
        for _ in range(EVICT_BATCH):
            if len(table) <= self.max_keys or not self.max_keys:
                return
            self._invalidate(pick(table, random.randrange(layout(table)[0])), False)
        if len(table) > self.max_keys and not self._evict_due:
            self._evict_due = True
            self.server.loop.call_soon(self._evict_later)

    def _evict_later(self) -> None:
        self._evict_due = False
        self._evict()

    # -- delivery -----------------------------------------------------------------------
    def _frame(self, owner, st: State, payload: bytes | None):
        """(connection's client, bytes) of one message for ``owner``, or None
        when there is nobody it can reach; ``payload`` None is a flush."""
        target = owner
        if st.redirect:
            target = self.server.clients.get(st.redirect)
            if target is None:
                st.broken = True
                return (owner, _BROKEN % st.redirect) if owner.protocol == 3 else None
        if payload is None:
            payload = _NULL3 if owner.protocol == 3 and target.protocol == 3 else _NULL2
        if target.protocol == 3:
            return target, _INVALIDATE + payload
        if st.redirect and target.pubsub is not None:
            return target, _MESSAGE + payload
        return None

    def _deliver(self, owner, st: State, payload: bytes | None) -> None:
        m = self._frame(owner, st, payload)
        if m is not None:
            self._push(*m)

    def _push(self, target, frame: bytes) -> None:
        """Write ``frame`` to ``target``; a subscriber's output is metered
        against client-output-buffer-limit pubsub as its messages are."""
        conn = target.conn
        if conn is None:
            return
        conn.push(frame)
        s = target.pubsub
        if s is not None:
            s.unchecked += len(frame)
            pubsub = self.server.pubsub
            if s.unchecked >= pubsub.check_bytes:
                pubsub.check(s)

    def _flush_pending(self, client, st: State, out: bytes) -> bytes:
        """The messages kept while ``client``'s command ran: its own after
        its reply ``out`` (pushed instead when CLIENT REPLY drops the reply,
        as Redis still sends them), a redirect target's pushed."""
        mine = []
        for item in st.pending:
            m = self._frame(client, st, None if item is None else _keys((item,)))
            if m is None:
                continue
            target, frame = m
            if target is client and client.reply_mode == "on":
                mine.append(frame)
            else:
                self._push(target, frame)
        st.pending = []
        return out + b"".join(mine) if mine else out

    # -- INFO ----------------------------------------------------------------------------
    def info_clients(self) -> int:
        return len(self.clients)

    def info_stats(self) -> list:
        return [
            ("tracking_total_keys", len(self.table)),
            ("tracking_total_items", self.items),
            ("tracking_total_prefixes", len(self.prefixes)),
        ]
