"""engine.rdb / engine.lzf: DUMP payloads byte-equal to Redis's, and their decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import lzf, rdb

# DUMP payloads captured from a real redis-server 7.0.15 (RDB version 10).
REDIS_PAYLOADS = {
    b"": "00000a005d9b5c400f7fa2da",
    b"hello": "000568656c6c6f0a006372df766534200a",
    b"0": "00c0000a009840a778f8500308",
    b"-129": "00c17fff0a001760822854808480",
    b"32768": "00c2008000000a0045d82eedd5bda910",
    b"2147483648": "000a323134373438333634380a00e7b129a34c1d76ee",
    b"-0": "00022d300a00d5411fd9d6d050cc",
    b"007": "00033030370a007258e27b4c69bad9",
    # LZF-compressed by Redis (strings over 20 bytes that compress).
    b"1" * 21: "00c30615013131e00a000a0089546bdb905de1aa",
    b"a" * 100: "00c3094064016161e057000161610a00e8a3b507b06df271",
    b"ab" * 64: "00c30a408002616261e072010161620a0092543b9d4d896d6d",
}


def with_footer(body: bytes, version: int = rdb.RDB_VERSION) -> bytes:
    p = body + version.to_bytes(2, "little")
    return p + rdb.crc64(p).to_bytes(8, "little")


def test_crc64_is_redis_jones_variant():
    assert rdb.crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert rdb.crc64(b"") == 0


def test_crc64_continues_from_a_previous_crc():
    assert rdb.crc64(b"6789", rdb.crc64(b"12345")) == rdb.crc64(b"123456789")


@pytest.mark.parametrize("value", [v for v in REDIS_PAYLOADS if len(v) <= 20])
def test_dump_v10_is_byte_equal_to_redis_7_0(value):
    assert rdb.dump(value, version=10).hex() == REDIS_PAYLOADS[value]


def test_dump_writes_rdb_version_11():
    assert rdb.dump(b"x")[-10:-8] == b"\x0b\x00"


@pytest.mark.parametrize("value", list(REDIS_PAYLOADS))
def test_restore_reads_every_redis_payload(value):
    assert rdb.restore(bytes.fromhex(REDIS_PAYLOADS[value])) == value


@pytest.mark.parametrize("value,encoding", [
    (b"127", b"\xc0\x7f"), (b"-128", b"\xc0\x80"), (b"128", b"\xc1\x80\x00"),
    (b"-32768", b"\xc1\x00\x80"), (b"2147483647", b"\xc2\xff\xff\xff\x7f"),
    (b"-2147483648", b"\xc2\x00\x00\x00\x80"),
])
def test_integer_strings_use_the_smallest_int_encoding(value, encoding):
    assert rdb.encode_string(value) == encoding


@pytest.mark.parametrize("value", [b"+1", b" 1", b"01", b"1 ", b"12345678901", b"-2147483649", b"1_0"])
def test_non_canonical_or_wide_integers_stay_raw(value):
    assert rdb.encode_string(value) == bytes((len(value),)) + value


@pytest.mark.parametrize("n,prefix", [
    (63, b"\x3f"), (64, b"\x40\x40"), (16383, b"\x7f\xff"), (16384, b"\x80\x00\x00\x40\x00"),
])
def test_length_encodings_at_their_boundaries(n, prefix):
    assert rdb.encode_length(n) == prefix
    assert rdb.read_length(prefix + b"rest", 0) == (n, len(prefix), False)


def test_64bit_length_encoding_reads_back():
    enc = rdb.encode_length(1 << 33)
    assert enc[0] == 0x81
    assert rdb.read_length(enc, 0) == (1 << 33, 9, False)


def test_one_megabyte_string_round_trips():
    value = bytes(range(256)) * 4096
    assert rdb.restore(rdb.dump(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.integers(-(2**63), 2**63 - 1).map(lambda i: b"%d" % i),
                 st.from_regex(rb"\A-?[0-9]{1,12}\Z")))
def test_any_string_round_trips(value):
    assert rdb.restore(rdb.dump(value)) == value


def test_bad_checksum_is_a_version_error():
    p = bytearray(rdb.dump(b"hello"))
    p[-1] ^= 1
    with pytest.raises(rdb.PayloadVersionError):
        rdb.restore(bytes(p))


def test_corrupt_body_fails_the_checksum():
    p = bytearray(rdb.dump(b"hello"))
    p[3] ^= 0x20
    with pytest.raises(rdb.PayloadVersionError):
        rdb.restore(bytes(p))


def test_newer_version_is_refused():
    with pytest.raises(rdb.PayloadVersionError):
        rdb.restore(with_footer(b"\x00\x01a", rdb.RDB_VERSION + 1))


def test_older_versions_are_accepted():
    assert rdb.restore(with_footer(b"\x00\x01a", 0)) == b"a"
    assert rdb.restore(with_footer(b"\x00\x01a", 10)) == b"a"


@pytest.mark.parametrize("payload", [b"", b"\x00" * 9])
def test_payload_shorter_than_its_footer_is_a_version_error(payload):
    with pytest.raises(rdb.PayloadVersionError):
        rdb.restore(payload)


@pytest.mark.parametrize("body", [
    b"\x30\x01a",                                   # unknown type byte
    b"",                                            # no type byte at all
    b"\x00\xc4\x05",                                # unknown special string encoding
    bytes.fromhex("c30615013131e0ff"),              # LZF type byte used as value type
    b"\x00" + bytes.fromhex("c30614013131e00a"),    # LZF expands to the wrong length
    b"\x00\x82\x00",                                # unknown length encoding
    b"\x00\x80\xff\xff\xff\xff",                    # length past the end
])
def test_malformed_values_are_bad_data(body):
    with pytest.raises(rdb.PayloadError) as e:
        rdb.restore(with_footer(body))
    assert not isinstance(e.value, rdb.PayloadVersionError)


def test_bytes_between_value_and_footer_are_ignored_like_redis():
    assert rdb.restore(with_footer(b"\x00\x01aXYZ")) == b"a"


def test_string_length_running_into_the_footer_takes_footer_bytes_like_redis():
    p = with_footer(b"\x00\x05ab", 10)
    assert rdb.restore(p) == b"ab" + p[-10:-7]


def test_unregistered_python_type_cannot_be_encoded():
    with pytest.raises(TypeError):
        rdb.dump(["a list"])


def test_registering_a_type_byte_twice_is_refused():
    with pytest.raises(RuntimeError):
        rdb.register(rdb.TYPE_STRING, bytearray, bytes, rdb.read_string)


# --- LZF ---------------------------------------------------------------------

def test_lzf_literal_and_overlapping_back_reference():
    # "ab" literal, then a back reference of length 6 at distance 2: "abababab".
    assert lzf.decompress(b"\x01ab" + bytes(((4 << 5) | 0, 1)), 8) == b"abababab"


def test_lzf_long_back_reference_uses_the_extra_length_byte():
    src = b"\x00x" + bytes((7 << 5, 93, 0))  # length 7 + 93 + 2 = 102 at distance 1
    assert lzf.decompress(src, 103) == b"x" * 103


@pytest.mark.parametrize("src,n", [
    (b"\x05ab", 6),                  # literal run past the end of the input
    (b"\x20\x05", 3),                # back reference before the start of the output
    (b"\x00a\x20", 3),               # input ends inside a back reference
    (b"\x01ab", 1),                  # output longer than stated
    (b"\x01ab", 3),                  # output shorter than stated
])
def test_lzf_malformed_input_raises(src, n):
    with pytest.raises(lzf.LzfError):
        lzf.decompress(src, n)
