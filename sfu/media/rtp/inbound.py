"""One publisher's inbound RTP stream as the packet path sees it: RTX unwrapped, losses tracked
(NACK, then a keyframe request), keyframe starts recognised, Receiver Reports due."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import h264, vp8
from .header import RtpView, parse
from .legs import Codec, InboundLeg
from .loss import LossReport, UpstreamLoss

#: Seconds between two Receiver Reports sent upstream.
RR_INTERVAL = 1.0


@dataclass(slots=True)
class Arrival:
    """A media packet as it arrived (after RTX unwrapping), ready to forward."""

    view: RtpView
    codec: Codec
    keyframe_start: bool
    #: The VP8 payload descriptor (VP8 only), read once here for whoever forwards the packet.
    vp8: vp8.Vp8Descriptor | None = None


class InboundStream:
    def __init__(self, leg: InboundLeg, *, nack: bool) -> None:
        self.leg = leg
        self.media_ssrc: int | None = None
        self.loss = UpstreamLoss(nack=nack)
        self._video = leg.kind == "video"
        self._next_rr = 0.0
        self.packets = 0
        self.retransmissions = 0

    def accept(self, view: RtpView, now: float) -> Arrival | None:
        """The media packet carried by ``view``, or ``None`` (unknown payload type, RTX padding,
        duplicate)."""
        codec = self.leg.codecs.get(view.payload_type)
        if codec is None:
            return None
        if codec.is_rtx:
            media = self.leg.codecs.get(codec.apt) if codec.apt is not None else None
            if media is None or view.payload_size < 2:
                return None  # padding-only probe, or nothing to repair
            unwrapped = unwrap_rtx(view, media.payload_type, self.media_ssrc_for_rtx(view.ssrc))
            if unwrapped is None:
                return None
            view, codec = unwrapped, media
            self.retransmissions += 1
        else:
            self.media_ssrc = view.ssrc
        if not self.loss.add(view.sequence, now):
            return None
        self.packets += 1
        keyframe = False
        d = None
        if self._video:
            payload = view.data[view.payload_start : view.payload_end]
            if codec.mime == "video/vp8":
                d = vp8.descriptor(payload)
                keyframe = vp8.keyframe_start(d, payload)
            elif codec.mime == "video/h264":
                keyframe = h264.is_keyframe_start(payload)
        return Arrival(view, codec, keyframe, d)

    def media_ssrc_for_rtx(self, rtx_ssrc: int) -> int:
        for media, rtx in self.leg.rtx_ssrcs.items():
            if rtx == rtx_ssrc:
                return media
        return self.media_ssrc if self.media_ssrc is not None else 0

    def poll(self, now: float) -> LossReport:
        """NACKs due and whether a loss was given up (then ask for a keyframe)."""
        return self.loss.poll(now)

    def report_due(self, now: float) -> bool:
        if now < self._next_rr or self.media_ssrc is None:
            return False
        self._next_rr = now + RR_INTERVAL
        return True


def unwrap_rtx(view: RtpView, payload_type: int, media_ssrc: int) -> RtpView | None:
    """The original packet carried by an RTX packet (RFC 4588): sequence number from the OSN."""
    data = view.data
    original_seq = struct.unpack_from("!H", data, view.payload_start)[0]
    out = bytearray(data[: view.payload_start])
    out[0] &= 0xDF  # the RTX packet's padding is not the original's
    out[1] = (out[1] & 0x80) | payload_type
    struct.pack_into("!H", out, 2, original_seq)
    struct.pack_into("!I", out, 8, media_ssrc)
    out += data[view.payload_start + 2 : view.payload_end]
    return parse(bytes(out))


class KeyframeCollector:
    """Assembles the next complete keyframe of a stream from its packets (for a still picture)."""

    def __init__(self) -> None:
        self.mime = ""
        self._parts: list[bytes] = []
        self._timestamp: int | None = None
        self._next_seq = 0

    def add(self, arrival: Arrival) -> bytes | None:
        """Feed packets in arrival order; returns the keyframe's bitstream once complete."""
        view = arrival.view
        if arrival.keyframe_start and self._timestamp != view.timestamp:
            self.mime = arrival.codec.mime
            self._parts, self._timestamp = [], view.timestamp
            self._next_seq = view.sequence
        if self._timestamp is None or view.timestamp != self._timestamp:
            return None
        if view.sequence != self._next_seq:
            self._parts, self._timestamp = [], None  # a hole: wait for the next keyframe
            return None
        self._next_seq = (view.sequence + 1) & 0xFFFF
        payload = view.data[view.payload_start : view.payload_end]
        self._parts.append(vp8.depayload(payload) if self.mime == "video/vp8" else h264.depayload(payload))
        if view.marker:
            data, self._parts, self._timestamp = b"".join(self._parts), [], None
            return data
        return None
