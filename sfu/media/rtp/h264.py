"""H.264 RTP payloads (RFC 6184): keyframe starts at packet level, and depayloading to Annex B."""

from __future__ import annotations

STAP_A = 24
FU_A = 28
IDR = 5
SPS = 7
START_CODE = b"\x00\x00\x00\x01"


def _stap_types(payload: bytes) -> list[int]:
    types = []
    pos = 1
    while pos + 2 < len(payload):
        size = (payload[pos] << 8) | payload[pos + 1]
        pos += 2
        if size == 0 or pos + size > len(payload):
            break
        types.append(payload[pos] & 0x1F)
        pos += size
    return types


def is_keyframe_start(payload: bytes) -> bool:
    """Whether this packet begins a decodable picture: an SPS or the first fragment of an IDR."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (IDR, SPS):
        return True
    if nal == STAP_A:
        return any(t in (IDR, SPS) for t in _stap_types(payload))
    if nal == FU_A and len(payload) > 1:
        return bool(payload[1] & 0x80) and (payload[1] & 0x1F) in (IDR, SPS)
    return False


def depayload(payload: bytes) -> bytes:
    """The Annex B bytes carried by one packet (a fragment continues the previous packet's NAL)."""
    if not payload:
        return b""
    nal = payload[0] & 0x1F
    if 1 <= nal <= 23:
        return START_CODE + payload
    if nal == STAP_A:
        out = bytearray()
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0 or pos + size > len(payload):
                break
            out += START_CODE + payload[pos : pos + size]
            pos += size
        return bytes(out)
    if nal == FU_A and len(payload) > 1:
        if payload[1] & 0x80:
            header = (payload[0] & 0xE0) | (payload[1] & 0x1F)
            return START_CODE + bytes([header]) + payload[2:]
        return payload[2:]
    return b""
