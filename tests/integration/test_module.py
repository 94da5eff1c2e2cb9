"""MODULE on Keel, which loads no modules, side by side with a redis-server
that has none loaded: LIST is empty, LOAD/LOADEX/UNLOAD are refused as Redis
refuses them (by enable-module-command, then as a failed load or a missing
module), and the command table entries are Redis's."""

from __future__ import annotations

import pytest

from tests.support import KeelProcess, Pair, RedisProcess


def test_module_list_is_empty_and_load_is_refused_as_redis(pair):
    pair.check("MODULE", "LIST")
    for args in (("LOAD", "/nonexistent.so"), ("LOAD", "/x.so", "a", "b"), ("LOADEX", "/x.so", "ARGS", "a"),
                 ("UNLOAD", "nosuch")):
        pair.check("MODULE", *args)  # enable-module-command no: refused first
    for args in (("NOSUCH",), ("LIST", "x"), ("LOAD",), ("UNLOAD",), ("UNLOAD", "a", "b"), ("HELP", "x")):
        pair.check("MODULE", *args)  # unknown subcommand, arity
    pair.check("MODULE")
    pair.check("EVAL", "return redis.pcall('module', 'list')", "0")  # noscript


def test_module_help_lists_the_subcommands(pair):
    k, r = pair.both("MODULE", "HELP")
    names = [line.split()[0] for line in k if not line.startswith(b" ")][1:]
    assert names == [line.split()[0] for line in r if not line.startswith(b" ")][1:]


def test_command_info_as_redis(pair):
    k, r = pair.both("COMMAND", "INFO", "module")
    key = lambda s: s[0]  # noqa: E731
    assert k[0][:9] == r[0][:9]
    assert sorted(k[0][9], key=key) == sorted(r[0][9], key=key)


@pytest.fixture(scope="module")
def enabled():
    keel = KeelProcess("--enable-module-command", "yes").start()
    ref = RedisProcess("--enable-module-command", "yes").start()
    pair = Pair(keel.client(), ref.client())
    yield pair
    pair.close()
    keel.cleanup()
    ref.cleanup()


def test_with_module_command_enabled_nothing_loads(enabled):
    for args in (("LOAD", "/nonexistent.so"), ("LOADEX", "/nonexistent.so", "CONFIG", "a", "b"),
                 ("UNLOAD", "nosuch"), ("LIST",)):
        enabled.check("MODULE", *args)
