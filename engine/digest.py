"""DEBUG DIGEST and DIGEST-VALUE: a signature of the dataset's logical content.

Two servers holding the same data give the same digest, whatever order the
data was written in and whatever encoding each value has (a hash still
packed on one and a table on the other, a list in one node or in many):
replication and reload tests compare them. The digest is Keel's own, not
Redis's bytes (Redis hashes some encodings' internals; Keel's values are
built differently), but it has Redis's shape: 40 hex digits, all zeros for
an empty dataset (and for a missing key in DIGEST-VALUE).

How it is built (SHA-1 throughout, lengths as 8-byte little-endian prefixes):

* a value's digest is the SHA-1 of its type tag and content: a string's
  bytes; a list's elements in order; a set's, hash's or sorted set's
  members (with their value or score) as the XOR of one SHA-1 per member,
  so no order is needed; a stream's entries in ID order, its last ID,
  counters and consumer groups (names, last IDs, entries read, pending
  IDs with their consumer and delivery count, consumer names). Delivery
  and seen times are left out: they are wall-clock readings of the server
  that served the read;
* a key with a TTL mixes its absolute expiry time (ms) into its value's
  digest;
* the dataset's digest is the XOR, over every live key, of the SHA-1 of
  (database index, key, value digest): a key whose TTL has passed but that
  no lookup has deleted yet is left out, as it is gone to every reader.

O(N) in the size of the dataset (DIGEST) or of the values named (DIGEST-VALUE).
"""

from __future__ import annotations

from hashlib import sha1

from engine.keyspace import now_ms
from engine.types import type_name

ZERO = "0" * 40
_ZERO20 = bytes(20)


def _n(b) -> bytes:
    return len(b).to_bytes(8, "little")


def _b(x) -> bytes:
    return x if type(x) is bytes else (b"%d" % x if type(x) is int else bytes(x))


def _xor_of(parts) -> int:
    acc = 0
    for p in parts:
        acc ^= int.from_bytes(sha1(p).digest(), "little")
    return acc


def _stream(h, s) -> None:
    from engine.types.stream import MAX_ID, MIN_ID, fields_of

    for i, v, mf in s.range(MIN_ID, MAX_ID):
        fv = fields_of(mf, v)
        h.update(b"%d-%d %d" % (i[0], i[1], len(fv)))
        for x in fv:
            x = _b(x)
            h.update(_n(x) + x)
    h.update(b"|%d-%d|%d|%d-%d|%d" % (*s.last_id, s.length, *s.max_deleted, s.entries_added))
    for name in sorted(s.groups or ()):
        g = s.groups[name]
        h.update(b"g" + _n(name) + name + b"%d-%d|%r" % (*g.last_id, g.entries_read))
        for i, p in sorted(g.pel.items()):
            cname = p.consumer.name if hasattr(p.consumer, "name") else _b(p.consumer)
            h.update(b"p%d-%d" % i + _n(cname) + cname + b"%d" % p.count)
        for cname in sorted(g.consumers):
            h.update(b"c" + _n(cname) + cname)


def value_digest(value) -> bytes:
    """The 20-byte digest of one value's logical content."""
    t = type_name(value)
    h = sha1(t.encode())
    if t == "string":
        h.update(value)
    elif t == "list":
        for e in value.elements():
            e = _b(e)
            h.update(_n(e) + e)
    elif t == "set":
        h.update(b"%x" % _xor_of(map(_b, value.members())))
    elif t == "hash":
        h.update(b"%x" % _xor_of(_n(f) + f + v for f, v in value.to_dict().items()))
    elif t == "zset":
        h.update(b"%x" % _xor_of(_n(m) + m + repr(float(s)).encode() for s, m in value.pairs()))
    elif t == "stream":
        _stream(h, value)
    else:  # a type added later without its case here: still a digest, of its RDB form
        from engine import rdb

        h.update(rdb.encode_value(value))
    return h.digest()


def _with_ttl(digest: bytes, when) -> bytes:
    return digest if when is None else sha1(digest + b"!expire!%d" % when).digest()


def key_digest(db, key: bytes) -> str:
    """DIGEST-VALUE of one key: hex, zeros when the key is missing."""
    v = db.data.get(key)
    when = db.expires.get(key)
    if v is None or (when is not None and when <= now_ms()):
        return ZERO
    return _with_ttl(value_digest(v), when).hex()


def dataset_digest(ks) -> str:
    """DIGEST of every database: hex, zeros for an empty dataset."""
    acc = 0
    now = now_ms()
    from_bytes = int.from_bytes
    for db in ks.dbs:
        if not db.data:
            continue
        prefix = b"db%d|" % db.index
        expires = db.expires
        for key, v in db.data.items():
            when = expires.get(key) if expires else None
            if when is not None and when <= now:
                continue
            # value_digest of a bytes string, written out: most keys are one.
            d = sha1(b"string" + v).digest() if type(v) is bytes else value_digest(v)
            if when is not None:
                d = sha1(d + b"!expire!%d" % when).digest()
            acc ^= from_bytes(sha1(b"%s%s%s%s" % (prefix, len(key).to_bytes(8, "little"), key, d)).digest(), "little")
    return acc.to_bytes(20, "little").hex() if acc else ZERO
