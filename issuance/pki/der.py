"""The few DER (X.690) encodings the CRL needs that ``cryptography`` has no fast path for, and
the splitting that lets a token's signature replace a placeholder's (``signing``).

Only definite lengths and the universal types below; everything else about a certificate or a
CRL is left to ``cryptography``.
"""

from __future__ import annotations

from datetime import UTC, datetime

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
ENUMERATED = 0x0A
SEQUENCE = 0x30

# RFC 5280 4.1.2.5: UTCTime for the years 1950 to 2049, GeneralizedTime for the others.
UTC_TIME_YEARS = range(1950, 2050)


def length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:  # the common case, written out: a CRL has one per entry and field
        return bytes((tag, size)) + content
    return bytes((tag,)) + length(size) + content


def sequence(content: bytes) -> bytes:
    return tlv(SEQUENCE, content)


def integer(value: int) -> bytes:
    """A non-negative INTEGER in the fewest octets (a leading zero octet keeps it positive)."""
    if value < 0:
        raise ValueError("only non-negative integers are encoded here")
    return tlv(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def bit_string(content: bytes) -> bytes:
    """A BIT STRING of whole octets (no unused bits), as signatures are."""
    return tlv(BIT_STRING, b"\x00" + content)


def time(moment: datetime) -> bytes:
    """An RFC 5280 Time (whole seconds, UTC) of a timezone-aware datetime."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("datetime must be timezone-aware")
    if offset:
        moment = moment.astimezone(UTC)
    fields = (moment.month, moment.day, moment.hour, moment.minute, moment.second)
    if moment.year in UTC_TIME_YEARS:  # UTCTime (tag 0x17), YYMMDDHHMMSSZ, 13 octets
        return b"\x17\x0d%02d%02d%02d%02d%02d%02dZ" % (moment.year % 100, *fields)
    return b"\x18\x0f%04d%02d%02d%02d%02d%02dZ" % (moment.year, *fields)  # GeneralizedTime


def elements(encoded: bytes) -> list[bytes]:
    """The encoded elements (tag, length and content each) inside one SEQUENCE."""
    if not encoded or encoded[0] != SEQUENCE:
        raise ValueError("not a DER SEQUENCE")
    start, size = _header(encoded, 0)
    if start + size != len(encoded):
        raise ValueError("trailing data after the SEQUENCE")
    found = []
    position = start
    while position < len(encoded):
        content_start, content_size = _header(encoded, position)
        end = content_start + content_size
        if end > len(encoded):
            raise ValueError("an element runs past the end of the SEQUENCE")
        found.append(encoded[position:end])
        position = end
    return found


def content(encoded: bytes) -> bytes:
    """The content of the one element ``encoded`` (any tag), without its tag and length."""
    start, size = _header(encoded, 0)
    if start + size != len(encoded):
        raise ValueError("trailing or missing data after the element")
    return encoded[start:]


def _header(encoded: bytes, position: int) -> tuple[int, int]:
    """Where the content of the element at ``position`` starts, and its size."""
    if position + 2 > len(encoded):
        raise ValueError("truncated DER element")
    first = encoded[position + 1]
    if first < 0x80:
        return position + 2, first
    count = first & 0x7F
    if count == 0 or position + 2 + count > len(encoded):
        raise ValueError("indefinite or truncated DER length")
    size = int.from_bytes(encoded[position + 2 : position + 2 + count], "big")
    return position + 2 + count, size
