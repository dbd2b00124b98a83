"""The DER encodings of issuance.pki.der, against values worked out by hand from X.690."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from issuance.pki import der


@pytest.mark.parametrize(
    ("size", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8180"),
        (255, "81ff"),
        (256, "820100"),
        (65536, "83010000"),
    ],
)
def test_lengths(size: int, encoded: str) -> None:
    assert der.length(size).hex() == encoded


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "020100"),
        (1, "020101"),
        (127, "02017f"),
        (128, "02020080"),
        (255, "020200ff"),
        (256, "02020100"),
        (2**159 - 1, "0214" + "7f" + "ff" * 19),
    ],
)
def test_integers(value: int, encoded: str) -> None:
    assert der.integer(value).hex() == encoded


def test_negative_integers_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        der.integer(-1)


def test_times_switch_to_generalized_time_in_2050() -> None:
    assert der.time(datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)) == b"\x17\x0d491231235959Z"
    assert der.time(datetime(2050, 1, 1, tzinfo=UTC)) == b"\x18\x0f20500101000000Z"
    assert der.time(datetime(1949, 12, 31, tzinfo=UTC)) == b"\x18\x0f19491231000000Z"
    assert der.time(datetime(1950, 1, 1, tzinfo=UTC)) == b"\x17\x0d500101000000Z"


def test_times_are_given_in_utc_and_whole_seconds() -> None:
    tokyo = timezone(timedelta(hours=9))
    moment = datetime(2027, 1, 1, 8, 59, 59, 999_999, tzinfo=tokyo)
    assert der.time(moment) == b"\x17\x0d261231235959Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        der.time(datetime(2027, 1, 1))


def test_bit_string_of_whole_octets() -> None:
    assert der.bit_string(b"\xab").hex() == "030200ab"


def test_elements_of_a_sequence() -> None:
    long_octets = der.tlv(der.OCTET_STRING, b"x" * 300)
    encoded = der.sequence(der.integer(5) + long_octets + der.sequence(b""))
    assert der.elements(encoded) == [der.integer(5), long_octets, b"\x30\x00"]


@pytest.mark.parametrize(
    "broken",
    [
        b"",
        b"\x02\x01\x00",
        b"\x30\x05\x02\x01\x00",
        b"\x30\x03\x02\x05\x00",
        b"\x30\x80\x00\x00",
        b"\x30\x02\x04\x81",
        b"\x30\x03\x02\x01\x00\x00",
    ],
)
def test_broken_sequences_are_refused(broken: bytes) -> None:
    with pytest.raises(ValueError):
        der.elements(broken)
