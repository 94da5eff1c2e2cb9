"""INCRBYFLOAT prints exactly Redis's digits: long double parsing, addition, formatting.

Redis does the arithmetic in x87 80-bit long double and prints ``%.17Lf``;
``engine.longdouble`` emulates that with exact rationals. These tests hold
it to a real redis-server, digit for digit, on chosen edge cases and on
Hypothesis-generated decimal, float and hex inputs.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors, longdouble
from engine.keyspace import Keyspace
from engine.registry import COMMANDS
from engine.session import Session
from tests.support import Err

EDGE_CASES = [
    ("10.5", "0.1"), ("0.1", "0.2"), ("5.0e3", "0"), ("3.0e3", "200"), ("1", "-1"), ("-0", "-0"),
    ("0x10", "1"), ("0X1P-2", "0"), ("0x1.8p1", ".5"), ("0x.8", "0"), ("1e4000", "1"), ("-1e4000", "1"),
    ("1e-4940", "0"), ("1e-4951", "0"), ("1e-4950", "1e-4950"), ("0x1p-16445", "0"), ("0x1p-16446", "0"),
    ("1.18973149535723176502e+4932", "1"), ("1.18973149535723176508e+4932", "0"), ("inf", "1"),
    ("-inf", "-1"), ("inf", "-inf"), ("INFINITY", "0"), ("nan", "1"), ("-nan", "0"), ("1e5000", "0"),
    ("1e-5000", "0"), ("0e99999999999999999", "2"), (" 1", "1"), ("1 ", "1"), ("\t1", "1"), ("1\x00", "1"),
    ("", "1"), ("1e", "1"), ("1e+", "1"), (".", "1"), (".e1", "1"), ("+.5", "1."), ("--1", "1"),
    ("- 1", "1"), ("0x", "1"), ("0x1p", "1"), ("1.e5", "0"), ("abc", "1"), ("1" * 5119, "0"),
    ("0." + "0" * 5100 + "1", "0"), ("1." + "0" * 5115, "1"), ("1." + "0" * 5116, "1"),
    ("0.000000000000000015", "0"), ("0.000000000000000025", "0"), ("0.000000000000000005", "0"),
    ("12345678901234567890123", "0.1"), ("-9999999999999999.5", "0.25"), ("9223372036854775807", "1"),
    ("1.7976931348623157e308", "1.7976931348623157e308"), ("2.5", "1e-17"), ("-2.5", "-1e-17"),
    # exact ties at the 17th decimal: printf rounds them half to even
    ("0x1p-18", "0"), ("0x3p-18", "0"), ("-0x3p-18", "0"), ("0x5p-18", "0x1p-60"),
]


@pytest.mark.parametrize("value,increment", EDGE_CASES)
def test_incrbyfloat_edge_cases_print_redis_digits(pair, value, increment):
    pair.check("SET", "f", value)
    pair.check("INCRBYFLOAT", "f", increment)
    pair.check("GET", "f")
    pair.check("INCRBYFLOAT", "missing", value)
    pair.check("GET", "missing")


def test_incrbyfloat_error_texts(pair):
    assert pair.check("INCRBYFLOAT", "f", "abc") == Err(errors.NOT_FLOAT)
    pair.check("SET", "f", "inf")
    assert pair.check("INCRBYFLOAT", "f", "1") == Err(errors.NAN_OR_INF)
    pair.check("SET", "f", "1e4932")
    assert pair.check("INCRBYFLOAT", "f", "1e4932") == Err(errors.NAN_OR_INF)
    pair.check("GET", "f")


decimal_text = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{'.' + frac if frac is not None else ''}"
                                   f"{'e' + str(exp) if exp is not None else ''}",
    st.sampled_from(["", "-", "+"]),
    st.integers(0, 10**22).map(str),
    st.none() | st.text("0123456789", min_size=0, max_size=25),
    st.none() | st.integers(-40, 40),
)
float_text = st.floats(allow_nan=False, allow_infinity=False).map(repr)
hex_text = st.floats(allow_nan=False, allow_infinity=False).map(float.hex)
number_text = decimal_text | float_text | hex_text | st.integers(-(2**70), 2**70).map(str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=number_text, increment=number_text)
def test_incrbyfloat_matches_redis_digit_for_digit(pair, value, increment):
    pair.check("SET", "f", value)
    pair.check("INCRBYFLOAT", "f", increment)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(decimal_text | float_text, min_size=1, max_size=8))
def test_repeated_incrbyfloat_accumulates_like_redis(pair, steps):
    pair.keel.call("DEL", "acc")
    pair.ref.call("DEL", "acc")
    for step in steps:
        pair.check("INCRBYFLOAT", "acc", step)


def test_incrbyfloat_keeps_ttl_and_records_set_keepttl():
    c = Session(Keyspace())
    h = COMMANDS["incrbyfloat"].handler
    c.db.set(b"f", b"10.5")
    c.db.set_expire(b"f", 4_000_000_000_000)
    assert h(c, [b"INCRBYFLOAT", b"f", b"0.1"]) == b"10.6"
    assert c.db.expires[b"f"] == 4_000_000_000_000
    assert c.ks.effects == [(0, [b"SET", b"f", b"10.6", b"KEEPTTL"])]


def test_failed_incrbyfloat_records_nothing():
    c = Session(Keyspace())
    h = COMMANDS["incrbyfloat"].handler
    c.db.set(b"f", b"1e4932")
    for arg in (b"1e4932", b"nan", b"x"):
        with pytest.raises(errors.CommandError):
            h(c, [b"INCRBYFLOAT", b"f", arg])
    assert c.ks.effects == [] and c.db.data[b"f"] == b"1e4932"


# --- the emulation itself ----------------------------------------------------------

def test_round_ld_keeps_64_significant_bits_ties_to_even():
    one = Fraction(1)
    ulp = Fraction(1, 2**63)
    assert longdouble.round_ld(one + ulp) == one + ulp
    assert longdouble.round_ld(one + ulp / 2) == one  # tie: to even
    assert longdouble.round_ld(one + 3 * ulp / 2) == one + 2 * ulp  # tie: to even
    assert longdouble.round_ld(one + ulp / 2 + Fraction(1, 2**100)) == one + ulp


def test_round_ld_has_gradual_underflow_and_overflows_to_infinity():
    tiny = Fraction(1, 2**16445)
    assert longdouble.round_ld(tiny) == tiny
    assert longdouble.round_ld(tiny / 2) == 0  # tie with zero: to even
    assert longdouble.round_ld(3 * tiny / 4) == tiny
    top = Fraction((2**64 - 1) << (16384 - 64))
    assert longdouble.round_ld(top) == top
    assert longdouble.round_ld(Fraction(2**16384)) == float("inf")
    assert longdouble.round_ld(-Fraction(2**16384)) == float("-inf")


def test_format_human_rounds_half_to_even_at_the_17th_decimal():
    assert longdouble.format_human(Fraction(5, 10**18)) == b"0"
    assert longdouble.format_human(Fraction(15, 10**18)) == b"0.00000000000000002"
    assert longdouble.format_human(Fraction(25, 10**18)) == b"0.00000000000000002"
    assert longdouble.format_human(Fraction(-1, 10**18)) == b"0"
    assert longdouble.format_human(Fraction(-3, 2)) == b"-1.5"
    assert longdouble.format_human(Fraction(10**4500)) == b"1" + b"0" * 4500


def test_parse_refuses_what_string2ld_refuses():
    for bad in (b"", b" 1", b"1 ", b"1\x00", b"nan", b"0x", b"1e", b"1e5000", b"1e-5000", b"1" * 5120):
        assert longdouble.parse(bad) is None, bad
    assert longdouble.parse(b"-inf") == float("-inf")
    assert longdouble.parse(b"0x1p-1") == Fraction(1, 2)
    assert longdouble.parse(b"-0") == 0
