"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.

A HyperLogLog is a string in Redis's format (``engine.hll``): TYPE says
``string`` and GET, DUMP and RESTORE carry its bytes. A command that reads
one first checks the string is an HLL (``WRONGTYPE Key is not a valid
HyperLogLog string value.`` otherwise; another type gets the plain
WRONGTYPE); a damaged one (sparse opcodes that do not add up) is refused
with ``INVALIDOBJ Corrupted HLL object detected`` and left as it was (Redis
may keep the elements of a PFADD that it added before it met the damage).

Writes change the stored bytearray in place (``writable_string``), so a PFADD
to a dense HLL costs its elements, not 12 KB; a sparse one is rewritten (at
most ``hll-sparse-max-bytes``), or turned dense once it would grow past that
or a register needs more than 32.

Effects, as Redis propagates them: PFADD as sent when it changed a register
(or created the key), PFMERGE as sent, always; PFCOUNT of one key as sent
when it computed and stored the cached cardinality (a replayed PFCOUNT
stores the same bytes); PFDEBUG GETREG and TODENSE as sent when they turned
the value dense. PFCOUNT of several keys merges them on the fly and stores
nothing.

Keyspace events: ``pfadd`` (class ``$``) for a PFADD that changed a
register and for every PFMERGE, as Redis announces both; ``new`` when either
creates the key.
"""

from __future__ import annotations

import math
import os

from engine import errors, hll
from engine.commands.string import writable_string
from engine.errors import CommandError
from engine.keyspecs import spec
from engine.notify import STRING
from engine.registry import command
from engine.reply import OK, ONE, ZERO, Status

HLL_WRONGTYPE = "WRONGTYPE Key is not a valid HyperLogLog string value."
INVALID = "INVALIDOBJ Corrupted HLL object detected"
NO_KEY = "ERR The specified key does not exist"
NOT_SPARSE = "ERR HLL encoding is not sparse"
UNKNOWN_SUB = "ERR Unknown PFDEBUG subcommand '{}'"


def _hll_value(v):
    """``v`` when it is an HLL string; the WRONGTYPE errors otherwise."""
    if type(v) is not bytes and type(v) is not bytearray:
        raise CommandError(errors.WRONGTYPE)
    if not hll.is_hll(v):
        raise CommandError(HLL_WRONGTYPE)
    return v


def _read(c, key: bytes):
    """A read lookup (counted in keyspace hits/misses): the HLL or None."""
    v = c.db.get(key)
    if v is None:
        c.ks.misses += 1
        return None
    c.ks.hits += 1
    return _hll_value(v)


def _max_bytes(c) -> int:
    return c.ks.limits.hll_sparse_max_bytes


@command("pfadd", -2, "write denyoom fast", (1, 1, 1), "@write @hyperloglog @fast", group="hyperloglog",
         summary="Adds the specified elements to the specified HyperLogLog.", since="2.8.9",
         key_specs=(spec("RW insert"),))
def pfadd(c, argv):
    """PFADD key [element ...] -- 1 when a register changed or the key was
    created, else 0. O(1) per element (a sparse HLL: O(its size))."""
    # Written out (the lookup, the checks, the effect): PFADD to an existing
    # HLL is the benchmarked path, and each call was a tenth of its cost.
    key = argv[1]
    db = c.db
    ks = c.ks
    v = db.data.get(key)
    if v is not None and db.expires and key in db.expires:
        v = db.get(key)  # the slow lookup: it may expire the key
    if v is None:
        buf = bytearray(hll.EMPTY)
        if len(argv) > 2:
            hll.pfadd(buf, argv, 2, ks.limits.hll_sparse_max_bytes)
        db.set(key, buf)
    else:
        t = type(v)
        if t is not bytearray:
            if t is not bytes:
                raise CommandError(errors.WRONGTYPE)
            if hll.is_hll(v):
                v = writable_string(c, key, v)
        if not hll.is_hll(v):
            raise CommandError(HLL_WRONGTYPE)
        r = hll.pfadd(v, argv, 2, ks.limits.hll_sparse_max_bytes)
        if r <= 0:
            if r:
                raise CommandError(INVALID)
            return ZERO
        ks.changed(db, key)
    ks.effects.append((db.index, argv))
    if ks.notify_flags:
        c.notify(STRING, b"pfadd", key)
    return ONE


@command("pfcount", -2, "readonly may_replicate", (1, -1, 1), "@read @hyperloglog @slow", group="hyperloglog",
         summary="Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
         since="2.8.9",
         key_specs=(spec("RW access", last=-1, notes="RW because it may change the internal representation "
                                                     "of the key, and propagate to replicas"),))
def pfcount(c, argv):
    """PFCOUNT key [key ...] -- the estimated number of distinct elements (of
    the union, for several keys). One key: O(1) with a fresh cache, else
    O(registers), storing the result in the cache; several: O(keys x registers)."""
    if len(argv) > 2:
        regs = bytearray(hll.REGISTERS)
        for key in argv[1:]:
            v = _read(c, key)
            if v is not None and not hll.merge(regs, v):
                raise CommandError(INVALID)
        return hll.count_raw(regs)
    key = argv[1]
    v = _read(c, key)
    if v is None:
        return ZERO
    card = hll.cached(v)
    if card is not None:
        return card
    card = hll.count(v)
    if card < 0:
        raise CommandError(INVALID)
    buf = writable_string(c, key, v)
    hll.store_cache(buf, card)
    c.db.touched(key)
    c.emit(argv)
    return card


@command("pfmerge", -2, "write denyoom", (1, -1, 1), "@write @hyperloglog @slow", group="hyperloglog",
         summary="Merge N different HyperLogLogs into a single one.", since="2.8.9",
         key_specs=(spec("RW access insert"), spec("RO access", 2, last=-1)))
def pfmerge(c, argv):
    """PFMERGE destkey [sourcekey ...] -- OK. The destination (created when
    missing) takes the largest value of each register over itself and the
    sources; it turns dense when a source is dense. O(keys x registers)."""
    regs = bytearray(hll.REGISTERS)
    dense = False
    for key in argv[1:]:
        v = _read(c, key)
        if v is None:
            continue
        if v[4] == hll.DENSE:
            dense = True
        if not hll.merge(regs, v):
            raise CommandError(INVALID)
    key = argv[1]
    db = c.db
    v = db.get(key)
    buf = bytearray(hll.EMPTY) if v is None else writable_string(c, key, v)
    if dense and not hll.to_dense(buf):
        raise CommandError(INVALID)  # unreachable: merge() above accepted this value
    hll.set_registers(buf, regs, _max_bytes(c))
    if v is None:
        db.set(key, buf)
    else:
        db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STRING, b"pfadd", key)
    return OK


@command("pfdebug", 3, "write denyoom admin", (2, 2, 1), "@write @hyperloglog @admin @slow @dangerous",
         group="hyperloglog", summary="Internal commands for debugging HyperLogLog values", since="2.8.9",
         key_specs=(spec("RW access", 2),))
def pfdebug(c, argv):
    """PFDEBUG GETREG|DECODE|ENCODING|TODENSE key -- the registers (the value
    turned dense first), the sparse opcodes as text, the encoding, or 1 when
    TODENSE converted it (0 when it was dense already). O(registers)."""
    sub = argv[1].lower()
    key = argv[2]
    v = c.db.get(key)
    if v is None:
        raise CommandError(NO_KEY)
    _hll_value(v)
    if sub == b"getreg":
        if v[4] == hll.SPARSE:
            v = _to_dense(c, argv, key, v)
        return hll.registers(v)
    if sub == b"decode":
        if v[4] != hll.SPARSE:
            raise CommandError(NOT_SPARSE)
        return hll.decode(v)
    if sub == b"encoding":
        return Status("sparse" if v[4] == hll.SPARSE else "dense")
    if sub == b"todense":
        if v[4] == hll.DENSE:
            return ZERO
        _to_dense(c, argv, key, v)
        return ONE
    raise CommandError(UNKNOWN_SUB.format(argv[1].decode("utf-8", "replace")))


def _to_dense(c, argv, key, v) -> bytearray:
    buf = writable_string(c, key, v)
    if not hll.to_dense(buf):
        raise CommandError(INVALID)
    c.db.touched(key)
    c.emit(argv)
    return buf


# --- PFSELFTEST -------------------------------------------------------------------

REGISTER_CYCLES = 4  # Redis runs 1000: each is 16384 register writes, here in Python
ELEMENTS = 1_000_000 if hll.ACCELERATED else 10_000  # Redis adds 10M


@command("pfselftest", 1, "admin", (0, 0, 0), "@hyperloglog @admin @slow @dangerous", group="hyperloglog",
         summary="An internal command for testing HyperLogLog values", since="2.8.9")
def pfselftest(c, argv):
    """PFSELFTEST -- OK, or the first failure as Redis words it. Checks that
    dense registers keep what is written into them without touching their
    neighbours, then adds up to ELEMENTS distinct elements to a dense and a
    sparse HLL at once: at each power of ten both must give the same count,
    within 6 standard errors of the truth (1 at 10), and the sparse one must
    still be sparse while the count is under half of hll-sparse-max-bytes."""
    failure = _selftest(_max_bytes(c))
    if failure:
        raise CommandError(failure)
    return OK


def _selftest(max_bytes: int):
    rnd = os.urandom
    dense = bytearray(hll.MAGIC + bytes(hll.DENSE_SIZE - 4))
    for _ in range(REGISTER_CYCLES):
        values = [b & 63 for b in rnd(hll.REGISTERS)]
        for i, r in enumerate(values):
            hll.dense_set(dense, i, r)
        for i, r in enumerate(hll.registers(dense)):
            if r != values[i]:
                return f"TESTFAILED Register error at {i}: {r} vs {values[i]}"
    dense = bytearray(hll.MAGIC + bytes(hll.DENSE_SIZE - 4))
    sparse = bytearray(hll.EMPTY)
    relerr = 1.04 / hll.REGISTERS ** 0.5
    seed = int.from_bytes(rnd(8), "little")
    done = 0
    checkpoint = 1
    while checkpoint <= ELEMENTS:
        batch = [((j ^ seed) & ((1 << 64) - 1)).to_bytes(8, "little") for j in range(done + 1, checkpoint + 1)]
        hll.pfadd(dense, batch, 0, max_bytes)
        hll.pfadd(sparse, batch, 0, max_bytes)
        done = checkpoint
        if checkpoint < max_bytes // 2 and sparse[4] != hll.SPARSE:
            return "TESTFAILED sparse encoding not used"
        card = hll.count(dense)
        if card != hll.count(sparse):
            return "TESTFAILED dense/sparse disagree"
        maxerr = 1 if checkpoint == 10 else math.ceil(relerr * 6 * checkpoint)
        if abs(checkpoint - card) > maxerr:
            return f"TESTFAILED Too big error. card:{checkpoint} abserr:{abs(checkpoint - card)}"
        checkpoint *= 10
    return None
