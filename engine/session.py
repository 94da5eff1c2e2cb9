"""What a command handler sees of the client that sent it.

Handlers take ``(c, argv)``: ``c`` is a ``Session`` (the server's client
objects are subclasses), ``argv`` the command's arguments as ``bytes``.
A session knows its keyspace, its selected database and its protocol version;
nothing about sockets.
"""

from __future__ import annotations

from engine.keyspace import Database, Keyspace


class Session:
    __slots__ = ("ks", "db", "protocol")

    def __init__(self, ks: Keyspace, db_index: int = 0):
        self.ks = ks
        self.db: Database = ks.dbs[db_index]
        self.protocol = 2

    @property
    def db_index(self) -> int:
        return self.db.index

    def select(self, index: int) -> None:
        self.db = self.ks.dbs[index]

    def emit(self, argv: list) -> None:
        """Record an effect in the selected database."""
        self.ks.effects.append((self.db.index, argv))

    def notify(self, cls: int, event: bytes, key: bytes) -> None:
        """Announce a keyspace event in the selected database (``engine.notify``;
        callers test ``ks.notify_flags`` first)."""
        self.ks.notify(cls, event, self.db.index, key)
