"""HyperLogLog values in Redis's byte format, so GET, DUMP and RESTORE carry them
between Keel and Redis unchanged and the same PFADDs give the same bytes.

A HyperLogLog is a plain string (``bytes`` or ``bytearray``):

    offset 0   "HYLL"
           4   encoding: 0 dense, 1 sparse (anything else is not an HLL)
           5   3 unused bytes, zero
           8   cached cardinality, 8 bytes little-endian; bit 7 of byte 15
               set means the cache is stale and PFCOUNT must recompute it
           16  the registers

16384 registers (P = 14 bits of index), each the length of a run of zero bits
ended by a one in the rest of the 64-bit hash, 1..51:

* dense: 6 bits a register, packed least significant bit first (register i
  is bits 6i..6i+5 of the little-endian bit string), 12288 bytes: a dense
  value is exactly 12304 bytes long;
* sparse: a sequence of opcodes, each covering a run of registers:
  ``00xxxxxx`` ZERO, x+1 (1..64) registers at 0; ``01xxxxxx yyyyyyyy`` XZERO,
  the 14-bit number + 1 (1..16384) at 0; ``1vvvvvxx`` VAL, x+1 (1..4)
  registers at v+1 (1..32). A new HLL is one XZERO of 16384 with a stale
  cache (18 bytes).

A sparse value turns dense for good once a register must hold more than 32,
or once an update would grow it past ``hll-sparse-max-bytes`` (header
included). Each sparse update splits the opcode that covers the register
(ZERO/XZERO/VAL around a new VAL) and then merges equal adjacent VALs in the
few opcodes from the one before it — exactly the steps Redis takes, since the
bytes must come out the same.

Hash: MurmurHash64A with seed 0xadc83b19. The low 14 bits pick the register;
the count is 1 + the trailing zeros of the other 50 bits (with bit 50 set, so
it is at most 51).

Cardinality: the estimator Redis uses since 5.0 (Ertl, "New cardinality
estimation algorithms for HyperLogLog sketches"), from the histogram of
register values; values 52..63 (only a SET can put them in a dense register)
count nowhere, as in Redis.

Damage: a sparse value whose runs do not add up to exactly 16384 registers
is damaged. Counting, merging and turning dense check the whole value (a
run past the last register is damage at once); a PFADD looks only as far
as the opcode of each register it raises, as Redis does, so it may succeed
on a damaged value. Each function reports damage by its return value and
then leaves the value as it was. Reading past the end reads a zero byte
(Redis's strings end with a NUL it reads there); one known difference:
when an update splits an XZERO cut short by the end of a damaged value,
Redis keeps the byte that falls past the new end in memory, and later reads
of that value (in the same PFADD or after) see it instead of the zero; Keel
reads zero, as Redis does once the value is reloaded.

This module is the pure-Python implementation; ``engine._hll`` (C) does the
same on the hot paths. The names below are bound to the C functions when the
module is built (``ACCELERATED``); ``PY`` keeps the Python ones, so the tests
compare both byte for byte.
"""

from __future__ import annotations

import math
import struct
from types import SimpleNamespace

MAGIC = b"HYLL"
DENSE = 0
SPARSE = 1
HEADER = 16
P = 14
REGISTERS = 1 << P
Q = 64 - P
DENSE_SIZE = HEADER + (REGISTERS * 6 + 7) // 8  # 12304
SEED = 0xADC83B19
ALPHA_INF = 0.721347520444481703680  # 1 / (2 ln 2)
SPARSE_VAL_MAX = 32
STALE = 0x80  # the flag bit of byte 15
EMPTY = MAGIC + b"\x01" + bytes(10) + bytes([STALE]) + b"\x7f\xff"

_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


# --- the header ------------------------------------------------------------------

def is_hll(v) -> bool:
    """Whether the string ``v`` passes Redis's test for an HLL: long enough,
    the magic, a known encoding, and exactly the dense size when dense."""
    if len(v) < HEADER or v[:4] != MAGIC:
        return False
    enc = v[4]
    return enc == SPARSE or (enc == DENSE and len(v) == DENSE_SIZE)


def cached(v):
    """The cached cardinality, or None when the cache is stale."""
    if v[15] & STALE:
        return None
    return int.from_bytes(v[8:16], "little")


def store_cache(buf: bytearray, card: int) -> None:
    buf[8:16] = card.to_bytes(8, "little")


# --- the hash --------------------------------------------------------------------

def murmur64a(data: bytes, seed: int = SEED) -> int:
    """MurmurHash64A of ``data`` (8-byte blocks read little-endian)."""
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK
    blocks = n >> 3
    for k in struct.unpack_from("<%dQ" % blocks, data):
        k = (k * _M) & _MASK
        k ^= k >> 47
        k = (k * _M) & _MASK
        h ^= k
        h = (h * _M) & _MASK
    if n & 7:
        h ^= int.from_bytes(data[blocks << 3:], "little")
        h = (h * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


def index_count(element: bytes) -> tuple[int, int]:
    """(register index, run length) of one element."""
    h = murmur64a(element)
    rest = (h >> P) | (1 << Q)
    return h & (REGISTERS - 1), (rest & -rest).bit_length()


# --- dense registers -------------------------------------------------------------

def dense_get(v, i: int) -> int:
    pos = i * 6
    b = HEADER + (pos >> 3)
    fb = pos & 7
    x = v[b] >> fb
    if fb > 2:
        x |= v[b + 1] << (8 - fb)
    return x & 63


def dense_set(buf: bytearray, i: int, val: int) -> None:
    pos = i * 6
    b = HEADER + (pos >> 3)
    fb = pos & 7
    buf[b] = (buf[b] & ~(63 << fb) & 0xFF) | ((val << fb) & 0xFF)
    if fb > 2:
        buf[b + 1] = (buf[b + 1] & ~(63 >> (8 - fb)) & 0xFF) | (val >> (8 - fb))


def registers(v) -> list[int]:
    """All 16384 register values of a dense value (three bytes hold four)."""
    out = []
    regs = v[HEADER:DENSE_SIZE]
    for j in range(0, len(regs), 3):
        b0, b1, b2 = regs[j], regs[j + 1], regs[j + 2]
        out += (b0 & 63, (b0 >> 6) | ((b1 & 15) << 2), (b1 >> 4) | ((b2 & 3) << 4), b2 >> 2)
    return out


def _pack(regs: list[int]) -> bytes:
    out = bytearray()
    for j in range(0, REGISTERS, 4):
        r0, r1, r2, r3 = regs[j:j + 4]
        out += bytes((r0 | ((r1 & 3) << 6), (r1 >> 2) | ((r2 & 15) << 4), (r2 >> 4) | (r3 << 2)))
    return bytes(out)


# --- sparse opcodes --------------------------------------------------------------

def _ops(v):
    """(position, kind, run length, value) of each opcode; kind 0 ZERO, 1 XZERO, 2 VAL."""
    p = HEADER
    end = len(v)
    while p < end:
        b = v[p]
        if b < 0x40:
            yield p, 0, b + 1, 0
            p += 1
        elif b < 0x80:
            second = v[p + 1] if p + 1 < end else 0
            yield p, 1, (((b & 0x3F) << 8) | second) + 1, 0
            p += 2
        else:
            yield p, 2, (b & 3) + 1, ((b >> 2) & 0x1F) + 1
            p += 1


def _val(value: int, run: int) -> int:
    return 0x80 | ((value - 1) << 2) | (run - 1)


def _zeros(run: int) -> bytes:
    if run > 64:
        run -= 1
        return bytes((0x40 | (run >> 8), run & 0xFF))
    return bytes((run - 1,))


_PROMOTE = 2


def _sparse_set(s: bytearray, index: int, count: int, max_bytes: int) -> int:
    """Set register ``index`` of the sparse value ``s`` to ``count`` if that is
    larger: 1 changed, 0 not, -1 damaged, _PROMOTE when it must turn dense."""
    if count > SPARSE_VAL_MAX:
        return _PROMOTE
    first = 0
    prev = -1
    found = None
    for op in _ops(s):
        p, kind, run, value = op
        if index <= first + run - 1:
            found = op
            break
        prev = p
        first += run
    if found is None:
        return -1
    p, kind, run, value = found
    if kind == 2:
        if value >= count:
            return 0
        if run == 1:
            s[p] = _val(count, 1)
            _merge_vals(s, prev)
            return 1
    elif kind == 0 and run == 1:
        s[p] = _val(count, 1)
        _merge_vals(s, prev)
        return 1
    last = first + run - 1
    seq = bytearray()
    if kind == 2:
        if index != first:
            seq.append(_val(value, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(value, last - index))
    else:
        if index != first:
            seq += _zeros(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zeros(last - index)
    oplen = 2 if kind == 1 else 1
    grown = len(s) + len(seq) - oplen
    if grown > len(s) and grown > max_bytes:
        return _PROMOTE
    s[p:p + oplen] = seq
    del s[grown:]  # an XZERO cut short by the end of the value: its ghost byte goes too
    _merge_vals(s, prev)
    return 1


def _merge_vals(s: bytearray, prev: int) -> None:
    """Join equal adjacent VALs (up to 4 registers) among the 5 opcodes from ``prev``."""
    q = prev if prev >= 0 else HEADER
    end = len(s)
    budget = 5
    while q < end and budget:
        budget -= 1
        b = s[q]
        if b < 0x80:
            q += 1 if b < 0x40 else 2
            continue
        if q + 1 < end and s[q + 1] >= 0x80:
            b2 = s[q + 1]
            run = (b & 3) + (b2 & 3) + 2
            if (b ^ b2) & 0x7C == 0 and run <= 4:
                s[q + 1] = (b & 0xFC) | (run - 1)
                del s[q]
                end -= 1
                continue
        q += 1


def _dense_of(s) -> bytearray | None:
    """The dense value with the registers of the sparse ``s`` (its header, the
    encoding byte changed), or None when the opcodes do not cover exactly
    16384 registers."""
    regs = [0] * REGISTERS
    idx = 0
    for _, kind, run, value in _ops(s):
        if idx + run > REGISTERS:
            return None
        if kind == 2:
            regs[idx:idx + run] = [value] * run
        idx += run
    if idx != REGISTERS:
        return None
    out = bytearray(s[:HEADER])
    out[4] = DENSE
    out += _pack(regs)
    return out


# --- the operations (the C module has the same ones) --------------------------------

def pfadd(buf: bytearray, elements, start: int, max_bytes: int) -> int:
    """Add ``elements[start:]`` to the HLL ``buf`` in place: 1 when a register
    changed (the cache is then marked stale), 0 when none did, -1 when the
    value is damaged (``buf`` is then left as it was)."""
    if buf[4] == DENSE:
        work = buf
    else:
        work = bytearray(buf)
    changed = 0
    for i in range(start, len(elements)):
        index, count = index_count(elements[i])
        if work[4] == SPARSE:
            r = _sparse_set(work, index, count, max_bytes)
            if r == -1:
                return -1
            if r == _PROMOTE:
                dense = _dense_of(work)
                if dense is None:
                    return -1
                work[:] = dense
                r = 1 if dense_get(work, index) < count else 0
                if r:
                    dense_set(work, index, count)
            changed |= r
        elif dense_get(work, index) < count:
            dense_set(work, index, count)
            changed = 1
    if changed:
        work[15] |= STALE
        if work is not buf:
            buf[:] = work
    return changed


def merge(maxregs: bytearray, v) -> bool:
    """Raise ``maxregs`` (16384 bytes) to the registers of ``v``; False when
    ``v`` is damaged (``maxregs`` may then hold part of it)."""
    if v[4] == DENSE:
        for i, r in enumerate(registers(v)):
            if r > maxregs[i]:
                maxregs[i] = r
        return True
    i = 0
    for _, kind, run, value in _ops(v):
        if i + run > REGISTERS:
            return False
        if kind == 2:
            for j in range(i, i + run):
                if value > maxregs[j]:
                    maxregs[j] = value
        i += run
    return i == REGISTERS


def set_registers(buf: bytearray, maxregs, max_bytes: int) -> None:
    """PFMERGE's write: raise each register of ``buf`` to ``maxregs``, one at a
    time in index order as Redis does (a sparse value may turn dense on the
    way), and mark the cache stale."""
    for i in range(REGISTERS):
        count = maxregs[i]
        if not count:
            continue
        if buf[4] == DENSE:
            if dense_get(buf, i) < count:
                dense_set(buf, i, count)
            continue
        r = _sparse_set(buf, i, count, max_bytes)
        if r == _PROMOTE:
            dense = _dense_of(buf)
            if dense is not None:
                buf[:] = dense
                if dense_get(buf, i) < count:
                    dense_set(buf, i, count)
    buf[15] |= STALE


def to_dense(buf: bytearray) -> bool:
    """Turn a sparse ``buf`` dense in place; False (unchanged) when damaged."""
    if buf[4] == DENSE:
        return True
    dense = _dense_of(buf)
    if dense is None:
        return False
    buf[:] = dense
    return True


def count(v) -> int:
    """The estimated cardinality of the registers of ``v`` (the cache is not
    read), or -1 when a sparse ``v``'s runs do not add up to 16384."""
    hist = [0] * 64
    if v[4] == DENSE:
        for r in registers(v):
            hist[r] += 1
        return _estimate(hist)
    idx = 0
    for _, kind, run, value in _ops(v):
        hist[value] += run
        idx += run
    if idx != REGISTERS:
        return -1
    return _estimate(hist)


def count_raw(maxregs) -> int:
    """The estimated cardinality of registers held one per byte (PFCOUNT of several keys)."""
    hist = [0] * 64
    for r in maxregs:
        hist[r] += 1
    return _estimate(hist)


# --- the estimator ---------------------------------------------------------------

def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        before = z
        z += x * y
        y += y
        if before == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        before = z
        y *= 0.5
        t = 1 - x
        z -= t * t * y
        if before == z:
            return z / 3


def _estimate(hist: list[int]) -> int:
    m = float(REGISTERS)
    z = m * _tau((m - hist[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += hist[j]
        z *= 0.5
    z += m * _sigma(hist[0] / m)
    e = ALPHA_INF * m * m / z
    whole = math.floor(e)
    return whole + 1 if e - whole >= 0.5 else whole  # llroundl: halves away from zero


# --- PFDEBUG DECODE --------------------------------------------------------------

def decode(v) -> bytes:
    """The opcodes of a sparse value as PFDEBUG DECODE spells them."""
    words = []
    for _, kind, run, value in _ops(v):
        if kind == 0:
            words.append(b"z:%d" % run)
        elif kind == 1:
            words.append(b"Z:%d" % run)
        else:
            words.append(b"v:%d,%d" % (value, run))
    return b" ".join(words)


PY = SimpleNamespace(is_hll=is_hll, pfadd=pfadd, merge=merge, set_registers=set_registers,
                     to_dense=to_dense, count=count, count_raw=count_raw, index_count=index_count)

try:
    from engine import _hll
except ImportError:  # not built: the Python functions serve
    _hll = None

ACCELERATED = _hll is not None
if ACCELERATED:
    is_hll = _hll.is_hll  # noqa: F811
    pfadd = _hll.pfadd  # noqa: F811
    merge = _hll.merge  # noqa: F811
    set_registers = _hll.set_registers  # noqa: F811
    to_dense = _hll.to_dense  # noqa: F811
    count = _hll.count  # noqa: F811
    count_raw = _hll.count_raw  # noqa: F811
    C = SimpleNamespace(is_hll=_hll.is_hll, pfadd=_hll.pfadd, merge=_hll.merge,
                        set_registers=_hll.set_registers, to_dense=_hll.to_dense, count=_hll.count,
                        count_raw=_hll.count_raw, index_count=_hll.index_count)
else:
    C = None
