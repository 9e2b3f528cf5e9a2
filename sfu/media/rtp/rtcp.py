"""The few RTCP packets the packet path builds or edits itself (RFC 3550, 4585, REMB draft)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .header import seq_diff

SR = 200
RR = 201
SDES = 202
RTPFB = 205
PSFB = 206
NACK_FMT = 1
PLI_FMT = 1
FIR_FMT = 4
REMB_FMT = 15

_HEAD = struct.Struct("!BBH")


def _header(count_or_fmt: int, packet_type: int, body_len: int) -> bytes:
    return _HEAD.pack(0x80 | count_or_fmt, packet_type, (body_len + 4) // 4 - 1)


def nack(sender_ssrc: int, media_ssrc: int, lost: Iterable[int]) -> bytes:
    """Generic NACK for ``lost`` sequence numbers (packed as PID + bitmask pairs)."""
    fci = bytearray()
    for pid, mask in nack_pairs(lost):
        fci += struct.pack("!HH", pid, mask)
    body = struct.pack("!II", sender_ssrc, media_ssrc) + bytes(fci)
    return _header(NACK_FMT, RTPFB, len(body)) + body


def nack_pairs(lost: Iterable[int]) -> Iterator[tuple[int, int]]:
    given = list(lost)
    if not given:
        return
    # Sorted in sequence space relative to the first one given: robust to wrap-around.
    ref = given[0]
    ordered = sorted(set(given), key=lambda s: seq_diff(s, ref))
    pid, mask = ordered[0], 0
    for seq in ordered[1:]:
        diff = seq_diff(seq, pid)
        if 1 <= diff <= 16:
            mask |= 1 << (diff - 1)
        else:
            yield pid, mask
            pid, mask = seq, 0
    yield pid, mask


def nack_lost(fci: bytes) -> list[int]:
    """Sequence numbers named by a generic NACK's FCI."""
    lost = []
    for pos in range(0, len(fci) - 3, 4):
        pid, mask = struct.unpack_from("!HH", fci, pos)
        lost.append(pid)
        for bit in range(16):
            if mask & (1 << bit):
                lost.append((pid + bit + 1) & 0xFFFF)
    return lost


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    body = struct.pack("!II", sender_ssrc, media_ssrc)
    return _header(PLI_FMT, PSFB, len(body)) + body


def remb(sender_ssrc: int, bitrate: int, media_ssrcs: list[int]) -> bytes:
    exponent = 0
    mantissa = int(bitrate)
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exponent += 1
    fci = b"REMB" + struct.pack("!BBH", len(media_ssrcs), (exponent << 2) | (mantissa >> 16), mantissa & 0xFFFF)
    fci += b"".join(struct.pack("!I", s) for s in media_ssrcs)
    body = struct.pack("!II", sender_ssrc, 0) + fci
    return _header(REMB_FMT, PSFB, len(body)) + body


def receiver_report(sender_ssrc: int, media_ssrc: int, fraction: int, lost: int, highest: int,
                    jitter: int = 0, lsr: int = 0, dlsr: int = 0) -> bytes:
    block = struct.pack("!IB", media_ssrc, fraction) + (lost & 0xFFFFFF).to_bytes(3, "big")
    block += struct.pack("!IIII", highest, jitter, lsr, dlsr)
    body = struct.pack("!I", sender_ssrc) + block
    return _header(1, RR, len(body)) + body


def patch_sender_report(data: bytearray, ssrc: int, ntp: int, rtp_timestamp: int, packets: int,
                        octets: int) -> bool:
    """Overwrite the sender info of the Sender Report for ``ssrc`` in a compound RTCP packet."""
    pos = 0
    while pos + 4 <= len(data):
        length = (struct.unpack_from("!H", data, pos + 2)[0] + 1) * 4
        if data[pos + 1] == SR and pos + 28 <= len(data) and struct.unpack_from("!I", data, pos + 4)[0] == ssrc:
            struct.pack_into("!QIII", data, pos + 8, ntp & 0xFFFFFFFFFFFFFFFF, rtp_timestamp & 0xFFFFFFFF,
                             packets & 0xFFFFFFFF, octets & 0xFFFFFFFF)
            return True
        pos += length
    return False


def ntp_time(unix_seconds: float) -> int:
    """64-bit NTP timestamp of a Unix time."""
    seconds = unix_seconds + 2208988800
    return (int(seconds) << 32) | int((seconds % 1) * (1 << 32))


@dataclass(slots=True)
class Compound:
    """What a compound RTCP packet from a participant says that the packet path acts on."""

    #: (sender SSRC, NTP timestamp) of each Sender Report.
    sender_reports: list[tuple[int, int]] = field(default_factory=list)
    #: (media SSRC, lost sequence numbers) of each generic NACK.
    nacks: list[tuple[int, list[int]]] = field(default_factory=list)
    #: Media SSRCs a keyframe is asked for (PLI, FIR).
    keyframes: list[int] = field(default_factory=list)
    #: (bitrate, media SSRCs) of each REMB.
    rembs: list[tuple[int, list[int]]] = field(default_factory=list)

    def media_ssrcs(self) -> Iterator[int]:
        """The SSRCs feedback (NACK, PLI, FIR) is about."""
        for ssrc, _ in self.nacks:
            yield ssrc
        yield from self.keyframes


_SSRC_NTP = struct.Struct("!IQ")
_U32 = struct.Struct("!I")


def read_compound(data: bytes) -> Compound | None:
    """Read a (decrypted) compound RTCP packet: Sender and Receiver Reports, SDES, NACK, PLI, FIR and
    REMB. ``None`` if it is malformed or holds anything else (BYE, APP, XR, other feedback), which
    the caller leaves to the full RTCP stack."""
    size = len(data)
    if size < 4:
        return None
    found = Compound()
    pos = 0
    while pos < size:
        if pos + 4 > size or data[pos] >> 6 != 2:
            return None
        end = pos + (((data[pos + 2] << 8) | data[pos + 3]) + 1) * 4
        if end > size:
            return None
        packet_type, fmt = data[pos + 1], data[pos] & 0x1F
        if packet_type == SR:
            if end - pos < 28:
                return None
            found.sender_reports.append(_SSRC_NTP.unpack_from(data, pos + 4))
        elif packet_type in (RR, SDES):
            pass
        elif end - pos < 12 or packet_type not in (RTPFB, PSFB):
            return None
        elif packet_type == RTPFB and fmt == NACK_FMT:
            found.nacks.append((_U32.unpack_from(data, pos + 8)[0], nack_lost(data[pos + 12 : end])))
        elif packet_type == PSFB and fmt == PLI_FMT:
            found.keyframes.append(_U32.unpack_from(data, pos + 8)[0])
        elif packet_type == PSFB and fmt == FIR_FMT:
            found.keyframes.extend(_U32.unpack_from(data, at)[0] for at in range(pos + 12, end - 7, 8))
        elif packet_type == PSFB and fmt == REMB_FMT:
            estimate = read_remb(data[pos + 12 : end])
            if estimate is None:
                return None
            found.rembs.append(estimate)
        else:
            return None
        pos = end
    return found


def read_remb(fci: bytes) -> tuple[int, list[int]] | None:
    """(bitrate, media SSRCs) of a REMB's FCI, or ``None`` if it is not one."""
    if len(fci) < 8 or fci[:4] != b"REMB":
        return None
    count, exponent = fci[4], fci[5] >> 2
    mantissa = ((fci[5] & 0x03) << 16) | (fci[6] << 8) | fci[7]
    if len(fci) < 8 + 4 * count:
        return None
    return mantissa << exponent, [_U32.unpack_from(fci, 8 + 4 * i)[0] for i in range(count)]
