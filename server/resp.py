"""RESP: encoding replies (RESP2 and RESP3) and the fallback request parser.

Encoding: ``encode2(value)`` / ``encode3(value)`` turn an engine reply value
(see ``engine.reply``) into bytes. The hot path in ``server.protocol`` handles
``Raw`` and ``bytes`` inline and calls these only for everything else. A
bulk string may also be a ``bytearray``: a string changed in place, which a
read command returns as stored. Encoding copies its bytes into the output at
once, so a later command that changes the value cannot change a reply that
is still held (``server.protocol`` holds replies encoded, as bytes).

Parsing: well-formed RESP arrays are parsed by ``hiredis.Reader`` on the hot
path. ``RequestParser`` is the slow path, used for inline commands (telnet),
for requests that span reads, and to name the exact error when hiredis
rejects a request. It enforces Redis's limits and reports errors in Redis's
words:

* ``parse(buf, pos)`` returns ``(argv, new_pos)`` for one complete request,
  ``(None, pos)`` when more bytes are needed, or raises ``ProtocolError``.
* An incomplete request is validated as far as it goes, so a client that
  announces a 10 GB bulk is refused at once, not after it sent 10 GB.
"""

from __future__ import annotations

import hiredis

from engine import errors
from engine.errors import CommandError
from engine.reply import NULL_ARRAY, BigNumber, Raw, Set, Status, Verbatim
from engine.util import to_int_or_none

INLINE_MAX = 64 * 1024  # PROTO_INLINE_MAX_SIZE: longest inline request / header line
INT_MAX = 2**31 - 1
UNAUTH_MAX_MULTIBULK = 10
UNAUTH_MAX_BULK = 16384
# A request of a million arguments is read this many at a time, so that the
# connection can let other clients in between (server.protocol, TURN_TIME).
ARGS_PER_CALL = 10000

_INTS = tuple(b":%d\r\n" % i for i in range(1024))


class ProtocolError(Exception):
    """A request that cannot be parsed: reply with ``text`` and close."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    @property
    def reply(self) -> bytes:
        # latin-1: the offending byte of "expected '$', got 'X'" goes out raw.
        return b"-" + self.text.encode("latin-1") + b"\r\n"


# --- encoding --------------------------------------------------------------

def format_double(d: float) -> bytes:
    """Doubles as Redis 7.0 prints them (``%.17g``, ``inf``, ``-inf``)."""
    if d != d:
        return b"nan"
    if d in (float("inf"), float("-inf")):
        return b"inf" if d > 0 else b"-inf"
    return b"%.17g" % d


def encode_error(e: CommandError) -> bytes:
    # Arguments quoted in an error go out as the client sent them, as Redis
    # sends them: a text that decoded them with "surrogateescape" gets its
    # raw bytes back (an unknown command named b"\xa0X" is named b"\xa0X").
    try:
        text = e.text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        text = e.text.encode("utf-8", "replace")
    return b"-" + text.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


# An array whose elements are all ``bytes`` is exactly the RESP of a request
# with those arguments: hiredis builds it in C (LRANGE, HGETALL, KEYS, …).
_pack = hiredis.pack_command
_ONLY_BYTES = frozenset((bytes,))

try:
    from server._respc import bulk_array as _bulk_array  # built at install (setup.py)
except ImportError:  # a checkout run without building: the same bytes, slower
    def _bulk_array(r):
        if r and set(map(type, r)) <= _ONLY_BYTES:
            return _pack(tuple(r))
        return None


def encode2(r) -> bytes:
    t = type(r)
    if t is Raw:
        return r
    if t is bytes or t is bytearray:
        return b"$%d\r\n%s\r\n" % (len(r), r)
    if t is int:
        return _INTS[r] if 0 <= r < 1024 else b":%d\r\n" % r
    if r is None:
        return b"$-1\r\n"
    if t is list or t is tuple or t is Set:
        out = _bulk_array(r if t is not Set else tuple(r))  # all bulk strings: one pass in C
        if out is not None:
            return out
        return b"*%d\r\n" % len(r) + b"".join([encode2(x) for x in r])
    if t is Status:
        return b"+" + r.encode() + b"\r\n"
    if t is dict:
        out = [b"*%d\r\n" % (2 * len(r))]
        for k, v in r.items():
            out.append(encode2(k))
            out.append(encode2(v))
        return b"".join(out)
    if t is float:
        s = format_double(r)
        return b"$%d\r\n%s\r\n" % (len(s), s)
    if t is bool:
        return b":1\r\n" if r else b":0\r\n"
    if t is Verbatim:
        return b"$%d\r\n%s\r\n" % (len(r), r)
    if r is NULL_ARRAY:
        return b"*-1\r\n"
    if isinstance(r, CommandError):
        return encode_error(r)
    if t is str:
        r = r.encode()
        return b"$%d\r\n%s\r\n" % (len(r), r)
    if t is BigNumber:
        return b"$%d\r\n%s\r\n" % (len(r), r)
    raise TypeError(f"cannot encode reply of type {t.__name__}")


def encode3(r) -> bytes:
    t = type(r)
    if t is Raw:
        return r
    if t is bytes or t is bytearray:
        return b"$%d\r\n%s\r\n" % (len(r), r)
    if t is int:
        return _INTS[r] if 0 <= r < 1024 else b":%d\r\n" % r
    if r is None or r is NULL_ARRAY:
        return b"_\r\n"
    if t is list or t is tuple:
        out = _bulk_array(r)
        if out is not None:
            return out
        return b"*%d\r\n" % len(r) + b"".join([encode3(x) for x in r])
    if t is Set:
        return b"~%d\r\n" % len(r) + b"".join([encode3(x) for x in r])
    if t is Status:
        return b"+" + r.encode() + b"\r\n"
    if t is dict:
        out = [b"%%%d\r\n" % len(r)]
        for k, v in r.items():
            out.append(encode3(k))
            out.append(encode3(v))
        return b"".join(out)
    if t is float:
        return b",%s\r\n" % format_double(r)
    if t is bool:
        return b"#t\r\n" if r else b"#f\r\n"
    if t is Verbatim:
        return b"=%d\r\ntxt:%s\r\n" % (len(r) + 4, r)
    if isinstance(r, CommandError):
        return encode_error(r)
    if t is str:
        r = r.encode()
        return b"$%d\r\n%s\r\n" % (len(r), r)
    if t is BigNumber:
        return b"(%s\r\n" % r
    raise TypeError(f"cannot encode reply of type {t.__name__}")


def encode_command(argv: list) -> bytes:
    """A command as a RESP array of bulk strings (effects, the log, replicas)."""
    return b"*%d\r\n" % len(argv) + b"".join([b"$%d\r\n%s\r\n" % (len(a), a) for a in argv])


_pack = hiredis.pack_command


def requests_length(data: bytes, done: list) -> int:
    """Bytes of ``data`` that the requests ``done`` (its first ones, as hiredis
    returned them) took: where the slow path must resume.

    Almost always they were sent in the canonical encoding, which is checked
    by rebuilding it in C (``pack_command``) and comparing; RESP values are
    self-delimiting, so a matching prefix ends exactly where they did.
    Anything else is scanned again (``skip_requests``).
    """
    try:
        canonical = b"".join([_pack(tuple(a)) for a in done])
    except TypeError:  # None (`*-1`), or an element hiredis did not make a string
        canonical = None
    if canonical is not None and data.startswith(canonical):
        return len(canonical)
    return skip_requests(data, len(done))


def skip_requests(data: bytes, n: int) -> int:
    """Where the ``n``-th top-level RESP value of ``data`` ends, read as hiredis reads.

    The hot path hands a read to the slow path after running its first ``n``
    requests, and the slow path must resume at the next byte. Sizes cannot be
    computed from the parsed arguments: hiredis also reads ``+``, ``(``,
    ``=`` and other elements as strings, and ``~``/``>`` headers as arrays,
    whose encodings differ in length from a bulk string's. So the requests are
    scanned again, on this rare path only. Raises ProtocolError if the bytes
    do not hold ``n`` whole values (the caller then closes the connection
    rather than resume at a guessed byte).
    """
    pos = 0
    try:
        for _ in range(n):
            pos = _skip_value(data, pos)
    except (ValueError, IndexError):
        raise ProtocolError("Protocol error: cannot resume the request stream") from None
    return pos


def _skip_value(data: bytes, pos: int) -> int:
    kind = data[pos]
    eol = data.index(b"\r\n", pos)
    if kind in b"*~>%|":  # array, set, push, map, attribute: count elements (map, attribute: pairs)
        count = int(data[pos + 1:eol])
        pos = eol + 2
        for _ in range(count * 2 if kind in b"%|" else count):
            pos = _skip_value(data, pos)
        return pos
    if kind in b"$=!":  # bulk, verbatim and bulk error strings: a length, then the bytes
        length = int(data[pos + 1:eol])
        if length < 0:
            return eol + 2
        end = eol + 2 + length + 2  # the two bytes after the payload skipped unread, as hiredis does
        if end > len(data):
            raise ValueError("bulk cut short")
        return end
    if kind in b"+-:(,#_":  # one line
        return eol + 2
    raise ValueError(f"unexpected type byte {kind}")


# --- the slow-path request parser -----------------------------------------
#
# Redis scans its query buffer with strchr(), which stops at a NUL byte: a
# header or inline line with a NUL before its terminator is "not complete
# yet", and stays so until the 64 KB line limit refuses it. ``_find`` keeps
# that rule so that the same bytes get the same answer.

def _find(buf, pos: int, ch: bytes) -> int:
    """Index of ``ch`` at or after ``pos`` as strchr() finds it, or -1."""
    i = buf.find(ch, pos)
    if buf.find(b"\0", pos, i if i >= 0 else len(buf)) >= 0:
        return -1
    return i


def _got(byte: int) -> str:
    # The offending byte as Redis prints it: raw, with CR/LF shown as spaces.
    return " " if byte in (10, 13) else chr(byte)


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline request as redis-cli's sdssplitargs does: quotes, escapes."""
    args = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        inq = insq = False
        while True:
            if inq:
                if i >= n:
                    raise ProtocolError(errors.PROTO_UNBALANCED_QUOTES)
                ch = line[i]
                if ch == 92 and i + 3 < n and line[i + 1] == 120 and _ishex(line[i + 2]) and _ishex(line[i + 3]):
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif ch == 92 and i + 1 < n:
                    i += 1
                    c2 = line[i]
                    cur.append(_ESCAPES.get(c2, c2))
                elif ch == 34:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        raise ProtocolError(errors.PROTO_UNBALANCED_QUOTES)
                    inq = False
                    i += 1
                    break
                else:
                    cur.append(ch)
            elif insq:
                if i >= n:
                    raise ProtocolError(errors.PROTO_UNBALANCED_QUOTES)
                ch = line[i]
                if ch == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif ch == 39:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        raise ProtocolError(errors.PROTO_UNBALANCED_QUOTES)
                    insq = False
                    i += 1
                    break
                else:
                    cur.append(ch)
            else:
                if i >= n:
                    break
                ch = line[i]
                if ch in _WORD_ENDS:
                    break
                if ch == 34:
                    inq = True
                elif ch == 39:
                    insq = True
                else:
                    cur.append(ch)
            i += 1
        args.append(bytes(cur))


_ESCAPES = {110: 10, 114: 13, 116: 9, 98: 8, 97: 7}
# An unquoted word ends at these (sdssplitargs), though \v and \f count as
# space between words and after a closing quote: `ECHO a\v` echoes "a\v".
_WORD_ENDS = b" \t\n\r\0"


def _ishex(c: int) -> bool:
    return c in b"0123456789abcdefABCDEF"


class RequestParser:
    """Parses one request at a time out of a buffer, with Redis's limits.

    ``authenticated`` and ``max_bulk`` are read on every call, so a client
    that authenticates mid-stream gets the larger limits from then on.
    Lines end at CR (the byte after it is skipped unread, as Redis does);
    a bulk's two trailing bytes are skipped unread too.

    A multibulk request cut short keeps the arguments read so far, and the
    next call (the caller passes the same request start again, its buffer
    longer) goes on from the first missing one, as Redis keeps
    ``multibulklen``: a request of a million arguments arriving over many
    reads is read once, not once per read. Such a request is also read at
    most ARGS_PER_CALL arguments a call (``more`` then says to call again).
    """

    def __init__(self, max_bulk: int = 512 * 1024 * 1024):
        self.max_bulk = max_bulk
        self.authenticated = True
        self._argv = None  # the arguments so far of a request cut short, or None
        # True when the last parse stopped after ARGS_PER_CALL arguments with
        # more of them in the buffer: call again (after letting others run).
        self.more = False
        self._left = 0  # how many more it needs
        self._at = 0  # where its next one starts, counted from the request's start

    def parse(self, buf, pos: int):
        self.more = False
        if pos >= len(buf):
            return None, pos
        if buf[pos] == 42:  # '*'
            return self._multibulk(buf, pos)
        return self._inline(buf, pos)

    def _inline(self, buf, pos):
        nl = _find(buf, pos, b"\n")
        if nl < 0:
            if len(buf) - pos > INLINE_MAX:
                raise ProtocolError(errors.PROTO_TOO_BIG_INLINE)
            return None, pos
        end = nl
        if end > pos and buf[end - 1] == 13:
            end -= 1
        return split_inline(bytes(buf[pos:end])), nl + 1

    @staticmethod
    def _line(buf, pos, too_big: str):
        """The number after the type byte of the header line at ``pos``."""
        cr = _find(buf, pos, b"\r")
        if cr < 0:
            if len(buf) - pos > INLINE_MAX:
                raise ProtocolError(too_big)
            return None, pos
        if cr + 2 > len(buf):  # the byte after CR must have arrived too
            return None, pos
        return to_int_or_none(bytes(buf[pos + 1:cr])), cr + 2

    def _multibulk(self, buf, pos):
        argv = self._argv
        if argv is not None:  # the same request again, more of it arrived
            self._argv = None
            left = self._left
            p = pos + self._at
        else:
            count, p = self._line(buf, pos, errors.PROTO_TOO_BIG_MBULK)
            if p == pos:
                return None, pos
            if count is None or count > INT_MAX:
                raise ProtocolError(errors.PROTO_INVALID_MULTIBULK_LENGTH)
            if count > UNAUTH_MAX_MULTIBULK and not self.authenticated:
                raise ProtocolError(errors.PROTO_UNAUTH_MULTIBULK_LENGTH)
            argv = []
            if count <= 0:
                return argv, p
            left = count
        max_bulk = self.max_bulk
        authenticated = self.authenticated
        n = len(buf)
        budget = ARGS_PER_CALL
        while left:
            if p >= n:
                break
            budget -= 1
            if not budget:
                self.more = True
                break
            head = buf[p]
            size, p2 = self._line(buf, p, errors.PROTO_TOO_BIG_BULK)
            if p2 == p:
                break
            if head != 36:  # '$'
                raise ProtocolError(errors.PROTO_EXPECTED_DOLLAR.format(_got(head)))
            if size is None or size < 0 or size > max_bulk:
                raise ProtocolError(errors.PROTO_INVALID_BULK_LENGTH)
            if size > UNAUTH_MAX_BULK and not authenticated:
                raise ProtocolError(errors.PROTO_UNAUTH_BULK_LENGTH)
            end = p2 + size
            if end + 2 > n:
                break
            argv.append(bytes(buf[p2:end]))
            p = end + 2
            left -= 1
        if left:  # cut short: keep what was read for the next call
            self._argv = argv
            self._left = left
            self._at = p - pos
            return None, pos
        return argv, p
