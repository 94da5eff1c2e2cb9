"""The server answers on a real socket."""

from tests.support import Err


def test_ping_replies_pong(k):
    assert k.call("PING") == b"PONG"


def test_unknown_command_is_named_in_the_error(k):
    assert k.call("NOSUCH", "a", "b") == Err("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")


def test_get_returns_what_set_stored(pair):
    pair.check("SET", "k", "v")
    pair.check("GET", "k")
    pair.check("GET", "missing")
