"""DUMP and RESTORE: a key's value as a portable, checksummed payload.

The payload format (RDB encoding + version + CRC64) lives in ``engine.rdb``;
these handlers only validate arguments, move values in and out of the
keyspace and record effects.

Effects: RESTORE is journaled with an absolute TTL so that replay does not
depend on when it runs: ``RESTORE key <unix ms or 0> payload [ABSTTL]
[REPLACE]`` (ABSTTL whenever there is a TTL). IDLETIME and FREQ are validated
as Redis does and set the key's access information (``engine.evict``: IDLETIME
under an LRU policy, FREQ under an LFU one, ignored otherwise, as in Redis);
they are not journaled (replay rebuilds data, not access history). A
RESTORE whose TTL is already in the past stores nothing: with
REPLACE it deletes the old key (journaled as ``DEL key``), without it it
changes nothing and journals nothing, as Redis does.

Keyspace events (class ``g``): ``restore`` after the key's ``new`` (a
replaced key is announced new too: Redis deletes it first); ``del`` when a
past TTL with REPLACE removed the old key.
"""

from __future__ import annotations

from engine import errors, rdb
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import spec
from engine.notify import GENERIC
from engine.registry import command
from engine.reply import OK
from engine.util import parse_int


@command("dump", 2, "readonly", (1, 1, 1), "@keyspace @read @slow", group="generic", since="2.6.0",
         tips="nondeterministic_output")
def dump(c, argv):
    """DUMP key -- the serialized value of key (bulk), or nil. O(N) in the value's size."""
    value = c.db.get(argv[1])
    if value is None:
        return None
    return rdb.dump(value)


@command("restore", -4, "write denyoom", (1, 1, 1), "@keyspace @write @slow @dangerous",
         group="generic", since="2.6.0",
         key_specs=(spec("OW update"),))
def restore(c, argv):
    """RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f] -- OK. O(N)."""
    key = argv[1]
    replace = absttl = False
    idle = freq = -1
    i, n = 4, len(argv)
    while i < n:
        opt = argv[i].lower()
        has_value = i + 1 < n
        if opt == b"replace":
            replace = True
        elif opt == b"absttl":
            absttl = True
        elif opt == b"idletime" and has_value and freq == -1:
            i += 1
            idle = parse_int(argv[i])
            if idle < 0:
                raise CommandError(errors.RESTORE_BAD_IDLETIME)
        elif opt == b"freq" and has_value and idle == -1:
            i += 1
            freq = parse_int(argv[i])
            if not 0 <= freq <= 255:
                raise CommandError(errors.RESTORE_BAD_FREQ)
        else:
            raise CommandError(errors.SYNTAX)
        i += 1

    db = c.db
    # Redis's order: an existing key is reported before a bad TTL or payload.
    if not replace and db.get(key) is not None:
        raise CommandError(errors.BUSYKEY)
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError(errors.RESTORE_BAD_TTL)
    payload = argv[3]
    try:
        value = rdb.restore(payload)
    except rdb.PayloadVersionError:
        raise CommandError(errors.DUMP_PAYLOAD_VERSION) from None
    except rdb.PayloadError:
        raise CommandError(errors.DUMP_PAYLOAD_BAD_DATA) from None

    if ttl:
        now = now_ms()
        if not absttl:
            ttl += now
        # A replica (no expiry on lookup) keeps the key and waits for the DEL.
        if ttl <= now and c.ks.expire_on_lookup:
            if replace and db.delete(key):
                c.emit([b"DEL", key])
                if c.ks.notify_flags:
                    c.notify(GENERIC, b"del", key)
            return OK
    notifying = c.ks.notify_flags
    if replace and notifying:
        db.delete(key)  # the old value goes first: the key is announced new
    db.set(key, value)
    effect = [b"RESTORE", key, b"%d" % ttl, payload]
    if ttl:
        db.set_expire(key, ttl)
        effect.append(b"ABSTTL")
    if replace:
        effect.append(b"REPLACE")
    c.emit(effect)
    access = getattr(c.ks, "access", None)
    if access is not None and access.mode:
        if not ((idle >= 0 and access.set_idle(db, key, idle)) or (freq >= 0 and access.set_freq(db, key, freq))):
            access.touch(db, key)
    if notifying:
        c.notify(GENERIC, b"restore", key)
    return OK
