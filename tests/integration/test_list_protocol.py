"""One-element LPUSH/RPUSH/LPOP/RPOP prove their own arguments bulk strings.

The hot path leaves that check to these handlers (``checks_own_arguments``),
so a request with an integer where a key or an element goes must still be
the protocol error Redis names, and change nothing, on an existing list
(the written-out path) and on a missing key (the general one).
"""

from __future__ import annotations

import pytest

from tests.integration.test_protocol import same

REQUESTS = {
    "lpush_integer_element": b"*3\r\n$5\r\nLPUSH\r\n$2\r\npl\r\n:5\r\n",
    "rpush_integer_element": b"*3\r\n$5\r\nRPUSH\r\n$2\r\npl\r\n:5\r\n",
    "lpush_integer_key": b"*3\r\n$5\r\nLPUSH\r\n:7\r\n$1\r\nx\r\n",
    "lpop_integer_key": b"*2\r\n$4\r\nLPOP\r\n:7\r\n",
    "rpop_integer_key": b"*2\r\n$4\r\nRPOP\r\n:7\r\n",
}


@pytest.mark.parametrize("existing", [True, False], ids=["existing", "missing"])
@pytest.mark.parametrize("data", REQUESTS.values(), ids=REQUESTS.keys())
def test_a_non_string_argument_is_a_protocol_error_and_changes_nothing(keel, redis_ref, data, existing):
    for server in (keel, redis_ref):
        c = server.client()
        try:
            c.call("FLUSHDB")
            if existing:
                c.call("RPUSH", "pl", "a", "b")
                c.call("RPUSH", "7", "a", "b")
        finally:
            c.close()
    same(keel, redis_ref, data)
    for server in (keel, redis_ref):
        c = server.client()
        try:
            assert c.call("LRANGE", "pl", 0, -1) == ([b"a", b"b"] if existing else [])
            assert c.call("LRANGE", "7", 0, -1) == ([b"a", b"b"] if existing else [])
            assert c.call("DBSIZE") == (2 if existing else 0)  # nothing stored under another key
        finally:
            c.close()
