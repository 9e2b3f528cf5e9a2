"""VP8 RTP payload descriptor (RFC 7741): where the picture id and TL0PICIDX are, keyframe starts,
and keeping both continuous across the sources that feed one outbound stream (as mediasoup does)."""

from __future__ import annotations

from dataclasses import dataclass

from .header import seq_diff


@dataclass(slots=True)
class Vp8Descriptor:
    start: bool  #: S bit: first packet of a partition
    partition: int  #: PID
    #: Offset of the picture id within the payload, -1 if absent.
    picture_id_at: int
    picture_id_bits: int  #: 7 or 15
    picture_id: int
    tl0_at: int  #: offset of TL0PICIDX within the payload, -1 if absent
    tl0picidx: int
    size: int  #: descriptor length: the VP8 bitstream starts here

    @property
    def frame_start(self) -> bool:
        return self.start and self.partition == 0


def descriptor(payload: bytes) -> Vp8Descriptor | None:
    """Parse the payload descriptor; ``None`` if it is truncated."""
    size = len(payload)
    if size < 1:
        return None
    b0 = payload[0]
    pos = 1
    pid_at, pid_bits, pid, tl0_at, tl0 = -1, 0, 0, -1, 0
    if b0 & 0x80:
        if size < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:
            if size < pos + 1:
                return None
            pid_at = pos
            if payload[pos] & 0x80:
                if size < pos + 2:
                    return None
                pid_bits, pid = 15, ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                pos += 2
            else:
                pid_bits, pid = 7, payload[pos] & 0x7F
                pos += 1
        if ext & 0x40:
            if size < pos + 1:
                return None
            tl0_at, tl0 = pos, payload[pos]
            pos += 1
        if ext & 0x30:
            pos += 1
        if size < pos:
            return None
    return Vp8Descriptor(bool(b0 & 0x10), b0 & 0x07, pid_at, pid_bits, pid, tl0_at, tl0, pos)


def is_keyframe_start(payload: bytes) -> bool:
    """Whether this packet begins a VP8 key frame (S=1, partition 0, P bit of the frame tag clear)."""
    return keyframe_start(descriptor(payload), payload)


def keyframe_start(d: Vp8Descriptor | None, payload: bytes) -> bool:
    """:func:`is_keyframe_start` with the payload's descriptor ``d`` already read."""
    return d is not None and d.frame_start and len(payload) > d.size and not payload[d.size] & 0x01


def depayload(payload: bytes) -> bytes:
    """The VP8 bitstream carried by one packet."""
    d = descriptor(payload)
    return b"" if d is None else payload[d.size :]


class PictureIdContinuity:
    """Rewrites picture ids and TL0PICIDX so that they continue across source changes.

    Within one source the input's differences are kept (a gap stays a gap: the receiver must see
    real loss). At each source change, the first picture of the new source gets the id after the
    highest one sent so far.
    """

    def __init__(self) -> None:
        self._pid_offset = 0
        self._tl0_offset = 0
        self._last_pid: int | None = None
        self._last_tl0: int | None = None

    def rebase(self, d: Vp8Descriptor) -> None:
        """The next packet (``d``) is the first of a new source."""
        if d.picture_id_at >= 0 and self._last_pid is not None:
            self._pid_offset = (self._last_pid + 1 - d.picture_id) & 0x7FFF
        elif d.picture_id_at >= 0:
            self._pid_offset = 0
        if d.tl0_at >= 0 and self._last_tl0 is not None:
            self._tl0_offset = (self._last_tl0 + 1 - d.tl0picidx) & 0xFF
        elif d.tl0_at >= 0:
            self._tl0_offset = 0

    def rewrite(self, out: bytearray, payload_at: int, d: Vp8Descriptor) -> None:
        """Write the continued ids into ``out`` (the outgoing packet; its payload at ``payload_at``)."""
        if d.picture_id_at >= 0:
            pid = (d.picture_id + self._pid_offset) & 0x7FFF
            at = payload_at + d.picture_id_at
            if d.picture_id_bits == 15:
                out[at] = 0x80 | (pid >> 8)
                out[at + 1] = pid & 0xFF
            else:
                out[at] = pid & 0x7F
            if self._last_pid is None or seq_diff(pid << 1, self._last_pid << 1) > 0:
                self._last_pid = pid
        if d.tl0_at >= 0:
            tl0 = (d.tl0picidx + self._tl0_offset) & 0xFF
            out[payload_at + d.tl0_at] = tl0
            if self._last_tl0 is None or ((tl0 - self._last_tl0) & 0xFF) < 0x80:
                self._last_tl0 = tl0
