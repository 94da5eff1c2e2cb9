"""engine.rdbfile: whole RDB files written and read back, every value type in
every encoding, every opcode, and damage refused as RdbError.

Values are built through Keel's own commands (an engine Keyspace, no
server) and compared by their logical content (engine.digest) and, where
the encoding survives, by their RDB bytes. The side-by-side checks against
a real redis-server are in tests/integration/test_rdbfile_redis.py.
"""

from __future__ import annotations

import mmap
import os
import struct

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import intset, rdb, rdbfile, ziplist, zipmap
from engine._crc64 import crc64 as crc64_c
from engine.digest import value_digest
from engine.keyspace import Keyspace
from engine.rdbfile import RdbError, RdbWriter, parse
from engine.session import Session
from engine.types import encoding, type_name
from tests.support import run

FUTURE_MS = 4102444800000  # 2100-01-01


class Sink:
    """Records what parse hands over, in order."""

    def __init__(self):
        self.events = []
        self.keys = {}

    def aux(self, name, value):
        self.events.append(("aux", name, value))

    def key(self, db, key, value, expire_ms):
        self.events.append(("key", db, key))
        self.keys[(db, key)] = (value, expire_ms)

    def function(self, code):
        self.events.append(("function", code))

    def resize(self, db, nkeys, nexpires):
        self.events.append(("resize", db, nkeys, nexpires))


def parsed(buf, **kw) -> Sink:
    s = Sink()
    parse(buf, s, **kw)
    return s


def build_values() -> dict[bytes, object]:
    """One key per type and encoding, built by Keel's commands."""
    ks = Keyspace()
    c = Session(ks)
    cmds = [
        ("SET", "s:int", "12345"), ("SET", "s:neg", "-70000"), ("SET", "s:big-int", "9223372036854775807"),
        ("SET", "s:emb", "hello"), ("SET", "s:empty", ""), ("SET", "s:raw", "r" * 100),
        ("SET", "s:long", "L" * 20000), ("SET", "k" * 100, "long key"), ("SET", "007", "leading zero"),
        ("SET", "s:inplace", "abc"), ("APPEND", "s:inplace", "def"),
        ("RPUSH", "l:small", "a", "1", "-2", "x" * 70),
        ("RPUSH", "l:big", *[f"item:{i}" for i in range(3000)]),
        ("SADD", "set:int", "1", "2", "-3", "9223372036854775807"),
        ("SADD", "set:lp", "a", "b", "7"),
        ("SADD", "set:lp-ints-left", "a", "1", "2"), ("SREM", "set:lp-ints-left", "a"),
        ("SADD", "set:table", *[f"m{i}" for i in range(200)]),
        ("SADD", "set:bigint", *[str(i) for i in range(600)]),
        ("HSET", "h:lp", "f", "v", "n", "12"),
        ("HSET", "h:table", *[x for i in range(600) for x in (f"f{i}", f"v{i}")]),
        ("ZADD", "z:lp", "1", "a", "2.5", "b", "-inf", "c"),
        ("ZADD", "z:skip", *[x for i in range(200) for x in (str(i / 3), f"m{i}")]),
        ("XADD", "x:s", "1-1", "f", "v"), ("XADD", "x:s", "1-2", "f", "w"), ("XADD", "x:s", "2-0", "a", "b", "c", "d"),
        ("XDEL", "x:s", "1-2"),
        ("XGROUP", "CREATE", "x:s", "g1", "0"), ("XGROUP", "CREATE", "x:s", "g2", "$"),
        ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "1", "STREAMS", "x:s", ">"),
        ("XREADGROUP", "GROUP", "g1", "bob", "STREAMS", "x:s", ">"),
        ("XGROUP", "CREATECONSUMER", "x:s", "g1", "carol"),
        ("XGROUP", "CREATE", "x:empty", "g", "$", "MKSTREAM"),
    ]
    for i in range(1, 300):
        cmds.append(("XADD", "x:big", f"{i}-0", "f", str(i)))
    for cmd in cmds:
        run(c, *cmd)
    return dict(ks.dbs[0].data)


VALUES = build_values()


def write_file(values: dict, version: int = rdbfile.RDB_FILE_VERSION, expires: dict | None = None) -> bytes:
    expires = expires or {}
    w = RdbWriter(version)
    out = [w.header({"redis-ver": "7.0.15", "redis-bits": 64, "ctime": b"1700000000"}),
           w.select(0, len(values), len(expires))]
    for k, v in values.items():
        out.append(w.entry(k, rdb.encode_value(v), expires.get(k)))
    out.append(w.end())
    return b"".join(out)


# --- CRC-64 ---------------------------------------------------------------------

def test_c_crc64_is_redis_crc64_and_matches_the_python_loop():
    assert crc64_c(b"123456789") == 0xE9C6D914C4B8D9CA
    data = os.urandom(1000)
    for n in list(range(20)) + [63, 64, 65, 999]:
        assert crc64_c(data[:n]) == rdb.crc64_python(data[:n]), n
        assert crc64_c(data[:n], 0xDEADBEEF) == rdb.crc64_python(data[:n], 0xDEADBEEF), n
    assert rdb.crc64 is crc64_c


def test_c_crc64_reads_any_buffer_and_continues_across_pieces():
    data = os.urandom(3000)
    whole = crc64_c(data)
    assert crc64_c(bytearray(data)) == crc64_c(memoryview(data)) == whole
    assert crc64_c(data[1234:], crc64_c(data[:1234])) == whole
    assert crc64_c(data[1234:], crc=crc64_c(data[:1234])) == whole  # the Python function's signature
    for bad in ((), (data, 0, 0), (data, -1)):
        with pytest.raises((TypeError, OverflowError)):
            crc64_c(*bad)
    with pytest.raises(TypeError):
        crc64_c(data, start=0)
    with pytest.raises(TypeError):
        crc64_c("text")


# --- the writer ---------------------------------------------------------------------

def test_header_is_magic_version_and_aux_fields():
    w = RdbWriter()
    assert w.header({"a": "b", "n": 300}) == b"REDIS0010\xfa\x01a\x01b\xfa\x01n\xc1\x2c\x01"
    assert RdbWriter(11).header({}) == b"REDIS0011"


def test_select_and_function_records():
    w = RdbWriter()
    assert w.select(3, 70, 2) == b"\xfe\x03\xfb\x40\x46\x02"
    assert w.function(b"#!lua name=x") == b"\xf5\x0c#!lua name=x"


def test_end_carries_the_crc_of_every_byte_returned_before_it():
    w = RdbWriter()
    parts = [w.header({})] + [w.string_entry(b"k%d" % i, b"v" * 50) for i in range(3000)]  # > one crc batch
    parts += [w.entry(b"big", rdb.encode_value(b"B" * 300000)), w.string_entry(b"after", b"v"),
              w.entry(b"big2", rdb.encode_value(b"C" * 300000))]  # big ones between small ones
    parts.append(w.end())
    buf = b"".join(parts)
    assert buf[-9] == 0xFF and int.from_bytes(buf[-8:], "little") == rdb.crc64(buf[:-8])


@pytest.mark.parametrize("value", [b"", b"v", b"12", b"-12", b"007", b"1" * 11, b"12345678901", b"x" * 63,
                                   b"x" * 64, b"y" * 20000, bytearray(b"ba")])
@pytest.mark.parametrize("key", [b"k", b"123", b"k" * 64])
def test_string_entry_writes_what_entry_writes(key, value):
    for expire in (None, FUTURE_MS):
        assert RdbWriter().string_entry(key, value, expire) == RdbWriter().entry(key, rdb.encode_value(value), expire)


def test_writer_refuses_versions_it_cannot_write():
    for v in (9, 12):
        with pytest.raises(ValueError):
            RdbWriter(v)


def test_version_10_rewrites_a_listpack_set_as_a_plain_set_or_an_intset():
    w = RdbWriter(10)
    mixed = w.entry(b"s", rdb.encode_value(VALUES[b"set:lp"]))
    assert mixed[0] == rdbfile.TYPE_SET
    ints = w.entry(b"s", rdb.encode_value(VALUES[b"set:lp-ints-left"]))
    assert rdb.encode_value(VALUES[b"set:lp-ints-left"])[0] == rdbfile.TYPE_SET_LISTPACK
    assert ints[0] == rdbfile.TYPE_SET_INTSET
    assert intset.decode(rdb.read_string(ints, 3)[0]) == [1, 2]
    assert RdbWriter(11).entry(b"s", rdb.encode_value(VALUES[b"set:lp"]))[0] == rdbfile.TYPE_SET_LISTPACK


def test_version_10_writes_streams_as_listpacks_2_without_active_times():
    s = VALUES[b"x:s"]
    three = rdb.encode_value(s)
    assert three[0] == rdbfile.TYPE_STREAM_LISTPACKS_3
    entry = RdbWriter(10).entry(b"x", three)
    assert entry[0] == rdbfile.TYPE_STREAM_LISTPACKS_2
    consumers = sum(len(g.consumers) for g in s.groups.values())
    assert len(entry) == len(three) + 2 - 8 * consumers  # the key's 2 bytes in, 8 bytes per consumer out
    back = rdb.decode_value(bytes((entry[0],)) + entry[3:])[0]
    assert value_digest(back) == value_digest(s)
    for name, g in s.groups.items():
        for cname, cons in g.consumers.items():
            assert back.groups[name].consumers[cname].active == cons.seen


# --- round trips ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [10, 11])
def test_every_type_and_encoding_round_trips(version):
    got = parsed(write_file(VALUES, version)).keys
    assert set(got) == {(0, k) for k in VALUES}
    for k, v in VALUES.items():
        back, expire = got[(0, k)]
        assert expire is None
        assert value_digest(back) == value_digest(v), k
        if type(v) is bytearray:  # a string changed in place loads as a new one (embstr), as in Redis
            assert encoding(back) == "embstr"
        elif version == 10 and k == b"set:lp-ints-left":  # written as an intset, loaded as one (7.0 too)
            assert encoding(back) == "intset"
        else:
            assert encoding(back) == encoding(v), k
        if version == 11:
            assert rdb.encode_value(back) == rdb.encode_value(v), k
        assert type(back) is (bytes if type(v) is bytearray else type(v))


def test_version_10_files_hold_only_encodings_redis_7_0_reads():
    written = {RdbWriter(10).entry(k, rdb.encode_value(v))[0] for k, v in VALUES.items()}
    assert written == {0, 2, 4, 5, 11, 16, 17, 18, 19}


def test_records_reach_the_sink_in_file_order_with_their_database_and_expiry():
    w = RdbWriter()
    buf = b"".join([
        w.header({"redis-ver": "7.0.15", "n": 5}), w.function(b"#!lua name=lib\n"),
        w.select(0, 1, 1), w.string_entry(b"a", b"1", FUTURE_MS),
        w.select(15, 2, 0), w.string_entry(b"b", b"2"), w.entry(b"h", rdb.encode_value(VALUES[b"h:lp"]), 5),
        w.end(),
    ])
    s = parsed(buf)
    assert s.events == [("aux", b"redis-ver", b"7.0.15"), ("aux", b"n", b"5"), ("function", b"#!lua name=lib\n"),
                        ("resize", 0, 1, 1), ("key", 0, b"a"), ("resize", 15, 2, 0), ("key", 15, b"b"),
                        ("key", 15, b"h")]
    assert s.keys[(0, b"a")] == (b"1", FUTURE_MS)
    assert s.keys[(15, b"b")] == (b"2", None)
    assert s.keys[(15, b"h")][1] == 5  # past due: passed through, the caller drops it


def _file(body: bytes, version: int = 10) -> bytes:
    head = b"REDIS%04d" % version + body + b"\xff"
    return head + (rdb.crc64(head).to_bytes(8, "little") if version >= 5 else b"")


def test_expiry_in_seconds_idle_and_freq_hints():
    body = (b"\xfd" + struct.pack("<i", 1700000000) + b"\x00\x01a\x01x"
            + b"\xf8\x40\x82" + b"\xf9\x07" + b"\x00\x01b\x01y"
            + b"\xfc" + struct.pack("<q", FUTURE_MS) + b"\xf8\x05\x00\x01c\x01z")
    s = parsed(_file(body))
    assert s.keys == {(0, b"a"): (b"x", 1700000000000), (0, b"b"): (b"y", None), (0, b"c"): (b"z", FUTURE_MS)}


def test_a_sink_without_resize_is_fine():
    class Plain:
        def __init__(self):
            self.keys = []

        def aux(self, n, v):
            pass

        def key(self, db, k, v, e):
            self.keys.append(k)

        def function(self, c):
            pass

    p = Plain()
    parse(write_file({b"k": b"v"}), p)
    assert p.keys == [b"k"]


def test_old_encodings_redis_wrote_are_read():
    lp = rdb.encode_string
    entries = {
        b"list-ziplist": b"\x0a" + lp(ziplist.encode([b"a", 5, b"b"])),
        b"list-quicklist-1": b"\x0e\x02" + lp(ziplist.encode([b"a", b"b"])) + lp(ziplist.encode([7])),
        b"list-plain": b"\x01\x02" + lp(b"a") + lp(b"b"),
        b"hash-zipmap": b"\x09" + lp(zipmap.encode([b"f", b"v"])),
        b"hash-ziplist": b"\x0d" + lp(ziplist.encode([b"f", b"v", b"g", 3])),
        b"zset-ziplist": b"\x0c" + lp(ziplist.encode([b"m", b"1.5"])),
        b"zset-1": b"\x03\x01" + lp(b"m") + b"\x031.5",
        b"set-intset": b"\x0b" + lp(intset.encode([3, 1])),
        b"str-int-key": b"\x00\xc1\x39\x30" + lp(b"v"),
    }
    body = b"".join(v[:1] + lp(k) + v[1:] for k, v in entries.items() if k != b"str-int-key")
    body += entries[b"str-int-key"]
    for version in (4, 9, 10, 11):
        s = parsed(_file(body, version))
        assert run_read(s, b"list-ziplist") == [b"a", b"5", b"b"]
        assert run_read(s, b"list-quicklist-1") == [b"a", b"b", b"7"]
        assert run_read(s, b"list-plain") == [b"a", b"b"]
        assert run_read(s, b"hash-zipmap") == [b"f", b"v"]
        assert run_read(s, b"hash-ziplist") == [b"f", b"v", b"g", b"3"]
        assert run_read(s, b"zset-ziplist") == [b"m", b"1.5"]
        assert run_read(s, b"zset-1") == [b"m", b"1.5"]
        assert run_read(s, b"set-intset") == [b"1", b"3"]
        assert s.keys[(0, b"12345")][0] == b"v"


def run_read(sink: Sink, key: bytes):
    """The key's content through Keel's read commands."""
    ks = Keyspace()
    c = Session(ks)
    ks.dbs[0].set(key, sink.keys[(0, key)][0])
    kind = type_name(sink.keys[(0, key)][0])
    if kind == "list":
        return run(c, "LRANGE", key, 0, -1)
    if kind == "hash":
        return [x for pair in run(c, "HGETALL", key).items() for x in pair]
    if kind == "zset":
        return [x if isinstance(x, bytes) else b"%g" % x for x in run(c, "ZRANGE", key, 0, -1, "WITHSCORES")]
    if kind == "set":
        return sorted(run(c, "SMEMBERS", key))
    raise AssertionError(kind)


def test_input_kinds_give_bytes_values(tmp_path):
    buf = write_file({b"k": b"v", b"h": VALUES[b"h:lp"]})
    for kind in (bytearray, memoryview):
        s = parsed(kind(buf))
        assert type(s.keys[(0, b"k")][0]) is bytes
        assert value_digest(s.keys[(0, b"h")][0]) == value_digest(VALUES[b"h:lp"])
    path = tmp_path / "dump.rdb"
    path.write_bytes(write_file(VALUES))
    s = Sink()
    rdbfile.parse_file(str(path), s)
    assert len(s.keys) == len(VALUES)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert parsed(mm).keys.keys() == s.keys.keys()


# --- checksums, versions, damage ----------------------------------------------------------

SMALL = write_file({b"s": b"hello", b"n": b"42", b"l": VALUES[b"l:small"], b"h": VALUES[b"h:lp"],
                    b"x": VALUES[b"x:s"], b"z": VALUES[b"z:lp"]}, expires={b"s": FUTURE_MS})


def test_a_zero_checksum_is_not_checked_and_a_wrong_one_is_refused():
    zero = SMALL[:-8] + bytes(8)
    assert len(parsed(zero).keys) == 6
    wrong = SMALL[:-8] + (rdb.crc64(SMALL[:-8]) ^ 1).to_bytes(8, "little")
    with pytest.raises(RdbError, match=rf"RDB byte {len(SMALL) - 8}: wrong checksum"):
        parse(wrong, Sink())
    assert len(parsed(wrong, verify_checksum=False).keys) == 6


def test_truncated_at_every_position_is_refused():
    for n in range(len(SMALL)):
        with pytest.raises(RdbError):
            parse(SMALL[:n], Sink())


def test_a_flipped_byte_anywhere_is_refused_with_the_checksum_on():
    for i in range(len(SMALL)):
        damaged = bytearray(SMALL)
        damaged[i] ^= 0x5A
        with pytest.raises(RdbError):
            parse(damaged, Sink())


def test_flipped_bytes_without_the_checksum_give_rdberror_or_a_result_never_another_exception():
    for i in range(9, len(SMALL) - 8):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(SMALL)
            damaged[i] ^= flip
            try:
                parse(damaged, Sink(), verify_checksum=False)
            except RdbError:
                pass


@pytest.mark.parametrize("buf, message", [
    (b"", "RDB byte 0: not an RDB file"),
    (b"REDIX0010\xff" + bytes(8), "RDB byte 0: not an RDB file"),
    (b"REDIS00a0\xff" + bytes(8), "RDB byte 5: bad version field"),
    (b"REDIS0012\xff" + bytes(8), "RDB byte 5: can't handle RDB format version 12"),
    (b"REDIS0000\xff", "RDB byte 5: can't handle RDB format version 0"),
])
def test_bad_magic_and_versions_are_refused(buf, message):
    with pytest.raises(RdbError, match=message):
        parse(buf, Sink())


@pytest.mark.parametrize("body, message", [
    (b"\xf7\x01", "RDB byte 9: module data not supported"),
    (b"\x07\x01k\x01", r"RDB byte 9: module data not supported \(key b'k'\)"),
    (b"\x06\x01k\x01", "RDB byte 9: module data not supported"),
    (b"\xf6\x01x", "RDB byte 9: function library in the pre-GA Redis 7.0 format not supported"),
    (b"\x16\x01k\x01", "RDB byte 9: unknown value type 22"),
    (b"\x08\x01k\x01", "RDB byte 9: unknown value type 8"),
    (b"\xf4\x01", "RDB byte 9: unknown record type 244"),
    (b"\x00\x01k\x01v\x02\x01k\x00", "RDB byte 14: damaged key record: empty or malformed set length"),
    (b"\x00\x01k\x0fv", "RDB byte 9: the file ends inside a key record"),
    (b"\x00\x01k\x40\x50v", "RDB byte 9: damaged key record: string past the end of the payload"),
    (b"\xfe\xc0\x01", r"RDB byte 9: damaged record \(opcode 0xfe\): database number is an encoded string"),
    (b"\xfb\x01\x82", r"RDB byte 9: damaged record \(opcode 0xfb\): unknown length encoding 130"),
])
def test_damaged_records_name_their_byte_and_what_is_wrong(body, message):
    with pytest.raises(RdbError, match=message):
        parse(_file(body), Sink(), verify_checksum=False)


def test_a_missing_eof_is_refused():
    head = b"REDIS0010\x00\x01k\x01v"
    with pytest.raises(RdbError, match="RDB byte 14: the file ends before its EOF record"):
        parse(head, Sink())
    with pytest.raises(RdbError, match="RDB byte 9: the file ends inside a key record"):
        parse(head[:-1], Sink())
    with pytest.raises(RdbError, match=r"RDB byte 9: the file ends inside a record \(opcode 0xfc\)"):
        parse(b"REDIS0010\xfc\x00\x00", Sink())
    with pytest.raises(RdbError, match="RDB byte 15: the file ends inside its checksum"):
        parse(head + b"\xff\x00\x00", Sink())


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.rdb"
    path.write_bytes(b"")
    with pytest.raises(RdbError, match="RDB byte 0: empty file"):
        rdbfile.parse_file(str(path), Sink())


@pytest.mark.parametrize("method", ["aux", "key", "function", "resize"])
def test_the_sinks_own_errors_pass_through(method):
    class Failing(Sink):
        pass

    def fail(*args):
        raise KeyError("the sink's own")

    setattr(Failing, method, fail)
    w = RdbWriter()
    buf = b"".join([w.header({"a": 1}), w.function(b"f"), w.select(0, 1, 0), w.string_entry(b"k", b"v"), w.end()])
    with pytest.raises(KeyError, match="the sink's own"):
        parse(buf, Failing())


# --- LZF (C) --------------------------------------------------------------------------------

LZF_ABAB = b"\x01ab" + bytes((4 << 5, 1))  # "ab", then 6 bytes copied from 2 back: "abababab"


def test_c_lzf_gives_the_python_loops_results_and_errors():
    import random

    from engine import lzf

    def result(f, src, n):
        try:
            return f(src, n)
        except lzf.LzfError as e:
            return str(e)

    rnd = random.Random(7)

    def compressed() -> tuple[bytes, int]:
        """A valid LZF stream (literal runs and back references) and its output length."""
        src, out = bytearray(), 0
        for _ in range(rnd.randrange(1, 6)):
            if out and rnd.random() < 0.5:
                length, dist = rnd.randrange(3, 40), rnd.randrange(min(out, 8191))
                if length - 2 < 7:
                    src += bytes((((length - 2) << 5) | (dist >> 8), dist & 0xFF))
                else:
                    src += bytes(((7 << 5) | (dist >> 8), length - 9, dist & 0xFF))
                out += length
            else:
                k = rnd.randrange(1, 33)
                src += bytes((k - 1,)) + rnd.randbytes(k)
                out += k
        return bytes(src), out

    ok = 0
    for _ in range(3000):
        src, n = compressed()
        for m in (n, n - 1, n + 1):
            c, py = result(lzf.decompress, src, m), result(lzf.decompress_python, src, m)
            assert c == py, (src, m)
            ok += type(c) is bytes
        damaged = bytearray(src)
        damaged[rnd.randrange(len(src))] = rnd.randrange(256)
        cut = rnd.randrange(len(damaged) + 1)
        del damaged[cut:cut + rnd.randrange(2)]  # and maybe one byte less
        assert result(lzf.decompress, bytes(damaged), n) == result(lzf.decompress_python, bytes(damaged), n)
    assert ok == 3000
    assert lzf.decompress(LZF_ABAB, 8) == b"abababab"
    with pytest.raises(lzf.LzfError, match="output shorter"):  # more than the input can expand to
        lzf.decompress(LZF_ABAB, 10**9)


@pytest.mark.parametrize("ulen, clen, ok", [(8, 5, True), (7, 5, False), (9, 5, False), (8, 4, False)])
def test_an_lzf_string_value_in_a_file(ulen, clen, ok):
    body = b"\x00\x01k\xc3" + bytes((clen, ulen)) + LZF_ABAB[:clen] + b"\x00\x01z\x01y"
    if ok:
        assert parsed(_file(body)).keys == {(0, b"k"): (b"abababab", None), (0, b"z"): (b"y", None)}
    else:
        with pytest.raises(RdbError, match="RDB byte 9: damaged key record: invalid LZF string"):
            parse(_file(body), Sink())
