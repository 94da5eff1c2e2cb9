"""Keyspace notifications, the server side: the engine's events, published.

``Notifier`` installs ``deliver`` as the keyspace's ``notify_hook`` and keeps
``ks.notify_flags`` in step with ``notify-keyspace-events`` (config file,
command line, CONFIG SET: a change applies from the next command on). An
event ``(class, event, db, key)`` from a handler (``engine.notify``) is
published through ``server.pubsub.publish``, as Redis publishes it:

* with K, on ``__keyspace@<db>__:<key>``, the message being the event name;
* with E, on ``__keyevent@<db>__:<event>``, the message being the key;

K before E, each event as the command announces it, so a subscriber sees a
command's events in the order Redis sends them. Publishing is synchronous
(pub/sub writes the message behind every reply already produced for each
subscriber, and a message for the client that runs the command behind that
command's reply). Messages are fire-and-forget: never journaled, never
held for the log; a command replayed from the log announces nothing
(``Keyspace.notify`` checks ``ks.loading``).

Cost: with notifications off the hook is never called (the engine tests
``notify_flags`` first); with them on, two channel names are built per event
and publishing to a channel nobody listens on is one dict lookup while no
pattern subscription exists.
"""

from __future__ import annotations

from engine import notify


class Notifier:
    """Publishes the keyspace's events for ``server`` (``server.notifier``)."""

    def __init__(self, server):
        self.server = server
        self.flags = 0
        # Channel prefixes per database, built once: b"__keyspace@3__:".
        self.space = [b"__keyspace@%d__:" % i for i in range(len(server.ks.dbs))]
        self.event = [b"__keyevent@%d__:" % i for i in range(len(server.ks.dbs))]
        server.ks.notify_hook = self.deliver
        self._apply(server.config["notify-keyspace-events"])
        server.config.listeners.append(self._config_changed)

    def _config_changed(self, name: str, value) -> None:
        if name == "notify-keyspace-events":
            self._apply(value)

    def _apply(self, flags: int) -> None:
        self.flags = flags
        self.server.ks.notify_flags = notify.gate(flags)

    def deliver(self, cls: int, event: bytes, db_index: int, key: bytes) -> None:
        """The keyspace's hook: publish one event on the channels K and E name."""
        publish = self.server.pubsub.publish
        flags = self.flags
        if flags & notify.KEYSPACE:
            publish(self.space[db_index] + key, event)
        if flags & notify.KEYEVENT:
            publish(self.event[db_index] + event, key)
