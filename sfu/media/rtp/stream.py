"""One outbound RTP stream (one sender of a watcher's connection), fed packet by packet.

Sources are partners' inbound streams, known by a value (a source id: compared by equality, so a
source in another process can be named the same way), or :data:`LOCAL`: the server's own encoder (the
grey placeholder between partners, or transcoded pictures when codecs differ), whose packets aiortc
has already numbered and which are renumbered here like any other source's. After :meth:`follow`,
packets of any other source are refused; video starts only at the first packet of a keyframe.

Every sent packet is rewritten: SSRC, sequence number and timestamp continuous
(:class:`~.rewriter.SequenceRewriter`), payload type and header extensions of the watcher's leg,
VP8 picture id / TL0PICIDX continuous, abs-send-time stamped at sending. Video packets are kept in
a bounded history to answer the watcher's NACKs (in RTX when negotiated).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from . import h264, rtcp, vp8
from .header import RtpView, pack_extensions, parse, seq_diff
from .history import PacketHistory, RtxWrapper, newest_first
from .legs import ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, MID_URI, OutboundLeg
from .rewriter import SequenceRewriter

#: Packets of the followed source kept while waiting for its keyframe: those that arrived before the
#: keyframe's first packet but come after it (reordered, or its first packet repaired late).
HELD_WHILE_WAITING = 128

LOCAL = "local"
"""The source that stands for the server's own encoder (aiortc's sender)."""

_HEAD = struct.Struct("!BBHII")
_NTP_EPOCH = 2208988800


class OutboundStream:
    def __init__(self, leg: OutboundLeg, send: Callable[[bytes], object], *, wall_offset: float,
                 first_sequence: int | None = None, first_timestamp: int | None = None) -> None:
        """``send`` takes one plain RTP packet; ``wall_offset`` is Unix time minus the ``now``
        clock callers use (for NTP and abs-send-time)."""
        self.leg = leg
        self.kind = leg.kind
        self._send = send
        self._wall_offset = wall_offset
        self._abs_epoch = wall_offset + _NTP_EPOCH  #: ``now`` + this: NTP seconds (abs-send-time)
        self._video = leg.kind == "video"
        self._vp8 = leg.codec.mime == "video/vp8"
        self._h264 = leg.codec.mime == "video/h264"
        self.rewriter = SequenceRewriter(
            leg.codec.clock_rate,
            random.randrange(1 << 15) if first_sequence is None else first_sequence,
            random.randrange(1 << 32) if first_timestamp is None else first_timestamp,
        )
        self.pictures = vp8.PictureIdContinuity()
        self.history: PacketHistory | None = PacketHistory() if self._video else None
        self.rtx: RtxWrapper | None = None
        if leg.rtx_ssrc is not None and leg.rtx_payload_type is not None:
            self.rtx = RtxWrapper(leg.rtx_ssrc, leg.rtx_payload_type, random.randrange(1 << 15))
        self._source: object = None
        #: (source, timestamp) of the picture being sent, until its last packet (marker bit) is.
        self._open: tuple[object, int] | None = None
        self._finishing: tuple[object, int] | None = None
        self._rebase = False
        self.waiting_keyframe = False
        self._held: list[tuple[RtpView, int, bytes | None]] = []
        #: Called with the source when its first packet goes out after a switch.
        self.on_first_packet: Callable[[object], None] | None = None
        self._first_pending = False
        #: Output sequence number of the current source's first packet: nothing older is resent.
        self._since: int | None = None
        self._ext, self._abs_at, self._level_at = self._extension_template()
        self._b0 = 0x90 if self._ext else 0x80
        self.packets = 0
        self.octets = 0
        self.skipped = 0  #: packets not sent while waiting for a keyframe (some sent later: released)
        self.released = 0

    # -- which source ------------------------------------------------------------------------------
    @property
    def source(self) -> object:
        return self._source

    @property
    def started(self) -> bool:
        """Whether a packet of the current source has been sent."""
        return self._source is not None and not self._first_pending

    def follow(self, source: object) -> None:
        """Send ``source``'s packets from now on (``None``: nobody's); video waits for a keyframe."""
        if source is self._source or source == self._source:
            return
        # A picture of the previous source cut in the middle would reach the watcher incomplete:
        # its remaining packets may still follow, until the new source's first packet.
        self._finishing = self._open
        self._rebase = True  # even if the same source comes back: it resumes after a gap
        self._source = source
        self.waiting_keyframe = self._video and source is not None
        self._held = []
        self._first_pending = source is not None

    # -- sending -----------------------------------------------------------------------------------
    def forward(self, source: object, view: RtpView, payload_type: int, now: float,
                audio_level: bytes | None = None, descriptor: vp8.Vp8Descriptor | None = None) -> bool:
        """Send a partner's packet (``payload_type``: this leg's); False if it was not sent.
        ``descriptor``: its VP8 payload descriptor, if the caller has read it already."""
        d: vp8.Vp8Descriptor | bool | None = None
        if source is not self._source and source != self._source:
            if not self._finishes(source, view):
                return False
            if self._vp8:
                d = descriptor or vp8.descriptor(view.data[view.payload_start : view.payload_end])
        else:
            if self._video:
                if descriptor is not None and self._vp8 and not self.waiting_keyframe:
                    d = descriptor  # what _check_keyframe would answer, without the call: per packet
                else:
                    d = self._check_keyframe(view, descriptor)
                    if d is False:
                        self._hold(view, payload_type, audio_level)
                        return False
            if self._rebase:
                self._starting()
        payload_at = 12 + len(self._ext)
        written = self.rewriter.rewrite(source, view.sequence, view.timestamp, now)
        if written is None:
            return False
        data = view.data
        out = bytearray(_HEAD.pack(self._b0 | (data[0] & 0x20), (data[1] & 0x80) | payload_type,
                                   written.sequence, written.timestamp, self.leg.ssrc))
        out += self._ext
        out += data[view.payload_start:]
        if self._abs_at >= 0:  # abs-send-time: 24-bit 6.18 fixed-point NTP seconds, in the low 3 bytes
            at = 12 + self._abs_at - 1
            struct.pack_into("!I", out, at, int((now + self._abs_epoch) * 262144) & 0xFFFFFF)
            out[at] = self._ext[self._abs_at - 1]  # restore the element header
        if self._level_at >= 0 and audio_level:
            out[12 + self._level_at] = audio_level[0]
        if isinstance(d, vp8.Vp8Descriptor):
            if written.rebased:
                self.pictures.rebase(d)
            self.pictures.rewrite(out, payload_at, d)
        self._sent(bytes(out), written.sequence, now, source, view)
        if self._held and not self.waiting_keyframe:
            self._release_held(source, view.sequence, now)
        return True

    def _hold(self, view: RtpView, payload_type: int, audio_level: bytes | None) -> None:
        held = self._held
        held.append((view, payload_type, audio_level))
        if len(held) > HELD_WHILE_WAITING:
            del held[0]

    def _release_held(self, source: object, keyframe_sequence: int, now: float) -> None:
        """The keyframe's first packet went out: send the held packets that follow it, in order (the
        watcher would otherwise see a hole nobody can fill)."""
        held, self._held = self._held, []
        later = [h for h in held if seq_diff(h[0].sequence, keyframe_sequence) > 0]
        later.sort(key=lambda h: seq_diff(h[0].sequence, keyframe_sequence))
        for view, payload_type, audio_level in later:
            if self.forward(source, view, payload_type, now, audio_level):
                self.released += 1

    def send_local(self, data: bytes, now: float) -> bool:
        """Send a packet aiortc's sender made for this leg (its PT and extensions are right)."""
        view = parse(data)
        if view is None:
            return False
        d: vp8.Vp8Descriptor | bool | None = None
        if self._source is not LOCAL:
            if not self._finishes(LOCAL, view):
                return False
            if self._vp8:
                d = vp8.descriptor(view.data[view.payload_start : view.payload_end])
        else:
            if self._video:
                d = self._check_keyframe(view)
                if d is False:
                    return False
            self._starting()
        written = self.rewriter.rewrite(LOCAL, view.sequence, view.timestamp, now)
        if written is None:
            return False
        out = bytearray(data)
        struct.pack_into("!HII", out, 2, written.sequence, written.timestamp, self.leg.ssrc)
        if isinstance(d, vp8.Vp8Descriptor):
            if written.rebased:
                self.pictures.rebase(d)
            self.pictures.rewrite(out, view.payload_start, d)
        self._sent(bytes(out), written.sequence, now, LOCAL, view)
        return True

    def resend(self, sequences: list[int], now: float) -> int:
        """Answer a NACK from the history (RTX-wrapped when negotiated); how many were resent."""
        if self.history is None:
            return 0
        count = 0
        for sequence in newest_first(sequences):
            if self._since is None or seq_diff(sequence, self._since) < 0:
                continue  # the previous source's packet: never after a switch
            packet = self.history.get(sequence, now)
            if packet is None:
                continue
            if self.rtx is not None:
                wrapped = self.rtx.wrap(packet)
                if wrapped is None:
                    continue
                packet = wrapped
            self._send(packet)
            count += 1
        return count

    def sender_report(self, compound: bytearray, now: float) -> bool:
        """Put this stream's own NTP/RTP mapping and counts in a Sender Report for its SSRC."""
        return rtcp.patch_sender_report(
            compound, self.leg.ssrc, rtcp.ntp_time(now + self._wall_offset),
            self.rewriter.timestamp_at(now), self.packets, self.octets,
        )

    # -- internals ---------------------------------------------------------------------------------
    def _check_keyframe(self, view: RtpView, given: vp8.Vp8Descriptor | None = None) -> vp8.Vp8Descriptor | None | bool:
        """The VP8 descriptor (or None); False if the packet must wait for a keyframe."""
        payload = view.data[view.payload_start : view.payload_end] if self._vp8 or self.waiting_keyframe else b""
        d = (given or vp8.descriptor(payload)) if self._vp8 else None
        if self.waiting_keyframe:
            if self._vp8:
                start = d is not None and d.frame_start and len(payload) > d.size and not payload[d.size] & 1
            elif self._h264:
                start = h264.is_keyframe_start(payload)
            else:
                start = True
            if not start:
                self.skipped += 1
                return False
            self.waiting_keyframe = False
        return d

    def _starting(self) -> None:
        """A packet of the followed source is about to go: the first after a switch starts a new run
        of numbers (the rewriter chooses new offsets)."""
        if self._rebase:
            self._rebase = False
            self.rewriter.forget_source()

    def _finishes(self, source: object, view: RtpView) -> bool:
        """Whether ``view`` completes the previous source's picture cut by the last switch."""
        finishing = self._finishing
        return finishing is not None and finishing[0] == source and finishing[1] == view.timestamp

    def _sent(self, packet: bytes, sequence: int, now: float, source: object, view: RtpView) -> None:
        if self._video:
            self._open = None if view.marker else (source, view.timestamp)
            current = source is self._source or source == self._source
            if current or view.marker:
                self._finishing = None
        else:
            current = source is self._source or source == self._source
        if not current:
            self.packets += 1
            self.octets += len(packet) - 12
            if self.history is not None:
                self.history.add(sequence, packet, now)
            self._send(packet)
            return
        if self._first_pending or self._since is None:
            self._since = sequence
        if self.history is not None:
            self.history.add(sequence, packet, now)
        self.packets += 1
        self.octets += len(packet) - 12
        if self._first_pending:
            self._first_pending = False
            if self.on_first_packet is not None:
                self.on_first_packet(self._source)
        self._send(packet)

    def _extension_template(self) -> tuple[bytes, int, int]:
        """This leg's extension block with placeholders, and where abs-send-time / audio level go
        (offsets of their values within the block, -1 if not negotiated)."""
        elements: list[tuple[int, bytes]] = []
        ids = self.leg.extensions
        mid_id = ids.get(MID_URI)
        if mid_id and self.leg.mid:
            elements.append((mid_id, self.leg.mid.encode()))
        abs_id = ids.get(ABS_SEND_TIME_URI)
        if abs_id and self._video:
            elements.append((abs_id, b"\x00\x00\x00"))
        level_id = ids.get(AUDIO_LEVEL_URI)
        if level_id and not self._video:
            elements.append((level_id, b"\x7f"))
        elements = [(i, v) for i, v in elements if 1 <= i <= 14]
        if not elements:
            return b"", -1, -1
        block = pack_extensions(elements)
        abs_at = level_at = -1
        pos = 4
        for ext_id, value in elements:
            if ext_id == abs_id and self._video:
                abs_at = pos + 1
            if ext_id == level_id and not self._video:
                level_at = pos + 1
            pos += 1 + len(value)
        return block, abs_at, level_at
