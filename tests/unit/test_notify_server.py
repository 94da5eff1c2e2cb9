"""Keyspace notifications, server side without sockets: the directive in
``server.config`` and ``server.notify.Notifier`` publishing the engine's
events on the channels Redis uses (pub/sub replaced by a recorder)."""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers the handlers)
from engine import notify
from engine.keyspace import Keyspace
from engine.session import Session
from server.config import Config, ConfigError, SetError
from server.notify import Notifier
from tests.support import run


class _PubSub:
    def __init__(self):
        self.sent = []

    def publish(self, channel: bytes, message: bytes) -> int:
        self.sent.append((channel, message))
        return 0


class _Server:
    def __init__(self, config: Config):
        self.config = config
        self.ks = Keyspace(config["databases"])
        self.pubsub = _PubSub()


def _notifier(flags: str = ""):
    config = Config()
    if flags:
        config.set("notify-keyspace-events", flags)
    server = _Server(config)
    Notifier(server)
    return server, Session(server.ks)


# --- the directive ------------------------------------------------------------

def test_the_default_is_off():
    config = Config()
    assert config["notify-keyspace-events"] == 0
    assert config.get("notify-keyspace-events") == {"notify-keyspace-events": ""}


def test_a_value_is_kept_as_flags_and_shown_normalised():
    config = Config()
    config.set("notify-keyspace-events", "KEA")
    assert config["notify-keyspace-events"] == notify.parse("AKE")
    assert config.get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
    config.set_many([("notify-keyspace-events", "gK$")])
    assert config.get("notify-keyspace-events") == {"notify-keyspace-events": "g$K"}


def test_config_set_refuses_a_bad_class_and_changes_nothing():
    config = Config()
    config.set("notify-keyspace-events", "Kl")
    with pytest.raises(SetError) as e:
        config.set_many([("notify-keyspace-events", "KEQ")])
    assert e.value.reason == "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
    assert config.get("notify-keyspace-events") == {"notify-keyspace-events": "lK"}


def test_a_config_file_line_names_the_directive(tmp_path):
    conf = tmp_path / "k.conf"
    conf.write_text("notify-keyspace-events Ex\n")
    config = Config()
    config.load_file(str(conf))
    assert config.get("notify-keyspace-events") == {"notify-keyspace-events": "xE"}
    conf.write_text('notify-keyspace-events "KE!"\n')
    with pytest.raises(ConfigError) as e:
        Config().load_file(str(conf))
    assert "line 1" in str(e.value) and "notify-keyspace-events" in str(e.value)
    assert "Invalid event class character" in str(e.value)


def test_config_rewrite_writes_what_config_get_shows(tmp_path):
    conf = tmp_path / "k.conf"
    conf.write_text("port 7000\n")
    config = Config()
    config.load_file(str(conf))
    config.set("notify-keyspace-events", "Elg")
    config.rewrite()
    assert "notify-keyspace-events glE" in conf.read_text()
    again = Config()
    again.load_file(str(conf))
    assert again["notify-keyspace-events"] == config["notify-keyspace-events"]


# --- the notifier -------------------------------------------------------------

def test_K_and_E_publish_on_both_channels_keyspace_first():
    server, c = _notifier("KEl")
    run(c, "SELECT", 7)
    run(c, "RPUSH", "mylist", "a")
    assert server.pubsub.sent == [
        (b"__keyspace@7__:mylist", b"rpush"),
        (b"__keyevent@7__:rpush", b"mylist"),
    ]


@pytest.mark.parametrize("flags,sent", [
    ("K$", [(b"__keyspace@0__:k", b"set")]),
    ("E$", [(b"__keyevent@0__:set", b"k")]),
    ("KEn", [(b"__keyspace@0__:k", b"new"), (b"__keyevent@0__:new", b"k")]),
    ("$", []), ("Kl", []), ("", []),
])
def test_only_the_chosen_channels_and_classes_are_published(flags, sent):
    server, c = _notifier(flags)
    run(c, "SET", "k", "v")
    assert server.pubsub.sent == sent


def test_config_set_turns_notifications_on_and_off_at_once():
    server, c = _notifier()
    assert server.ks.notify_flags == 0
    server.config.set_many([("notify-keyspace-events", "KEA")])
    assert server.ks.notify_flags == notify.parse("KEA")
    run(c, "DEL", "nothing")
    run(c, "INCR", "n")
    assert server.pubsub.sent == [(b"__keyspace@0__:n", b"incrby"), (b"__keyevent@0__:incrby", b"n")]
    server.config.set_many([("notify-keyspace-events", "A")])  # no K or E: the gate shuts
    assert server.ks.notify_flags == 0
    run(c, "INCR", "n")
    assert len(server.pubsub.sent) == 2


def test_keys_and_event_names_are_published_as_bytes_unchanged():
    server, c = _notifier("KEh")
    key = b"caf\xc3\xa9 \x00\xff"
    run(c, "HSET", key, "f", "v")
    assert server.pubsub.sent == [(b"__keyspace@0__:" + key, b"hset"), (b"__keyevent@0__:hset", key)]


def test_expiry_from_the_cycle_is_published_too():
    server, c = _notifier("Ex")
    run(c, "SET", "k", "v")
    c.db.set_expire(b"k", 1)
    assert server.ks.active_expire(budget_ms=100) == 1
    assert server.pubsub.sent == [(b"__keyevent@0__:expired", b"k")]
