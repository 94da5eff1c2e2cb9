"""Bugs the fuzzers found, one regression test each (side by side with Redis where it runs).

Each test names the input that showed the bug and what Keel did wrong.
"""

from __future__ import annotations

import socket

import pytest


def half_close_exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data``, shut the sending side, read until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return out, True
                out += d
        except socket.timeout:
            return out, False
    finally:
        s.close()


HALF_CLOSED = {
    "inline_write": b"SET fk:a b\r\n",
    "multibulk_write": b"*3\r\n$3\r\nSET\r\n$4\r\nfk:a\r\n$1\r\nb\r\n",
    "write_then_reads": b"*3\r\n$3\r\nSET\r\n$4\r\nfk:a\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$4\r\nfk:a\r\n",
    "two_incrs": b"INCR fk:n\r\nINCR fk:n\r\n",
    "write_then_protocol_error": b"INCR fk:n\r\n*1\r\n$x\r\n",
}


@pytest.mark.parametrize("data", list(HALF_CLOSED.values()), ids=list(HALF_CLOSED))
def test_replies_held_for_the_log_reach_a_client_that_shut_its_sending_side(pair, keel, redis_ref, data):
    # Found by the protocol fuzzer: `printf 'SET a b\r\n' | nc -N` got nothing
    # from Keel (the reply, held for the fsync, was dropped when the EOF closed
    # the connection); Redis answers +OK, then closes.
    k = half_close_exchange(keel.port, data)
    r = half_close_exchange(redis_ref.port, data)
    assert k == r
    assert k[1] and k[0]
