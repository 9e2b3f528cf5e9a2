"""A fast view of an RTP packet header (RFC 3550) and the one-byte / two-byte header extensions
(RFC 8285), read from ``bytes`` without building objects per field."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_FIXED = struct.Struct("!BBHII")
_EXT = struct.Struct("!HH")
RTP_VERSION = 2
ONE_BYTE_PROFILE = 0xBEDE


def is_rtp(data: bytes) -> bool:
    """Whether a datagram (SRTP or plain) is RTP: version 2 and not an RTCP packet type."""
    return len(data) >= 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 223


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in 16-bit sequence space, in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_diff(a: int, b: int) -> int:
    """``a - b`` in 32-bit timestamp space, in [-2**31, 2**31 - 1]."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


@dataclass(slots=True)
class RtpView:
    """The header fields of one RTP packet and where its payload lies in ``data``."""

    data: bytes
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    padding: bool
    #: Offset of the extension block's 4-byte header, or -1 without extensions.
    ext_start: int
    payload_start: int
    #: End of the payload, before any padding.
    payload_end: int

    @property
    def payload(self) -> bytes:
        return self.data[self.payload_start : self.payload_end]

    @property
    def payload_size(self) -> int:
        return self.payload_end - self.payload_start


def parse(data: bytes) -> RtpView | None:
    """A view of ``data``, or ``None`` if it is not a well-formed RTP packet."""
    size = len(data)
    if size < 12:
        return None
    b0, b1, seq, ts, ssrc = _FIXED.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        return None
    start = 12 + (b0 & 0x0F) * 4
    ext_start = -1
    if b0 & 0x10:
        if size < start + 4:
            return None
        ext_start = start
        start += 4 + _EXT.unpack_from(data, start)[1] * 4
    end = size
    if b0 & 0x20:
        if size <= start:
            return None
        end -= data[-1]
    if start > size or end < start:
        return None
    return RtpView(data, bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc, bool(b0 & 0x20), ext_start, start, end)


def extensions(view: RtpView) -> dict[int, bytes]:
    """The header extension elements of a packet, by id (one-byte and two-byte forms)."""
    found: dict[int, bytes] = {}
    if view.ext_start < 0:
        return found
    data = view.data
    profile, words = _EXT.unpack_from(data, view.ext_start)
    pos = view.ext_start + 4
    end = pos + words * 4
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            byte = data[pos]
            if byte == 0:
                pos += 1  # padding
                continue
            ext_id, length = byte >> 4, (byte & 0x0F) + 1
            if ext_id == 15:
                break
            found[ext_id] = data[pos + 1 : pos + 1 + length]
            pos += 1 + length
    elif profile & 0xFFF0 == 0x1000:
        while pos + 1 < end:
            ext_id = data[pos]
            if ext_id == 0:
                pos += 1
                continue
            length = data[pos + 1]
            found[ext_id] = data[pos + 2 : pos + 2 + length]
            pos += 2 + length
    return found


def one_byte_extension(view: RtpView, wanted: int) -> bytes | None:
    """The value of one extension element (one-byte form only: the fast path for audio level)."""
    if view.ext_start < 0 or wanted <= 0:
        return None
    data = view.data
    if data[view.ext_start] != 0xBE or data[view.ext_start + 1] != 0xDE:
        return extensions(view).get(wanted)
    pos = view.ext_start + 4
    end = view.payload_start
    while pos < end:
        byte = data[pos]
        if byte == 0:
            pos += 1
            continue
        ext_id, length = byte >> 4, (byte & 0x0F) + 1
        if ext_id == wanted:
            return data[pos + 1 : pos + 1 + length]
        if ext_id == 15:
            return None
        pos += 1 + length
    return None


def pack_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """A one-byte-form extension block (ids 1-14, values 1-16 bytes), padded to 32-bit words."""
    body = bytearray()
    for ext_id, value in elements:
        if not 1 <= ext_id <= 14 or not 1 <= len(value) <= 16:
            raise ValueError(f"extension {ext_id} of {len(value)} bytes does not fit the one-byte form")
        body.append((ext_id << 4) | (len(value) - 1))
        body += value
    body += bytes(-len(body) % 4)
    return _EXT.pack(ONE_BYTE_PROFILE, len(body) // 4) + bytes(body)


def pack_header(marker: bool, payload_type: int, sequence: int, timestamp: int, ssrc: int, *,
                padding: bool = False, extension: bool = False) -> bytes:
    """The fixed 12-byte header, no CSRCs."""
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if extension else 0)
    return _FIXED.pack(b0, (0x80 if marker else 0) | payload_type, sequence, timestamp, ssrc)
