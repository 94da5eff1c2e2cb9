"""Dispatch bookkeeping: INFO commandstats counts subcommands as Redis does."""

from tests.support import Err


def commandstats(k) -> dict:
    text = k.call("INFO", "commandstats").decode()
    out = {}
    for line in text.split("\r\n"):
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            out[name] = dict(f.split("=") for f in fields.split(","))
    return out


def test_a_subcommand_is_counted_under_its_full_name(k):
    k.call("CONFIG", "RESETSTAT")
    k.call("CLIENT", "ID")
    k.call("CLIENT", "ID")
    stats = commandstats(k)
    assert stats["client|id"]["calls"] == "2"
    assert "client" not in stats


def test_a_subcommand_with_the_wrong_arity_is_rejected_under_its_name(pair):
    pair.keel.call("CONFIG", "RESETSTAT")
    pair.check("CLIENT", "SETNAME")
    pair.check("CLIENT", "SETNAME", "a", "b")
    assert commandstats(pair.keel)["client|setname"]["rejected_calls"] == "2"


def test_an_unknown_subcommand_is_named_in_the_error(pair):
    r = pair.check("CLIENT", "NOSUCH")
    assert r == Err("ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.")


def test_a_failing_command_counts_as_failed(k):
    k.call("CONFIG", "RESETSTAT")
    k.call("SET", "s", "notanumber")
    assert isinstance(k.call("INCR", "s"), Err)
    assert commandstats(k)["incr"]["failed_calls"] == "1"


def test_keyspace_hits_and_misses_count_reads(k):
    k.call("CONFIG", "RESETSTAT")
    k.call("SET", "a", "1")
    k.call("GET", "a")
    k.call("GET", "nope")
    k.call("MGET", "a", "nope", "nope2")
    info = dict(line.split(":", 1) for line in k.call("INFO", "stats").decode().split("\r\n") if ":" in line)
    assert info["keyspace_hits"] == "2"
    assert info["keyspace_misses"] == "3"


def test_client_list_names_the_last_fully_dispatched_command(k):
    line = k.call("CLIENT", "INFO").decode()
    assert " cmd=client|info " in line
