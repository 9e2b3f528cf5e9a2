"""A bounded history of the packets one outbound stream sent, to answer the receiver's NACKs."""

from __future__ import annotations

import struct

from .header import parse, seq_diff

#: Packets kept (about 3-4 s of 800 kbps video).
HISTORY_SIZE = 512
#: Packets older than this (seconds) are not resent: the receiver has moved on.
MAX_AGE = 1.0


class PacketHistory:
    def __init__(self, size: int = HISTORY_SIZE, max_age: float = MAX_AGE) -> None:
        self._size = size
        self._max_age = max_age
        self._packets: list[tuple[int, float, bytes] | None] = [None] * size
        self.resent = 0
        self.missed = 0

    def add(self, sequence: int, packet: bytes, now: float) -> None:
        self._packets[sequence % self._size] = (sequence, now, packet)

    def get(self, sequence: int, now: float) -> bytes | None:
        entry = self._packets[sequence % self._size]
        if entry is None or entry[0] != sequence or now - entry[1] > self._max_age:
            self.missed += 1
            return None
        self.resent += 1
        return entry[2]


class RtxWrapper:
    """Wraps resent packets in RTX (RFC 4588) on the stream's RTX SSRC and payload type."""

    def __init__(self, ssrc: int, payload_type: int, first_sequence: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self._sequence = first_sequence & 0xFFFF

    def wrap(self, packet: bytes) -> bytes | None:
        view = parse(packet)
        if view is None:
            return None
        out = bytearray(packet[: view.payload_start])
        out[0] &= ~0x20 & 0xFF  # the original padding is not carried
        out[1] = (out[1] & 0x80) | self.payload_type
        struct.pack_into("!HI", out, 2, self._sequence, view.timestamp)
        struct.pack_into("!I", out, 8, self.ssrc)
        out += struct.pack("!H", view.sequence)
        out += packet[view.payload_start : view.payload_end]
        self._sequence = (self._sequence + 1) & 0xFFFF
        return bytes(out)


def newest_first(sequences: list[int]) -> list[int]:
    """NACKed sequence numbers, most recent first (they are the most useful to resend)."""
    if not sequences:
        return []
    ref = sequences[0]
    return sorted(sequences, key=lambda s: seq_diff(s, ref), reverse=True)
