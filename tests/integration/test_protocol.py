"""The wire protocol answers the same bytes with the same bytes as Redis 7.

Each test sends raw bytes on a fresh connection to Keel and to a real
redis-server and compares what comes back: the replies, byte for byte, and
whether the server closed the connection. Protocol errors must reach the
client before the close, and must close that connection only.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import RespClient


def exchange(port: int, data: bytes, chunks: list[int] | None = None, quiet: float = 0.3,
             expect: int | None = None):
    """Send ``data`` (optionally cut at ``chunks`` offsets); return (reply bytes, closed).

    Reads until the server closes or stays quiet for ``quiet`` seconds; once
    ``expect`` bytes have arrived, a much shorter silence is enough.
    """
    c = RespClient(port)
    try:
        try:
            if chunks:
                prev = 0
                for cut in chunks + [len(data)]:
                    c.send_raw(data[prev:cut])
                    prev = cut
                    time.sleep(0.002)
            else:
                c.send_raw(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed early; what it sent first is still readable
        c.sock.settimeout(quiet)
        out = b""
        try:
            while True:
                d = c.sock.recv(65536)
                if not d:
                    return out, True
                out += d
                if expect is not None and len(out) >= expect:
                    c.sock.settimeout(0.05)
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            return out, True
    finally:
        c.close()


def same(keel, redis_ref, data: bytes, **kw):
    with ThreadPoolExecutor(2) as pool:
        fk = pool.submit(exchange, keel.port, data, **kw)
        fr = pool.submit(exchange, redis_ref.port, data, **kw)
        k, r = fk.result(), fr.result()
    assert k == r, f"{data[:80]!r}: keel {k!r} != redis {r!r}"
    return k


ERROR_CASES = {
    "multibulk_count_not_a_number": b"*abc\r\n",
    "multibulk_count_with_plus": b"*+1\r\n",
    "multibulk_count_with_leading_zero": b"*01\r\n$4\r\nPING\r\n",
    "multibulk_count_with_space": b"* 1\r\n",
    "multibulk_count_empty": b"*\r\n",
    "multibulk_count_minus_zero": b"*-0\r\n",
    "multibulk_count_over_int_max_after_inline": b"PING\r\n*2147483648\r\n",
    "multibulk_count_over_int_max": b"*2147483648\r\n",
    "bulk_length_not_a_number": b"*1\r\n$abc\r\n",
    "bulk_length_negative": b"*1\r\n$-1\r\n",
    "bulk_length_empty": b"*1\r\n$\r\n",
    "bulk_length_minus_zero": b"*1\r\n$-0\r\n",
    "bulk_length_with_plus": b"*1\r\n$+4\r\nPING\r\n",
    "bulk_length_with_leading_zero": b"*1\r\n$04\r\nPING\r\n",
    "bulk_length_trailing_garbage": b"*1\r\n$4x\r\nPING\r\n",
    "bulk_length_over_proto_max_bulk_len": b"*1\r\n$536870913\r\n",
    "bulk_length_huge": b"*1\r\n$99999999999\r\n",
    "bulk_length_past_int64": b"*1\r\n$99999999999999999999\r\n",
    "integer_element": b"*1\r\n:5\r\n",
    "integer_argument_of_a_read_command": b"*2\r\n$4\r\nECHO\r\n:5\r\n",
    "nested_array_argument": b"*2\r\n$4\r\nECHO\r\n*1\r\n$1\r\na\r\n",
    "null_element": b"*2\r\n$4\r\nECHO\r\n_\r\n",
    "resp3_set_element": b"*2\r\n$4\r\nECHO\r\n~1\r\n$1\r\na\r\n",
    "resp3_push_element": b"*2\r\n$3\r\nGET\r\n>1\r\n$1\r\na\r\n",
    "resp3_attribute_element": b"*2\r\n$3\r\nGET\r\n|1\r\n$1\r\na\r\n$1\r\nb\r\n",
    "huge_resp3_set_element": b"*2\r\n$4\r\nECHO\r\n~2147483647\r\n",
    "huge_push_element_after_a_request": b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n>2147483647\r\n",
    "inline_word_where_bulk_expected": b"*1\r\nPING\r\n",
    "cr_where_bulk_expected_is_shown_as_space": b"*1\r\n\r\n",
    "non_ascii_byte_where_bulk_expected": b"*1\r\n\xff\r\n",
    "unbalanced_double_quote": b'PING "a\r\n',
    "unbalanced_single_quote": b"PING 'a\r\n",
    "closing_quote_not_followed_by_space": b'ECHO "a"b\r\n',
    "closing_single_quote_not_followed_by_space": b"ECHO 'a'b\r\n",
    "too_big_inline_request": b"x" * 70000,
    "too_big_mbulk_count_string": b"*" + b"1" * 70000,
    "too_big_bulk_count_string": b"*1\r\n$" + b"1" * 70000,
    "too_big_bulk_count_string_without_dollar": b"*1\r\nx" + b"1" * 70000,
    "error_after_good_commands_in_one_write": b"*1\r\n$4\r\nPING\r\nECHO hi\r\n*1\r\n$x\r\n*1\r\n$4\r\nPING\r\n",
}


@pytest.mark.parametrize("data", list(ERROR_CASES.values()), ids=list(ERROR_CASES))
def test_protocol_error_is_answered_then_the_connection_closed_as_redis_does(keel, redis_ref, data):
    reply, closed = same(keel, redis_ref, data)
    assert closed and b"Protocol error" in reply


ACCEPTED_CASES = {
    "negative_multibulk_count_is_ignored": b"*-5\r\n*1\r\n$4\r\nPING\r\n",
    "null_multibulk_is_ignored": b"*-1\r\nPING\r\n",
    "empty_multibulk_is_ignored": b"*0\r\nPING\r\n",
    "blank_inline_lines_are_ignored": b"\r\n\r\n\nPING\r\n",
    "whitespace_inline_line_is_ignored": b"   \r\nPING\r\n",
    "inline_hex_escape_in_double_quotes": b'ECHO "a\\x41b"\r\n',
    "inline_escapes_in_double_quotes": b'ECHO "a\\nb\\"c\\t"\r\n',
    "inline_invalid_hex_escape_is_literal": b'ECHO "\\xzz"\r\n',
    "inline_single_quotes_keep_spaces": b"ECHO 'sin gle'\r\n",
    "inline_escaped_single_quote": b"ECHO 'a\\'b'\r\n",
    "inline_empty_quoted_arguments": b"ECHO ''\r\nECHO \"\"\r\n",
    "inline_tab_separates_arguments": b"ECHO\ta\r\n",
    "inline_bare_newline_ends_a_request": b"PING\nPING\n",
    "inline_quote_inside_a_word_opens_a_string": b'ECHO ab"c d"\r\n',
    "inline_unknown_command_is_named": b"NOSUCH a 'b c'\r\n",
    "inline_wrong_arity": b"GET\r\n",
    "bulk_trailer_bytes_are_skipped_unread": b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
    "empty_bulk_argument": b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    "binary_bulk_argument": b"*2\r\n$4\r\nECHO\r\n$5\r\na\x00\r\nb\r\n",
    "pipelined_inline_and_multibulk_in_one_write": b"PING\r\n*1\r\n$4\r\nPING\r\nECHO x\n*2\r\n$4\r\nECHO\r\n$1\r\ny\r\n",
    "set_then_get_pipelined": b"*3\r\n$3\r\nSET\r\n$2\r\npk\r\n$3\r\nabc\r\n*2\r\n$3\r\nGET\r\n$2\r\npk\r\n",
    "partial_request_waits": b"*2\r\n$4\r\nECHO\r\n$3\r\nab",
    "header_only_waits": b"*1\r\n",
    "count_at_int_max_waits": b"*2147483647\r\n",
    "count_at_int_max_then_elements_waits": b"*2147483647\r\n$4\r\nPING\r\n",
    "nul_before_inline_newline_waits_like_strchr": b"ECHO\x00 a\r\n",
    "nul_in_multibulk_header_waits_like_strchr": b"*1\x00\r\n",
    "nul_where_bulk_expected_waits_like_strchr": b"*1\r\n\x00\r\n",
    "cr_without_following_byte_waits": b"*1\r",
}


@pytest.mark.parametrize("data", list(ACCEPTED_CASES.values()), ids=list(ACCEPTED_CASES))
def test_accepted_input_gets_the_same_replies_as_redis(keel, redis_ref, data):
    _, closed = same(keel, redis_ref, data)
    assert not closed


STREAM = (b"PING\r\n*3\r\n$3\r\nSET\r\n$2\r\nsk\r\n$5\r\nhello\r\n"
          b"ECHO \"q\\x41\"\r\n\r\n*0\r\n*2\r\n$3\r\nGET\r\n$2\r\nsk\r\n*-1\r\nGET sk\n")


def test_request_stream_fed_one_byte_at_a_time_gets_every_reply(keel, redis_ref):
    cuts = list(range(1, len(STREAM)))
    expected = exchange(redis_ref.port, STREAM, chunks=cuts)
    assert expected[0].count(b"\r\n") >= 7 and not expected[1]
    got = exchange(keel.port, STREAM, chunks=cuts, quiet=2.0, expect=len(expected[0]))
    assert got == expected


def test_request_stream_split_at_every_byte_boundary_gets_the_same_replies(keel, redis_ref):
    expected = exchange(redis_ref.port, STREAM)
    assert expected[0].startswith(b"+PONG\r\n+OK\r\n")
    for cut in range(1, len(STREAM)):
        got = exchange(keel.port, STREAM, chunks=[cut], expect=len(expected[0]))
        assert got == expected, f"split at {cut}: {got!r} != {expected!r}"


def test_error_split_across_writes_is_named_like_redis(keel, redis_ref):
    data = b"*2\r\n$4\r\nECHO\r\n:5\r\n"
    for cut in (4, 10, 14, 15, 16):
        same(keel, redis_ref, data, chunks=[cut])


def test_protocol_error_closes_only_the_offending_connection(keel):
    other = keel.client()
    try:
        assert other.call("PING") == b"PONG"
        reply, closed = exchange(keel.port, b"*1\r\n$abc\r\n")
        assert closed and reply == b"-ERR Protocol error: invalid bulk length\r\n"
        assert other.call("ECHO", "still here") == b"still here"
    finally:
        other.close()


def test_replies_before_the_protocol_error_are_sent_before_the_close(keel):
    reply, closed = exchange(keel.port, b"*2\r\n$4\r\nECHO\r\n$1\r\na\r\n*1\r\n:1\r\n")
    assert closed
    assert reply == b"$1\r\na\r\n-ERR Protocol error: expected '$', got ':'\r\n"


def test_large_argument_arriving_in_many_reads_is_assembled(pair):
    value = bytes(range(256)) * 4096  # 1 MB, every byte value, CR and LF included
    head = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % len(value)
    for c in (pair.keel, pair.ref):
        c.send_raw(head)
        for i in range(0, len(value), 100_000):
            c.send_raw(value[i:i + 100_000])
        c.send_raw(b"\r\n")
        assert c.read() == b"OK"
    assert pair.keel.call("GET", "big") == value


def test_header_announcing_two_billion_arguments_does_not_stall_the_server(keel):
    for data in (b"*2147483647\r\n", b"*1\r\n$4\r\nPING\r\n*2147483647\r\n$1\r\n",
                 # hiredis allocates RESP3 aggregates (set, push, attribute) alike
                 b"*2\r\n$4\r\nECHO\r\n~2147483647\r\n", b"*2\r\n$3\r\nGET\r\n>2147483647\r\n",
                 b"*1\r\n$4\r\nPING\r\n|2147483647\r\n"):
        c = keel.client()
        c.send_raw(data)
        time.sleep(0.05)
        c.close()
        t0 = time.monotonic()
        other = keel.client()
        try:
            assert other.call("PING") == b"PONG"
        finally:
            other.close()
        assert time.monotonic() - t0 < 0.5


def test_integer_value_of_a_plain_set_is_a_protocol_error_and_stores_nothing(keel, redis_ref):
    # Plain SET proves its own arguments bulk strings (not the hot path's check).
    same(keel, redis_ref, b"*3\r\n$3\r\nSET\r\n$2\r\nik\r\n:5\r\n")
    c = keel.client()
    try:
        assert c.call("EXISTS", "ik") == 0
    finally:
        c.close()


@pytest.mark.parametrize("element", [b"+hello", b"=9\r\ntxt:hello"], ids=["simple", "verbatim"])
def test_pipelined_read_handed_to_the_slow_path_resumes_at_the_right_byte(keel, element):
    # hiredis reads `+hello` (and `=` verbatim text) as a string where Redis
    # refuses it. The hot path sends a read with fewer `$` than arguments to
    # the slow path, which answers Redis's protocol error; a read that ends
    # early can still run it (a leniency), and is then handed to the slow
    # path after it: that must resume where the request ended, not where a
    # bulk string of the same value would have (that ran the next request's
    # bytes as inline commands). Which of the two happens depends on whether
    # the server reads the two writes apart; garbage is never right.
    first = b"*2\r\n$4\r\nECHO\r\n" + element + b"\r\n"
    data = first + b"*2\r\n$4\r\nECHO\r\n$2\r\nab\r\n*1\r\n$4\r\nPING\r\n"
    cut = len(first) + 20  # inside the second request's last argument
    out, closed = exchange(keel.port, data, chunks=[cut])
    if closed:
        assert out == b"-ERR Protocol error: expected '$', got '%s'\r\n" % element[:1]
    else:
        assert out.endswith(b"$2\r\nab\r\n+PONG\r\n") and out.count(b"\r\n-ERR") == 0, out


def test_read_command_with_an_integer_argument_then_a_cut_request_resumes_right(keel):
    # GET with `:5` runs on the hot path (it can only miss); the slow path
    # then takes over mid-read and must resume after the `:5\r\n` line. (A
    # read sampled for commandstats takes the full dispatch, which refuses
    # `:5` as Redis does: that answer is right too. Garbage never is.)
    first = b"*2\r\n$3\r\nGET\r\n:5\r\n"
    data = first + b"*2\r\n$4\r\nECHO\r\n$2\r\nab\r\n"
    out, closed = exchange(keel.port, data, chunks=[len(first) + 20])
    assert (out, closed) in [(b"$-1\r\n$2\r\nab\r\n", False),
                             (b"-ERR Protocol error: expected '$', got ':'\r\n", True)]
