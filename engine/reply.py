"""Reply values: what a command handler returns, before it becomes RESP.

The engine never writes bytes to a socket; it returns one of these values and
``server.resp`` encodes it for the client's protocol (RESP2 or RESP3):

=====================  ==========================  ===========================
handler returns        RESP2                       RESP3
=====================  ==========================  ===========================
``bytes``              bulk string ``$``           bulk string ``$``
``int`` (not bool)     integer ``:``               integer ``:``
``None``               null bulk ``$-1``           null ``_``
``NULL_ARRAY``         null array ``*-1``          null ``_``
``list`` / ``tuple``   array ``*``                 array ``*``
``dict``               flat array of k, v          map ``%``
``Set``                array ``*``                 set ``~``
``float``              bulk string (17 digits)     double ``,``
``bool``               integer 0/1                 boolean ``#t``/``#f``
``Status``             simple string ``+``         simple string ``+``
``Verbatim``           bulk string                 verbatim ``=txt:``
``BigNumber``          bulk string                 big number ``(``
``Raw``                the bytes as they are       the bytes as they are
``CommandError``       error ``-``                 error ``-``
=====================  ==========================  ===========================

``Raw`` is for replies that are identical in both protocols and computed once
at import (``OK``, ``PONG``, ``:0``, ``:1``): the hot path appends them as is.
``help_lines`` builds the reply every ``<container> HELP`` subcommand gives.
"""


class Raw(bytes):
    """An already-encoded reply, the same in RESP2 and RESP3."""

    __slots__ = ()


class Status(str):
    """A simple-string reply (``+text``) that is not worth pre-encoding."""

    __slots__ = ()


class Verbatim(bytes):
    """A text blob (INFO, CLIENT LIST): bulk in RESP2, ``=txt:`` in RESP3."""

    __slots__ = ()


class BigNumber(bytes):
    """A RESP3 big number (``(digits``); a bulk string in RESP2 (script replies)."""

    __slots__ = ()


class Set(list):
    """An unordered collection: array in RESP2, set type in RESP3."""

    __slots__ = ()


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()

OK = Raw(b"+OK\r\n")
PONG = Raw(b"+PONG\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
ZERO = Raw(b":0\r\n")
ONE = Raw(b":1\r\n")
EMPTY_ARRAY = Raw(b"*0\r\n")
EMPTY_BULK = Raw(b"$0\r\n\r\n")

# Integer replies for small numbers, shared so a handler that returns a count
# allocates nothing: INTS[n] for 0 <= n < len(INTS).
INTS = tuple(Raw(b":%d\r\n" % i) for i in range(1024))


def help_lines(command: str, lines) -> list:
    """The reply to a HELP subcommand (CLIENT HELP, CONFIG HELP, …): one simple string per line.

    ``lines`` lists each subcommand's syntax followed by its description,
    indented four spaces. A heading naming the command comes first and the
    entry for HELP itself last, so every HELP reply has the same shape.
    """
    return [Status(f"{command} <subcommand> [<arg> ...], where <subcommand> is one of:"),
            *map(Status, lines),
            Status("HELP"), Status("    Show this list of subcommands.")]
