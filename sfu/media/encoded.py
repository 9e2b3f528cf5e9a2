"""Complete encoded frames taken off a receiver before decoding.

:class:`FrameAssembler` replaces an aiortc receiver's jitter buffer (see
:func:`sfu.media.aiortc_hooks.server.tap_receiver`). aiortc still does SRTP, RTX unwrapping, NACKs and
depayloading; the assembler groups the depayloaded packets into frames and hands each complete one
to a callback. It returns nothing to aiortc, so the receiver's decoder thread stays idle.

Video frames are emitted as soon as the packet carrying the RTP marker bit completes them (no
waiting for the next frame). A missing packet is waited for briefly (NACK retransmissions); if it
does not come, the stream is broken until the next keyframe: nothing is emitted until one arrives,
because a decoder fed a stream with a hole decodes garbage without noticing (aiortc's sender
renumbers packets, so the hole is invisible downstream). Audio packets are frames on their own and
are emitted at once, without prefetch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiortc import RTCRtpCodecParameters

from .aiortc_hooks.server import packet_data

if TYPE_CHECKING:
    from .aiortc_hooks.server import RtpPacket

#: Packets held while waiting for a missing one, before giving up on it.
MAX_PENDING_PACKETS = 256
#: Seconds to wait for a missing packet (a retransmission) before giving up on it.
MAX_WAIT = 0.3


@dataclass
class EncodedFrame:
    """One complete encoded frame as the publisher sent it."""

    data: bytes
    timestamp: int  #: RTP timestamp (publisher's clock, codec clock rate)
    keyframe: bool
    codec: RTCRtpCodecParameters
    ssrc: int
    arrival: float  #: when its last packet arrived (the assembler's clock: time.monotonic())


def mime(codec: RTCRtpCodecParameters) -> str:
    return codec.mimeType.lower()


def same_codec(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
    """Whether a frame encoded with ``a`` can be sent unchanged on a leg negotiated for ``b``."""
    if mime(a) != mime(b) or a.clockRate != b.clockRate:
        return False
    if mime(a) == "video/h264":
        return a.parameters.get("packetization-mode", 0) == b.parameters.get("packetization-mode", 0)
    return True


def is_keyframe(codec: RTCRtpCodecParameters, data: bytes) -> bool:
    """Whether a complete encoded frame can be decoded on its own."""
    kind = mime(codec)
    if kind == "video/vp8":
        return bool(data) and not data[0] & 0x01  # frame tag: P bit clear = key frame
    if kind == "video/h264":
        return any(nal_type in (5, 7) for nal_type in _h264_nal_types(data))
    return True  # audio: every frame stands alone


def _h264_nal_types(data: bytes) -> list[int]:
    types = []
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        types.append(data[start + 3] & 0x1F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


def _vp8_frame_start(packet: RtpPacket) -> bool:
    """Whether the packet begins a VP8 frame (payload descriptor: S=1, partition 0)."""
    payload = packet.payload
    return bool(payload) and bool(payload[0] & 0x10) and (payload[0] & 0x07) == 0


def _seq_diff(a: int, b: int) -> int:
    """a - b in 16-bit sequence space, in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


class FrameAssembler:
    """A jitter-buffer replacement that emits complete encoded frames to ``on_frame``."""

    def __init__(
        self,
        kind: str,
        codec_for: Callable[[int], RTCRtpCodecParameters | None],
        on_frame: Callable[[EncodedFrame], None],
        on_broken: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self._clock = clock
        self._codec_for = codec_for
        self._on_frame = on_frame
        self._on_broken = on_broken
        self._pending: dict[int, tuple[RtpPacket, float]] = {}
        self._expect: int | None = None  # sequence number of the next frame's first packet
        self._broken = True  # nothing decodable yet: wait for a keyframe
        self.ssrc: int | None = None
        self.frames = 0
        self.keyframes = 0
        self.losses = 0
        self.dropped_frames = 0

    @property
    def capacity(self) -> int:
        return MAX_PENDING_PACKETS

    @property
    def broken(self) -> bool:
        """True until a keyframe follows the last loss (frames are withheld meanwhile)."""
        return self._broken

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        """Called by aiortc with each depayloaded packet; never returns a frame to aiortc."""
        self.receive(packet, self._clock())
        return False, None

    def receive(self, packet: RtpPacket, now: float) -> None:
        """One depayloaded packet, arrived at ``now``."""
        self.ssrc = packet.ssrc
        if self.kind == "audio":
            self._add_audio(packet, now)
        else:
            self._add_video(packet, now)

    # -- audio -------------------------------------------------------------------------------------
    def _add_audio(self, packet: RtpPacket, now: float) -> None:
        if self._expect is not None and _seq_diff(packet.sequence_number, self._expect) < 0:
            return  # late or duplicate
        self._expect = (packet.sequence_number + 1) & 0xFFFF
        codec = self._codec_for(packet.payload_type)
        data = packet_data(packet)
        if codec is None or not data:
            return
        self._broken = False
        self._emit(EncodedFrame(data, packet.timestamp, True, codec, packet.ssrc, now))

    # -- video -------------------------------------------------------------------------------------
    def _add_video(self, packet: RtpPacket, now: float) -> None:
        seq = packet.sequence_number
        if self._expect is not None and _seq_diff(seq, self._expect) < 0:
            return  # late retransmission or duplicate of something already emitted or skipped
        self._pending[seq] = (packet, now)
        if self._expect is None:
            self._resync()
        while self._expect is not None and self._take_frame():
            pass
        if self._pending and self._stalled(now):
            self._lost()

    def _stalled(self, now: float) -> bool:
        if len(self._pending) > MAX_PENDING_PACKETS:
            return True
        oldest = min(arrival for _, arrival in self._pending.values())
        return now - oldest > MAX_WAIT

    def _lost(self) -> None:
        """A packet is not coming: skip to the next frame start, withhold until a keyframe."""
        self.losses += 1
        self._broken = True
        stuck = self._expect
        if stuck is None or stuck not in self._pending:
            ref = self._any_seq()
            stuck = min(self._pending, key=lambda s: _seq_diff(s, ref))
        stale_ts = self._pending[stuck][0].timestamp
        for seq in [s for s, (p, _) in self._pending.items() if p.timestamp == stale_ts]:
            del self._pending[seq]
        self._expect = None
        self._on_broken()
        self._resync()
        while self._expect is not None and self._take_frame():
            pass

    def _any_seq(self) -> int:
        return next(iter(self._pending))

    def _resync(self) -> None:
        """Find the earliest known frame start among pending packets and drop what precedes it."""
        if not self._pending:
            return
        ref = self._any_seq()
        starts = []
        vp8 = None
        for seq, (packet, _) in self._pending.items():
            if packet.marker:
                starts.append((seq + 1) & 0xFFFF)
            if vp8 is None:
                codec = self._codec_for(packet.payload_type)
                vp8 = codec is not None and mime(codec) == "video/vp8"
            if vp8 and _vp8_frame_start(packet):
                starts.append(seq)
        if not starts:
            return
        start = min(starts, key=lambda s: _seq_diff(s, ref))
        for seq in list(self._pending):
            if _seq_diff(seq, start) < 0:
                del self._pending[seq]
        self._expect = start

    def _take_frame(self) -> bool:
        """Emit the frame starting at ``_expect`` if all its packets are here."""
        assert self._expect is not None
        seq = self._expect
        packets: list[RtpPacket] = []
        arrival = 0.0
        for _ in range(MAX_PENDING_PACKETS):
            entry = self._pending.get(seq)
            if entry is None:
                return False
            packet, at = entry
            if packets and packet.timestamp != packets[0].timestamp:
                break  # a publisher that does not set the marker bit: the timestamp changed
            packets.append(packet)
            arrival = max(arrival, at)
            seq = (seq + 1) & 0xFFFF
            if packet.marker:
                break
        else:
            return False
        for packet in packets:
            del self._pending[packet.sequence_number]
        self._expect = seq
        first = packets[0]
        codec = self._codec_for(first.payload_type)
        if codec is None:
            return True
        data = b"".join(packet_data(p) for p in packets)
        if not data:
            return True
        keyframe = is_keyframe(codec, data)
        if keyframe:
            self.keyframes += 1
            self._broken = False
        if self._broken:
            self.dropped_frames += 1
            self._on_broken()
            return True
        self._emit(EncodedFrame(data, first.timestamp, keyframe, codec, first.ssrc, arrival))
        return True

    def _emit(self, frame: EncodedFrame) -> None:
        self.frames += 1
        self._on_frame(frame)
